"""The reviewed-plan lookup: from the merge commit on main back to the plan reviewers saw.

merge commit -> the PR merged as that commit -> the bot's plan comment for the target on that
PR -> its metadata (changes digest, the head commit and the run that planned it) -> the plan
artifact that run uploaded.

Every way this chain can break is a `NoReviewedPlan` with its own reason, because each asks a
different thing of the maintainer: a direct push needs a PR; a missing comment or a plan of an
older commit needs the plan job to finish on the PR's last commit. The comment can be edited by
anyone with write access, so it is not trusted alone: the artifact must come from the run the
comment names, must be newer than the comment's last edit, and must carry the comment's
digest. An edited comment, or a missing, expired or mismatched artifact, applies nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import (
    DEFAULT_BOT_LOGIN,
    Comment,
    find_comment,
    parse_metadata,
    plan_marker,
)
from rovo_reconcile.github.errors import ArtifactError, GitHubError, NoReviewedPlan

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "PLAN_FILE",
    "MergedPull",
    "NoReviewedPlan",
    "ReviewedPlan",
    "artifact_name",
    "default_branch_head",
    "download_plan",
    "find_artifact",
    "find_merged_pr",
    "read_plan_zip",
    "reviewed_plan",
]

PLAN_FILE = "rovo-reconcile-plan.json"
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
"""Cap on the zip downloaded and on the bytes it may unpack to: a plan is kilobytes."""


@dataclass(frozen=True)
class MergedPull:
    number: int
    head_sha: str
    merge_commit_sha: str | None


@dataclass(frozen=True)
class ReviewedPlan:
    pr_number: int
    head_sha: str
    digest: str
    metadata: Mapping[str, Any] = field(repr=False)
    plan: dict[str, Any] = field(repr=False)
    """The JSON plan of the artifact; its `changes_digest` is `digest`."""


def artifact_name(pr_number: int, head_sha: str) -> str:
    """The name the PR plan job uploads its JSON plan under (CONTRACT: one per PR and commit)."""
    return f"rovo-reconcile-plan-{pr_number}-{head_sha}"


def find_merged_pr(client: GitHubClient, repo: str, sha: str) -> MergedPull | None:
    """The PR merged as commit `sha`, or None when the push was not a PR merge.

    The endpoint also lists open PRs that merely contain the commit; only merged ones count
    (`merged_at` set: the list endpoint has no `merged` flag). The one whose merge commit is
    `sha` wins; failing that, the only merged one; several and none matching is no answer.
    """
    merged = [
        pull
        for pull in client.paginate(f"/repos/{repo}/commits/{sha}/pulls")
        if pull.get("merged_at")
    ]
    chosen = [pull for pull in merged if pull.get("merge_commit_sha") == sha]
    if not chosen and len(merged) == 1:
        chosen = merged
    if len(chosen) != 1:
        return None
    pull = chosen[0]
    head = pull.get("head")
    head_sha = head.get("sha") if isinstance(head, Mapping) else None
    merge_sha = pull.get("merge_commit_sha")
    return MergedPull(
        number=int(pull["number"]),
        head_sha=str(head_sha or ""),
        merge_commit_sha=merge_sha if isinstance(merge_sha, str) else None,
    )


def default_branch_head(client: GitHubClient, repo: str, branch: str | None) -> tuple[str, str]:
    """(branch, the commit at its head), for the default branch when `branch` is None."""
    if not branch:
        branch = str(client.get_json(f"/repos/{repo}")["default_branch"])
    answer = client.get_json(f"/repos/{repo}/branches/{branch}")
    return branch, str(answer["commit"]["sha"])


def reviewed_plan(
    client: GitHubClient,
    repo: str,
    sha: str,
    target: str,
    bot_login: str = DEFAULT_BOT_LOGIN,
    *,
    max_bytes: int = MAX_ARTIFACT_BYTES,
) -> ReviewedPlan:
    """The plan reviewed on the PR merged as `sha`, for `target`; or NoReviewedPlan saying why."""
    pull = find_merged_pr(client, repo, sha)
    if pull is None:
        raise NoReviewedPlan(
            f"no pull request was merged as commit {sha[:12]} (a direct push, or a merge "
            "GitHub does not tie to one PR): only a reviewed PR plan may be applied"
        )
    comment = find_comment(client, repo, pull.number, plan_marker(target), bot_login=bot_login)
    if comment is None:
        raise NoReviewedPlan(
            f"PR #{pull.number} has no plan comment for target {target} by {bot_login}: "
            "the plan job never finished on it"
        )
    metadata = parse_metadata(comment.body)
    where = f"the plan comment on PR #{pull.number}"
    if metadata is None:
        raise NoReviewedPlan(f"{where} carries no readable metadata line")
    digest, planned = metadata.get("digest"), metadata.get("head_sha")
    if metadata.get("target", target) != target:
        raise NoReviewedPlan(f"{where} names target {metadata.get('target')!r}, not {target!r}")
    if not (isinstance(planned, str) and planned):
        raise NoReviewedPlan(f"{where} does not say which commit it planned")
    if planned != pull.head_sha:
        raise NoReviewedPlan(
            f"{where} planned commit {planned[:12]} but the PR's head was {pull.head_sha[:12]}: "
            "the last plan did not finish before the merge"
        )
    if not (isinstance(digest, str) and digest):
        code = metadata.get("exit_code")
        ended = f" (the plan ended with exit code {code})" if code is not None else ""
        raise NoReviewedPlan(f"{where} records no changes digest{ended}")
    plan = _artifact_plan(client, repo, metadata, comment, where, max_bytes)
    if plan.get("changes_digest") != digest:
        raise NoReviewedPlan(
            f"the plan artifact's changes_digest is not the one recorded in {where}: the "
            "comment was altered; re-run the plan job on the PR"
        )
    return ReviewedPlan(pull.number, pull.head_sha, digest, metadata, plan)


def _artifact_plan(
    client: GitHubClient,
    repo: str,
    metadata: Mapping[str, Any],
    comment: Comment,
    where: str,
    max_bytes: int,
) -> dict[str, Any]:
    """The plan the comment's run uploaded, refused unless that run and comment belong together."""
    name = metadata.get("artifact")
    if not (isinstance(name, str) and name):
        raise NoReviewedPlan(f"{where} names no plan artifact (the plan could not be made)")
    try:
        artifact = find_artifact(client, repo, name)
    except GitHubError as e:  # e.g. a token without `actions: read`
        raise NoReviewedPlan(f"the plan artifact {name} could not be listed: {e}") from e
    if artifact is None:
        raise NoReviewedPlan(
            f"no unexpired artifact named {name}: the plan job's upload did not finish, or the "
            "artifact expired; re-run the plan job on the PR"
        )
    run = artifact.get("workflow_run")
    run_id = run.get("id") if isinstance(run, Mapping) else None
    if str(run_id) != str(metadata.get("run_id")):
        raise NoReviewedPlan(
            f"the plan artifact {name} came from run {run_id}, but {where} from run "
            f"{metadata.get('run_id')}"
        )
    if _when(comment.updated_at) > _when(str(artifact.get("created_at") or "")):
        raise NoReviewedPlan(
            f"{where} was edited after its plan run uploaded the plan ({comment.updated_at}); "
            "an edited plan comment is not a reviewed plan: re-run the plan job on the PR"
        )
    try:
        return _download(client, repo, artifact, name, max_bytes)
    except GitHubError as e:  # ArtifactError, or a token without `actions: read`
        raise NoReviewedPlan(f"the plan artifact {name} could not be read: {e}") from e


def _when(stamp: str) -> datetime:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # unreadable: never "older than" anything


def find_artifact(client: GitHubClient, repo: str, name: str) -> dict[str, Any] | None:
    """The newest unexpired artifact called `name`, or None."""
    artifacts = [
        item
        for item in client.paginate(
            f"/repos/{repo}/actions/artifacts", {"name": name}, key="artifacts"
        )
        if item.get("name") == name and not item.get("expired")
    ]
    if not artifacts:
        return None
    return max(artifacts, key=lambda a: (str(a.get("created_at") or ""), int(a.get("id") or 0)))


def _download(
    client: GitHubClient, repo: str, artifact: Mapping[str, Any], name: str, max_bytes: int
) -> dict[str, Any]:
    size = artifact.get("size_in_bytes")
    if isinstance(size, int) and size > max_bytes:
        raise ArtifactError(f"artifact {name} is {size:,} bytes, over the {max_bytes:,} cap")
    url = (
        artifact.get("archive_download_url")
        or f"/repos/{repo}/actions/artifacts/{artifact['id']}/zip"
    )
    data = client.download(str(url), max_bytes=max_bytes)
    return read_plan_zip(data, name=name, max_bytes=max_bytes)


def download_plan(
    client: GitHubClient, repo: str, name: str, *, max_bytes: int = MAX_ARTIFACT_BYTES
) -> dict[str, Any] | None:
    """The JSON plan in the newest unexpired artifact called `name`; None when there is none."""
    artifact = find_artifact(client, repo, name)
    return None if artifact is None else _download(client, repo, artifact, name, max_bytes)


def read_plan_zip(
    data: bytes, *, name: str = "artifact", max_bytes: int = MAX_ARTIFACT_BYTES
) -> dict[str, Any]:
    """`rovo-reconcile-plan.json` from an artifact zip, unpacking at most `max_bytes` in total.

    The declared sizes are checked first and the bytes counted while reading, since a crafted
    zip can declare less than it inflates to.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            declared = sum(member.file_size for member in members)
            if declared > max_bytes:
                raise ArtifactError(
                    f"artifact {name} would unpack to {declared:,} bytes, over the "
                    f"{max_bytes:,} cap: refused"
                )
            member = next((m for m in members if m.filename == PLAN_FILE), None) or next(
                (m for m in members if m.filename.rsplit("/", 1)[-1] == PLAN_FILE), None
            )
            if member is None:
                raise ArtifactError(f"artifact {name} holds no {PLAN_FILE}")
            raw = _read_capped(archive, member, max_bytes, name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise ArtifactError(f"artifact {name} is not a readable zip: {e}") from None
    try:
        plan = json.loads(raw)
    except ValueError as e:
        raise ArtifactError(f"{PLAN_FILE} in artifact {name} is not valid JSON: {e}") from None
    if not isinstance(plan, dict):
        raise ArtifactError(f"{PLAN_FILE} in artifact {name} holds no JSON object")
    return plan


def _read_capped(archive: zipfile.ZipFile, member: zipfile.ZipInfo, cap: int, name: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    with archive.open(member) as stream:
        while chunk := stream.read(64 * 1024):
            total += len(chunk)
            if total > cap:
                raise ArtifactError(f"artifact {name} unpacks past the {cap:,} byte cap: refused")
            chunks.append(chunk)
    return b"".join(chunks)
