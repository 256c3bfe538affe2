"""The drift issue: one open, labelled issue while live differs from the policies, closed when not.

Found by label and by a hidden marker on the body's first line, so a team may use the same
label for its own issues, and a nightly run updates the issue it opened instead of opening
one a night. The issues endpoint also lists pull requests; those are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import first_line, marker_escape
from rovo_reconcile.github.errors import GitHubError

__all__ = [
    "DEFAULT_LABEL",
    "Issue",
    "close_issue",
    "drift_marker",
    "ensure_label",
    "find_issue",
    "upsert_issue",
]

DEFAULT_LABEL = "rovo-reconcile-drift"
_LABEL_COLOR = "d93f0b"
_LABEL_DESCRIPTION = "Live Atlassian settings differ from the policies (opened by rovo-reconcile)"


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    html_url: str


def drift_marker(target: str) -> str:
    """The first line of the drift issue for this target label."""
    return f"<!-- rovo-reconcile:drift target={marker_escape(target)} -->"


def ensure_label(client: GitHubClient, repo: str, label: str) -> None:
    """Create the label unless it exists (422 `already_exists` is the common, fine answer)."""
    try:
        client.post_json(
            f"/repos/{repo}/labels",
            {"name": label, "color": _LABEL_COLOR, "description": _LABEL_DESCRIPTION},
        )
    except GitHubError as e:
        if e.status != 422 or "already_exists" not in e.errors:
            raise


def find_issue(client: GitHubClient, repo: str, label: str, marker: str) -> Issue | None:
    """The oldest open issue with `label` whose body starts with `marker`, or None."""
    items = client.paginate(
        f"/repos/{repo}/issues",
        {"labels": label, "state": "open", "sort": "created", "direction": "asc"},
    )
    found = [_issue(item) for item in items if _matches(item, marker)]
    return min(found, key=lambda issue: issue.number) if found else None


def upsert_issue(
    client: GitHubClient, repo: str, label: str, marker: str, title: str, body: str
) -> tuple[Literal["opened", "updated"], int]:
    """Update the drift issue's title and body, or open it (with the label, created if needed)."""
    text = body if first_line(body) == marker else f"{marker}\n{body}"
    issue = find_issue(client, repo, label, marker)
    if issue is not None:
        client.patch_json(f"/repos/{repo}/issues/{issue.number}", {"title": title, "body": text})
        return "updated", issue.number
    ensure_label(client, repo, label)
    created = client.post_json(
        f"/repos/{repo}/issues", {"title": title, "body": text, "labels": [label]}
    )
    return "opened", int(created["number"])


def close_issue(
    client: GitHubClient, repo: str, label: str, marker: str, comment: str
) -> int | None:
    """Comment on the drift issue and close it as completed; its number, or None if none is open."""
    issue = find_issue(client, repo, label, marker)
    if issue is None:
        return None
    client.post_json(f"/repos/{repo}/issues/{issue.number}/comments", {"body": comment})
    client.patch_json(
        f"/repos/{repo}/issues/{issue.number}", {"state": "closed", "state_reason": "completed"}
    )
    return issue.number


def _matches(item: Mapping[str, Any], marker: str) -> bool:
    if "pull_request" in item:
        return False
    body = item.get("body")
    return isinstance(body, str) and first_line(body) == marker


def _issue(item: Mapping[str, Any]) -> Issue:
    return Issue(
        number=int(item["number"]),
        title=str(item.get("title") or ""),
        body=str(item.get("body") or ""),
        html_url=str(item.get("html_url") or ""),
    )
