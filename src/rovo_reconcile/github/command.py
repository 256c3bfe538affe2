"""`rovo-reconcile github plan|apply|drift`: the three jobs the composite action runs.

Thin, like every command: read the environment once, build the job, call it, return its
exit code. The action (`action.yml`) passes the Atlassian key as $ATLASSIAN_ADMIN_API_KEY and
the GitHub token as $GITHUB_TOKEN; GitHub sets the other `GITHUB_*` variables.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click

from rovo_reconcile.cli_options import (
    load_ack_file,
    load_valid,
    now_option,
    shard_option,
    target_options,
    today,
)
from rovo_reconcile.github.issues import DEFAULT_LABEL

__all__ = ["github"]


@click.group()
def github() -> None:
    """Run the plan, apply or drift job of a GitHub Actions workflow.

    Each reads the GITHUB_* variables, writes $GITHUB_OUTPUT and the job summary, and
    talks to the GitHub API with $GITHUB_TOKEN. See examples/policy-repo/README.md.
    """


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
@now_option
def plan(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    base_dir: Path | None,
    out_dir: Path,
    now: date | None,
) -> int:
    """Validate, plan with the guards apply will check, comment on the PR, fill the summary.

    Exit 0 no changes, 2 changes, 3 apply would refuse, 1 invalid policies or an error.
    """
    from rovo_reconcile.github.context import GitHubContext
    from rovo_reconcile.github.plan_job import PlanJob, run_plan_job
    from rovo_reconcile.targets import resolve_target

    ctx = GitHubContext.from_env(os.environ)
    where = resolve_target(target, api_url, api_key_file, sandbox_db)
    job = PlanJob(paths, where, today(now), out_dir, base_dir, concurrency)
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
@click.option("--reason", default=None, help="Why this run was dispatched; journalled.")
@now_option
def apply(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    journal: Path,
    force: bool,
    reason: str | None,
    now: date | None,
) -> int:
    """On a push: apply only the changes reviewed on the PR merged as $GITHUB_SHA (else exit
    3, nothing written). On workflow_dispatch: apply the branch with --reason (and --force)."""
    from rovo_reconcile.github.apply_job import ApplyJob, run_apply_job
    from rovo_reconcile.github.context import GitHubContext
    from rovo_reconcile.targets import resolve_target

    ctx = GitHubContext.from_env(os.environ)
    where = resolve_target(target, api_url, api_key_file, sandbox_db)
    job = ApplyJob(paths, where, today(now), journal, force, reason, concurrency)
    return run_apply_job(ctx, job, os.environ)


@github.command(short_help="Check drift and keep one labelled issue open while it lasts.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@target_options
@click.option(
    "--ack",
    "ack_file",
    default=None,
    metavar="ACK.yaml",
    help="Known drift, acknowledged until a date (a missing file acknowledges nothing).",
)
@click.option("--label", default=DEFAULT_LABEL, show_default=True, help="The drift issue's label.")
@now_option
@shard_option
def drift(
    paths: tuple[str, ...],
    target: str | None,
    api_url: str | None,
    api_key_file: Path | None,
    sandbox_db: Path | None,
    concurrency: int,
    ack_file: str | None,
    label: str,
    now: date | None,
    shard: str | None,
) -> int:
    """Report drift; open, update or close the drift issue. Exit 2 on drift, 1 on an error."""
    from rovo_reconcile.github.context import GitHubContext
    from rovo_reconcile.github.drift_job import DriftJob, run_drift_job
    from rovo_reconcile.targets import resolve_target

    ctx = GitHubContext.from_env(os.environ)
    day = today(now)
    acks = load_ack_file(ack_file)
    policies = load_valid(paths, day, shard)
    where = resolve_target(target, api_url, api_key_file, sandbox_db)
    return run_drift_job(ctx, DriftJob(policies, where, day, acks, label, concurrency))
