"""`rovo-reconcile github plan|apply|drift|adopt`: the jobs the composite action runs.

Thin, like every command: read the environment once, build the job, call it, return its
exit code. The action (`action.yml`) passes the Atlassian key as $ATLASSIAN_ADMIN_API_KEY and
the GitHub token as $GITHUB_TOKEN; GitHub sets the other `GITHUB_*` variables.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rovo_reconcile.cli_options import (
    ack_option,
    load_ack_file,
    load_valid,
    mcp_option,
    now_option,
    refuse_default_sandbox_in_ci,
    shard_option,
    target_options,
    today,
)
from rovo_reconcile.github.issues import DEFAULT_LABEL

if TYPE_CHECKING:
    from rovo_reconcile.github.context import GitHubContext
    from rovo_reconcile.mcp_state import McpMode

__all__ = ["github"]


@click.group()
def github() -> None:
    """Run the plan, apply, drift or adopt job of a GitHub Actions workflow.

    Run by the composite action (action.yml) inside GitHub Actions, which sets what they read:
    GITHUB_REPOSITORY, GITHUB_TOKEN (the GitHub API at GITHUB_API_URL), GITHUB_EVENT_NAME,
    GITHUB_EVENT_PATH, GITHUB_SHA, GITHUB_RUN_ID, GITHUB_ACTOR, and the files GITHUB_OUTPUT
    and GITHUB_STEP_SUMMARY. The Atlassian key comes from $ATLASSIAN_ADMIN_API_KEY. Exit codes
    as everywhere: 0 ok, 1 error, 2 changes or drift, 3 refused, 64 usage.
    """


def _context(*needed: str) -> GitHubContext:
    """The job's GitHub context, refused before anything is read when it is not a GitHub job."""
    from rovo_reconcile.errors import UsageError
    from rovo_reconcile.github.context import GitHubContext

    for name in needed:
        if not os.environ.get(name, "").strip():
            raise UsageError(
                f"{name} is not set: `rovo-reconcile github` runs inside GitHub Actions "
                "(see `rovo-reconcile github --help`)"
            )
    return GitHubContext.from_env(os.environ)


@github.command(short_help="Plan a pull request and keep its sticky comment up to date.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A checkout of the PR's base commit: changes that undo live drift are marked.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".rovo-reconcile"),
    show_default=True,
    help="Where the JSON plan (rovo-reconcile-plan.json) is written for the artifact.",
)
@mcp_option
@now_option
def plan(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    base_dir: Path | None,
    out_dir: Path,
    mcp_mode: McpMode,
    now: date | None,
) -> int:
    """Validate, plan with the guards apply will check, comment on the PR, fill the summary.

    Exit 0 no changes, 2 changes, 3 apply would refuse, 1 invalid policies or an error.
    """
    from rovo_reconcile.github.plan_job import PlanJob, run_plan_job
    from rovo_reconcile.targets import resolve_target

    ctx = _context("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_EVENT_PATH")
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    job = PlanJob(paths, where, today(now), out_dir, base_dir, concurrency, mcp=mcp_mode)
    return run_plan_job(ctx, job, os.environ)


@github.command(short_help="Apply the plan reviewed on the merged PR, or a dispatched run.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".rovo-reconcile/journal.jsonl"),
    show_default=True,
    help="JSON-lines record of every write.",
)
@click.option("--force", is_flag=True, help="Pass the forceable guards (workflow_dispatch only).")
@click.option(
    "--reason",
    default=None,
    help="Why this run was started by hand (required on workflow_dispatch); journalled.",
)
@mcp_option
@now_option
def apply(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    journal: Path,
    force: bool,
    reason: str | None,
    mcp_mode: McpMode,
    now: date | None,
) -> int:
    """Apply on merge exactly what the pull request's reviewers saw.

    On a push: find the PR merged as $GITHUB_SHA, its plan comment (by the bot, for the PR's
    last commit) and the plan artifact; plan afresh and apply only when the changes_digest is
    the reviewed one, else write nothing and exit 3 saying why. On workflow_dispatch: apply
    the checkout with a required --reason (and --force for the forceable guards).
    """
    from rovo_reconcile.github.apply_job import ApplyJob, run_apply_job
    from rovo_reconcile.targets import resolve_target

    ctx = _context("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_EVENT_NAME", "GITHUB_SHA")
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    refuse_default_sandbox_in_ci(where)
    job = ApplyJob(paths, where, today(now), journal, force, reason, concurrency, mcp=mcp_mode)
    return run_apply_job(ctx, job, os.environ)


@github.command(short_help="Check drift and keep one labelled issue open while it lasts.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@ack_option
@click.option("--label", default=DEFAULT_LABEL, show_default=True, help="The drift issue's label.")
@mcp_option
@now_option
@shard_option
def drift(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    ack_file: str | None,
    label: str,
    mcp_mode: McpMode,
    now: date | None,
    shard: str | None,
) -> int:
    """Report drift; open, update or close the drift issue. Exit 2 on drift, 1 on an error."""
    from rovo_reconcile.github.drift_job import DriftJob, run_drift_job
    from rovo_reconcile.targets import resolve_target

    ctx = _context("GITHUB_REPOSITORY", "GITHUB_TOKEN")
    day = today(now)
    acks = load_ack_file(ack_file)
    policies = load_valid(paths, day, shard)
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    job = DriftJob(policies, where, day, acks, label, concurrency, shard, mcp=mcp_mode)
    return run_drift_job(ctx, job)


@github.command(short_help="Offer live's out-of-band changes as a pull request to the policies.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@now_option
def adopt(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    timeout: float,
    now: date | None,
) -> int:
    """Adopt live into the checked-out policies and open (or update) one pull request with the
    result; close it when nothing differs. Needs contents: write and pull-requests: write.
    Exit 1 on an error, 3 when a file was left out because accepting live breaks a guard."""
    from rovo_reconcile.github.adopt_job import AdoptJob, run_adopt_job
    from rovo_reconcile.targets import resolve_target

    ctx = _context("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_SHA")
    day = today(now)
    policies = load_valid(paths, day, None)
    where = resolve_target(target, api_url, api_key_file, sandbox_db, timeout=timeout)
    return run_adopt_job(ctx, AdoptJob(policies, where, day, concurrency))
