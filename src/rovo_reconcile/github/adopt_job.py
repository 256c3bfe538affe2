"""The adoption job (`rovo-reconcile github adopt`): drift offered back as a pull request.

Run after the nightly drift check, in a job of its own (it needs `contents: write` and
`pull-requests: write`, which the drift job must not have): it works out what `adopt` would
write for the checked-out policies, against live read with the read-only key, and commits the
changed files to the branch `rovo-reconcile/adopt-<target>` on top of the checked-out commit,
with one pull request from it. Merging it accepts live into Git (its plan shows no changes);
closing it keeps the policies, and the next apply restores them. When nothing differs any
more, the open pull request is closed and its branch deleted; an org that could not be read
never closes it. Files adopt refuses (a `mustAllow` address shut out) are left out, and named.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import click

from rovo_reconcile.adopt import AdoptRun, FileAdoption, adopt_policies
from rovo_reconcile.errors import EXIT_ERROR, EXIT_GUARD, EXIT_OK, RovoError
from rovo_reconcile.github.adopt_pr import (
    PullRequestFiles,
    close_pull_request,
    upsert_pull_request,
)
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import marker_escape
from rovo_reconcile.github.context import GitHubContext, append_summary, set_output
from rovo_reconcile.github.stamp import stamp
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.progress import org_progress
from rovo_reconcile.targets import Target

__all__ = ["AdoptJob", "adopt_branch", "run_adopt_job"]

BODY_LIMIT = 60_000
"""GitHub refuses pull request bodies over 65,536 characters."""


@dataclass(frozen=True)
class AdoptJob:
    policies: Sequence[LoadedPolicy]
    target: Target
    today: date
    concurrency: int = 8


def adopt_branch(target: Target) -> str:
    """The tool's own branch for one target: `rovo-reconcile/adopt-atlassian-1a2b3c4d`."""
    digest = hashlib.sha256(target.label.encode("utf-8")).hexdigest()[:8]
    return f"rovo-reconcile/adopt-{target.name}-{digest}"


def run_adopt_job(ctx: GitHubContext, job: AdoptJob) -> int:
    repo = ctx.require_repository()
    if not ctx.sha:
        raise RovoError("GITHUB_SHA is not set: the adoption commit needs the checked-out commit")
    with org_progress(sys.stderr) as progress:
        run = asyncio.run(
            adopt_policies(
                job.target, job.policies, job.today, concurrency=job.concurrency, on_done=progress
            )
        )
    for line in (*run.notes, *run.errors, *run.refusals):
        click.echo(f"rovo-reconcile: {line}", err=True)
    branch = adopt_branch(job.target)
    when = stamp(ctx, ctx.sha, datetime.now(UTC))
    body = _body(run, job.target, branch, when)
    append_summary(ctx, body)
    number: int | None = None
    with GitHubClient.from_context(ctx) as gh:
        if run.changed:
            change = PullRequestFiles(
                branch=branch,
                base_sha=ctx.sha,
                files={_repo_path(f.file): f.after for f in run.changed},
                modes={_repo_path(f.file): _mode(f.file) for f in run.changed},
                message=_message(run.changed, job.target),
            )
            title = (
                f"rovo-reconcile: accept {_count(run.changed)} from live into the policies "
                f"({job.target.label})"
            )
            action, number = upsert_pull_request(gh, repo, change, title, body)
            click.echo(f"rovo-reconcile: adoption pull request #{number} {action}", err=True)
        elif not run.errors and not run.refusals:
            closed = close_pull_request(
                gh, repo, branch, f"Live matches the policies again: nothing to adopt ({when})."
            )
            if closed is not None:
                click.echo(f"rovo-reconcile: adoption pull request #{closed} closed", err=True)
    set_output(ctx, "adopt-pull-request", str(number or ""))
    if run.errors:
        return EXIT_ERROR
    return EXIT_GUARD if run.refusals else EXIT_OK


def _repo_path(file: str) -> str:
    """The file's path in the repository: relative to the job's working directory, the checkout."""
    relative = Path(os.path.relpath(Path(file).resolve(), Path.cwd().resolve()))
    if relative.parts and relative.parts[0] == "..":
        raise RovoError(f"{file} is outside the checkout; the adoption commit cannot hold it")
    return relative.as_posix()


def _mode(file: str) -> str:
    return "100755" if os.stat(file).st_mode & 0o111 else "100644"


def _count(files: Sequence[FileAdoption]) -> str:
    changes = sum(len(f.changes) for f in files)
    return f"{changes} change{'' if changes == 1 else 's'}"


def _message(files: Sequence[FileAdoption], target: Target) -> str:
    lines = [f"Accept {_count(files)} from live ({target.label}) into the policies", ""]
    for file in files:
        lines.append(f"{_repo_path(file.file)} ({file.title}):")
        lines.extend(f"  {change}" for change in file.changes)
    lines += ["", "Written by rovo-reconcile adopt: only the lines that differ from live changed."]
    return "\n".join(lines) + "\n"


def _body(run: AdoptRun, target: Target, branch: str, when: str) -> str:
    marker = f"<!-- rovo-reconcile:adopt target={marker_escape(target.label)} -->"
    parts = [
        marker,
        "### Accept live into the policies",
        "",
        f"{when}",
        "",
        "Someone changed these settings outside Git. Merging this pull request writes them into "
        "the policies, so the plan shows no changes; closing it keeps the policies, and the "
        "next apply puts live back. Only the lines that differ changed: comments, notes and "
        "guards are as they were.",
        "",
    ]
    for file in run.changed:
        parts.append(f"**`{_repo_path(file.file)}`** ({file.title})")
        parts.extend(f"- `{change}`" for change in file.changes)
        parts.extend(f"- :warning: {note}" for note in file.notes)
        parts.append("")
    left_out = [*run.refusals, *run.errors]
    if left_out:
        parts.append("**Not adopted** (fix these by hand):")
        parts.extend(f"- {line}" for line in left_out)
        parts.append("")
    if not run.changed:
        parts.append("Nothing to adopt: live matches the policies.")
    parts.append(f"<sub>branch `{branch}`, rewritten by every run</sub>")
    text = "\n".join(parts) + "\n"
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + "\n\n… (cut: the job summary has the whole list)\n"
    return text
