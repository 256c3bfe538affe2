"""The line that says which commit, run and time a comment, issue or summary speaks for."""

from __future__ import annotations

from datetime import datetime

from rovo_reconcile.github.context import GitHubContext

__all__ = ["stamp"]


def stamp(ctx: GitHubContext, sha: str | None, when: datetime) -> str:
    """`commit abc1234def56 · run 42 · 2026-12-01 12:34 UTC`, with links where GitHub gives them."""
    parts = []
    if sha:
        short = f"`{sha[:12]}`"
        if ctx.repository:
            short = f"[{short}]({ctx.server_url}/{ctx.repository}/commit/{sha})"
        parts.append(f"commit {short}")
    if ctx.run_id:
        parts.append(f"[run {ctx.run_id}]({ctx.run_url})" if ctx.run_url else f"run {ctx.run_id}")
    parts.append(when.strftime("%Y-%m-%d %H:%M UTC"))
    return " · ".join(parts)
