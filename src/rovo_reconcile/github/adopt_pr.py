"""The adoption pull request: changed files committed to one branch, one open pull request.

The commit is made through the Git data API on top of the commit the job checked out (a
tree with the new file contents, a commit, the branch moved to it with `force`), so the job
needs no git and no credentials in the checkout. The branch is the tool's own
(`rovo-reconcile/adopt-...`) and is replaced on every run: the pull request always shows
tonight's adoption against the current default branch. The pull request is found by its head
branch, so a run updates the one it opened instead of opening another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.errors import GitHubError

__all__ = ["PullRequestFiles", "close_pull_request", "find_pull_request", "upsert_pull_request"]


@dataclass(frozen=True)
class PullRequestFiles:
    branch: str
    base_sha: str
    files: Mapping[str, str]
    """Repository path -> the file's new text."""
    modes: Mapping[str, str]
    """Repository path -> git file mode (`100644`, `100755`)."""
    message: str


def find_pull_request(client: GitHubClient, repo: str, branch: str) -> int | None:
    """The open pull request from `branch` of `repo`, or None."""
    owner = repo.split("/", 1)[0]
    for item in client.paginate(
        f"/repos/{repo}/pulls", {"state": "open", "head": f"{owner}:{branch}"}
    ):
        head = item.get("head")
        if isinstance(head, Mapping) and head.get("ref") == branch:
            return int(item["number"])
    return None


def _commit(client: GitHubClient, repo: str, change: PullRequestFiles) -> str:
    base = client.get_json(f"/repos/{repo}/git/commits/{change.base_sha}")
    tree = client.post_json(
        f"/repos/{repo}/git/trees",
        {
            "base_tree": base["tree"]["sha"],
            "tree": [
                {
                    "path": path,
                    "mode": change.modes.get(path, "100644"),
                    "type": "blob",
                    "content": text,
                }
                for path, text in sorted(change.files.items())
            ],
        },
    )
    commit = client.post_json(
        f"/repos/{repo}/git/commits",
        {"message": change.message, "tree": tree["sha"], "parents": [change.base_sha]},
    )
    sha = str(commit["sha"])
    try:
        client.get_json(f"/repos/{repo}/git/ref/heads/{change.branch}")
    except GitHubError as e:
        if e.status != 404:
            raise
        client.post_json(
            f"/repos/{repo}/git/refs", {"ref": f"refs/heads/{change.branch}", "sha": sha}
        )
    else:
        client.patch_json(
            f"/repos/{repo}/git/refs/heads/{change.branch}", {"sha": sha, "force": True}
        )
    return sha


def upsert_pull_request(
    client: GitHubClient, repo: str, change: PullRequestFiles, title: str, body: str
) -> tuple[Literal["opened", "updated"], int]:
    """Commit the files to the branch and open the pull request, or update the open one."""
    _commit(client, repo, change)
    number = find_pull_request(client, repo, change.branch)
    if number is not None:
        client.patch_json(f"/repos/{repo}/pulls/{number}", {"title": title, "body": body})
        return "updated", number
    base = str(client.get_json(f"/repos/{repo}")["default_branch"])
    created = client.post_json(
        f"/repos/{repo}/pulls",
        {"title": title, "head": change.branch, "base": base, "body": body},
    )
    return "opened", int(created["number"])


def close_pull_request(client: GitHubClient, repo: str, branch: str, comment: str) -> int | None:
    """Comment on the open pull request from `branch`, close it and delete the branch."""
    number = find_pull_request(client, repo, branch)
    if number is None:
        return None
    client.post_json(f"/repos/{repo}/issues/{number}/comments", {"body": comment})
    client.patch_json(f"/repos/{repo}/pulls/{number}", {"state": "closed"})
    try:
        client.delete(f"/repos/{repo}/git/refs/heads/{branch}")
    except GitHubError as e:
        if e.status not in (404, 422):  # already gone
            raise
    return number
