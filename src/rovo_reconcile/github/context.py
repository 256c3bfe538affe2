"""What a GitHub Actions job tells the tool through its environment, and the two files it writes.

`GitHubContext.from_env` reads the `GITHUB_*` variables once, so the commands take a plain
value (tests build one from a dict, never from `os.environ`). `set_output` and
`append_summary` write the runner's `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` files; run
locally, where those variables are unset, they do nothing and say nothing, so the same
command works on a laptop.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rovo_reconcile.api.secrets import Secret
from rovo_reconcile.errors import UsageError

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_SERVER_URL",
    "SUMMARY_LIMIT",
    "GitHubContext",
    "PullRequest",
    "append_summary",
    "set_output",
]

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"
SUMMARY_LIMIT = 1024 * 1024
"""GitHub refuses a step summary over 1 MiB (the whole file of one step, not one append)."""

_OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


@dataclass(frozen=True)
class PullRequest:
    """The pull request a `pull_request` (or `pull_request_target`) event is about."""

    number: int
    head_sha: str
    base_sha: str
    head_repo: str | None
    """`owner/name` of the head repository; None when a fork was deleted after the PR opened."""
    base_repo: str

    @property
    def from_fork(self) -> bool:
        """A fork's PR runs without the repository's secrets: the plan job must say so, not fail."""
        return self.head_repo != self.base_repo


@dataclass(frozen=True)
class GitHubContext:
    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    repository: str | None = None
    token: Secret | None = field(default=None, repr=False)
    event_name: str | None = None
    event: Mapping[str, Any] = field(default_factory=dict, repr=False)
    sha: str | None = None
    run_id: str | None = None
    run_attempt: str | None = None
    actor: str | None = None
    output_path: Path | None = None
    summary_path: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubContext:
        """Read the job's environment. Empty variables count as unset (YAML `env:` makes many)."""

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("GITHUB_TOKEN")
        output = get("GITHUB_OUTPUT")
        summary = get("GITHUB_STEP_SUMMARY")
        return cls(
            api_url=(get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            server_url=(get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
            repository=get("GITHUB_REPOSITORY"),
            token=Secret(token) if token else None,
            event_name=get("GITHUB_EVENT_NAME"),
            event=_read_event(get("GITHUB_EVENT_PATH")),
            sha=get("GITHUB_SHA"),
            run_id=get("GITHUB_RUN_ID"),
            run_attempt=get("GITHUB_RUN_ATTEMPT"),
            actor=get("GITHUB_ACTOR"),
            output_path=Path(output) if output else None,
            summary_path=Path(summary) if summary else None,
        )

    @property
    def run_url(self) -> str | None:
        """The link a comment or issue gives to this run's log and summary; None off GitHub."""
        if not (self.repository and self.run_id):
            return None
        url = f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
        if self.run_attempt and self.run_attempt != "1":
            url += f"/attempts/{self.run_attempt}"
        return url

    @property
    def pull_request(self) -> PullRequest | None:
        """The event's pull request, or None for a push, schedule or dispatch."""
        pr = self.event.get("pull_request")
        if not isinstance(pr, Mapping):
            return None
        head, base = pr.get("head"), pr.get("base")
        if not (isinstance(head, Mapping) and isinstance(base, Mapping)):
            return None
        number = pr.get("number", self.event.get("number"))
        base_repo = _full_name(base.get("repo")) or self.repository or ""
        if not isinstance(number, int) or isinstance(number, bool):
            return None
        return PullRequest(
            number=number,
            head_sha=str(head.get("sha") or ""),
            base_sha=str(base.get("sha") or ""),
            head_repo=_full_name(head.get("repo")),
            base_repo=base_repo,
        )

    def require_repository(self) -> str:
        if not self.repository:
            raise UsageError("GITHUB_REPOSITORY is not set: run this command in GitHub Actions")
        return self.repository

    def require_token(self) -> Secret:
        if self.token is None:
            raise UsageError(
                "GITHUB_TOKEN is not set: pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step"
            )
        return self.token


def _full_name(repo: object) -> str | None:
    if isinstance(repo, Mapping):
        name = repo.get("full_name")
        if isinstance(name, str) and name:
            return name
    return None


def _read_event(path: str | None) -> Mapping[str, Any]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(
            f"GITHUB_EVENT_PATH names {path}, which cannot be read: {e.strerror}"
        ) from e
    try:
        event = json.loads(text)
    except ValueError as e:
        raise UsageError(f"GITHUB_EVENT_PATH names {path}, which is not valid JSON: {e}") from e
    if not isinstance(event, dict):
        raise UsageError(f"GITHUB_EVENT_PATH names {path}, which holds no JSON object")
    return event


def set_output(ctx: GitHubContext, name: str, value: str) -> None:
    """Append `name` to `$GITHUB_OUTPUT`, in the heredoc form so any value (newlines too) is safe.

    The delimiter is random and re-drawn until it does not occur in the value: a value can
    then never end the heredoc early and smuggle in other outputs.
    """
    if not _OUTPUT_NAME.fullmatch(name):
        raise ValueError(f"not a valid output name: {name!r}")
    if ctx.output_path is None:
        return
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    with ctx.output_path.open("a", encoding="utf-8", newline="\n") as out:
        out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(ctx: GitHubContext, markdown: str, *, limit: int = SUMMARY_LIMIT) -> bool:
    """Append Markdown to `$GITHUB_STEP_SUMMARY`; True when it had to be cut to fit.

    GitHub drops a summary over its 1 MiB limit entirely (with an error annotation), so a long
    plan is cut at a line boundary with a note saying so: the head of a plan is worth more than
    nothing. A code fence left open by the cut is closed, or the note would render as code.
    """
    if ctx.summary_path is None:
        return False
    try:
        used = ctx.summary_path.stat().st_size
    except FileNotFoundError:
        used = 0
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    data = text.encode("utf-8")
    room = limit - used
    cut = len(data) > room
    if cut:
        text = _cut(text, data, room)
    with ctx.summary_path.open("a", encoding="utf-8", newline="\n") as out:
        out.write(text)
    return cut


def _note(left_out: int) -> str:
    return (
        f"\n> **Cut here:** GitHub allows 1 MiB of summary per step; "
        f"{left_out:,} more bytes were left out.\n"
    )


def _cut(text: str, data: bytes, room: int) -> str:
    reserve = len(_note(len(data)).encode("utf-8")) + len("```\n")
    budget = room - reserve
    if budget <= 0:
        return ""
    head = data[:budget].decode("utf-8", errors="ignore")
    newline = head.rfind("\n")
    head = head[: newline + 1] if newline >= 0 else ""
    note = _note(len(data) - len(head.encode("utf-8")))
    if len(_FENCE.findall(head)) % 2:
        head += "```\n"
    return head + note
