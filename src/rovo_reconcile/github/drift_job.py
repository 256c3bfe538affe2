"""The nightly job (`rovo-reconcile github drift`): one issue that lives exactly as long as drift.

Unacknowledged drift opens a labelled issue, or updates the open one with tonight's report;
when live matches again (or every difference is acknowledged) the issue is closed with a
comment saying when. MCP settings no API could read are unverifiable, not drift: they open
no issue, and the report and the closing comment say they were not checked. An org that could not be read is reported in the issue too, but never
closes it: drift that cannot be seen is not drift that has gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import click

from rovo_reconcile.ack import AckSet
from rovo_reconcile.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.context import GitHubContext, append_summary, set_output
from rovo_reconcile.github.issues import DEFAULT_LABEL, close_issue, drift_marker, upsert_issue
from rovo_reconcile.github.log import inert
from rovo_reconcile.github.phases import read_and_plan
from rovo_reconcile.github.stamp import stamp
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.plan import Plan
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.render.drift import drift_items, drift_summary, render_drift
from rovo_reconcile.targets import Target

__all__ = ["DriftJob", "run_drift_job"]

ISSUE_LIMIT = 60_000
"""GitHub refuses issue bodies over 65,536 characters; the stamp and marker need the rest."""


@dataclass(frozen=True)
class DriftJob:
    policies: Sequence[LoadedPolicy]
    target: Target
    today: date
    acks: AckSet
    label: str = DEFAULT_LABEL
    concurrency: int = 8
    shard: str | None = None
    """`K/N`: each shard keeps its own issue, so one shard's calm never closes another's."""
    mcp: McpMode = "auto"


def run_drift_job(ctx: GitHubContext, job: DriftJob) -> int:
    run = read_and_plan(job.target, job.policies, job.today, job.concurrency, job.mcp)
    plan = run.plan
    click.echo(inert(render_drift(plan, job.acks, job.today, "text")), nl=False)
    drifted = [i for i in drift_items(plan, job.acks, job.today) if i.acknowledged is None]
    failed = any(org.error for org in plan.orgs)
    when = stamp(ctx, ctx.sha, datetime.now(UTC))
    report = render_drift(plan, job.acks, job.today, "markdown", limit=ISSUE_LIMIT)
    append_summary(ctx, f"{when}\n\n{report}")
    scope = job.target.label + (f" shard {job.shard}" if job.shard else "")
    marker = drift_marker(scope)
    repo = ctx.require_repository()
    with GitHubClient.from_context(ctx) as gh:
        if drifted or failed:
            title = _title(len(drifted), failed, scope)
            action, number = upsert_issue(gh, repo, job.label, marker, title, f"{when}\n\n{report}")
            click.echo(f"rovo-reconcile: drift issue #{number} {action}", err=True)
        else:
            closed = close_issue(gh, repo, job.label, marker, _calm(plan, when))
            if closed is not None:
                click.echo(f"rovo-reconcile: drift issue #{closed} closed", err=True)
    code = EXIT_ERROR if failed else EXIT_CHANGES if drifted else EXIT_OK
    set_output(ctx, "drift-count", str(len(drifted)))
    return code


def _calm(plan: Plan, when: str) -> str:
    """The closing comment: never "live matches" where MCP settings could not be read."""
    unverifiable = drift_summary(plan, []).unverifiable
    if not unverifiable:
        return f"Live matches the policies again ({when})."
    return (
        f"Nothing that could be read drifts any more ({when}). The MCP settings of "
        f"{unverifiable} org(s) are not readable through any API and were not checked: "
        "see the job summary for the steps to check by hand."
    )


def _title(drifted: int, failed: bool, target: str) -> str:
    if drifted:
        what = f"{drifted} difference{'' if drifted == 1 else 's'} between live and the policies"
    else:
        what = "some orgs could not be read for the drift check"
    return f"rovo-reconcile drift: {what} ({target})"
