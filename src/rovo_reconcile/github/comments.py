"""The sticky PR comment: one per pull request and target, found by a hidden marker, edited in place.

The first line of the comment is `<!-- rovo-reconcile:plan target=LABEL -->`. A comment is ours
only when that line matches AND the bot wrote it: anyone can paste the marker into a comment,
and merge-apply must never trust a plan digest a human typed. Two runs racing on one PR may
both create a comment; the next upsert keeps the oldest and deletes the rest.

A second hidden line carries what merge-apply needs to find the reviewed plan:
`<!-- rovo-reconcile:reviewed {"digest": ..., "head_sha": ..., ...} -->`. The JSON is escaped
so that no value can close the HTML comment (`--`, `>`) and spill into the rendered page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rovo_reconcile.github.client import GitHubClient

__all__ = [
    "DEFAULT_BOT_LOGIN",
    "METADATA_KEYS",
    "Comment",
    "find_comment",
    "first_line",
    "format_metadata",
    "marker_escape",
    "parse_metadata",
    "plan_marker",
    "upsert_comment",
]

DEFAULT_BOT_LOGIN = "github-actions[bot]"
"""The author of comments written with a workflow's GITHUB_TOKEN."""
METADATA_KEYS = ("digest", "head_sha", "run_id", "artifact", "target", "exit_code")

_METADATA_PREFIX = "<!-- rovo-reconcile:reviewed "
_COMMENT_END = " -->"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user_login: str
    created_at: str
    html_url: str
    updated_at: str = ""
    """When the body last changed: a reviewed plan's comment must not change after its run."""


def marker_escape(text: str) -> str:
    """`text` made safe inside an HTML comment on one line, the same way every time.

    `%` first, so the escape itself stays reversible and two labels never share a marker.
    """
    text = text.replace("%", "%25").replace(">", "%3E").replace("\r", "%0D").replace("\n", "%0A")
    while "--" in text:
        text = text.replace("--", "-%2D")
    return text


def plan_marker(target: str) -> str:
    """The first line of the plan comment for this target label."""
    return f"<!-- rovo-reconcile:plan target={marker_escape(target)} -->"


def first_line(body: str) -> str:
    """The first line of a body, whatever line ending GitHub stored (the web editor uses CRLF)."""
    return body.split("\n", 1)[0].rstrip("\r")


def _with_marker(marker: str, body: str) -> str:
    return body if first_line(body) == marker else f"{marker}\n{body}"


def _ours(item: Mapping[str, Any], marker: str, bot_login: str) -> bool:
    user = item.get("user")
    login = user.get("login") if isinstance(user, Mapping) else None
    body = item.get("body")
    return login == bot_login and isinstance(body, str) and first_line(body) == marker


def _comment(item: Mapping[str, Any]) -> Comment:
    user = item.get("user")
    return Comment(
        id=int(item["id"]),
        body=str(item.get("body") or ""),
        user_login=str(user.get("login", "")) if isinstance(user, Mapping) else "",
        created_at=str(item.get("created_at") or ""),
        html_url=str(item.get("html_url") or ""),
        updated_at=str(item.get("updated_at") or item.get("created_at") or ""),
    )


def _matching(
    client: GitHubClient, repo: str, pr_number: int, marker: str, bot_login: str
) -> list[Comment]:
    """Our comments on the PR, oldest first (every page: a busy PR has hundreds of comments)."""
    items = client.paginate(f"/repos/{repo}/issues/{pr_number}/comments")
    found = [_comment(item) for item in items if _ours(item, marker, bot_login)]
    return sorted(found, key=lambda c: (c.created_at, c.id))


def find_comment(
    client: GitHubClient,
    repo: str,
    pr_number: int,
    marker: str,
    *,
    bot_login: str = DEFAULT_BOT_LOGIN,
) -> Comment | None:
    """The oldest comment by the bot whose first line is `marker`, or None."""
    found = _matching(client, repo, pr_number, marker, bot_login)
    return found[0] if found else None


def upsert_comment(
    client: GitHubClient,
    repo: str,
    pr_number: int,
    marker: str,
    body: str,
    *,
    bot_login: str = DEFAULT_BOT_LOGIN,
) -> tuple[Literal["created", "updated"], int]:
    """Edit our comment in place (deleting duplicates a race left), or create it.

    `body` gets `marker` as its first line if it does not start with it already.
    """
    text = _with_marker(marker, body)
    found = _matching(client, repo, pr_number, marker, bot_login)
    if not found:
        created = client.post_json(f"/repos/{repo}/issues/{pr_number}/comments", {"body": text})
        return "created", int(created["id"])
    keep, *extra = found
    client.patch_json(f"/repos/{repo}/issues/comments/{keep.id}", {"body": text})
    for duplicate in extra:
        client.delete(f"/repos/{repo}/issues/comments/{duplicate.id}")
    return "updated", keep.id


def format_metadata(metadata: Mapping[str, Any]) -> str:
    """The hidden metadata line. Inside JSON strings `-`, `<` and `>` become `\\u` escapes, so
    the line holds no `--` or `>` that could end the comment; `json.loads` undoes it."""
    text = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=True, separators=(",", ":"))

    def escape(match: re.Match[str]) -> str:
        token = match.group(0)
        return token.replace("-", "\\u002d").replace("<", "\\u003c").replace(">", "\\u003e")

    return f"{_METADATA_PREFIX}{_JSON_STRING.sub(escape, text)}{_COMMENT_END}"


def parse_metadata(body: str) -> dict[str, Any] | None:
    """The metadata of a comment body, or None when the line is missing or unreadable."""
    for raw in body.splitlines():
        line = raw.strip()
        if not (line.startswith(_METADATA_PREFIX) and line.endswith(_COMMENT_END)):
            continue
        try:
            data = json.loads(line[len(_METADATA_PREFIX) : -len(_COMMENT_END)])
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return None
