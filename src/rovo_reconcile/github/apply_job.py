"""The merge job (`rovo-reconcile github apply`): apply exactly what was reviewed, or nothing.

On a push to the default branch, the commit is traced back to the PR merged as it and the
plan reviewed there (`reviewed.reviewed_plan`); the policies of the commit are planned
afresh, and written only when the fresh change set has the reviewed digest. Anything else
(a direct push, a plan of an older commit, live or `main` changed since review) writes
nothing and exits 3 with the reason and, where the reviewed plan is at hand, a structural
diff of the two change sets.

On `workflow_dispatch` there is no review to hold the run to: it is the maintainers' route
for a refused apply, behind the protected environment's reviewers, and must carry a reason,
which goes into every journal line with the commit, run and actor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import click

from rovo_reconcile.apply import Journal, result_without_writes
from rovo_reconcile.errors import (
    EXIT_ERROR,
    EXIT_GUARD,
    EXIT_OK,
    GuardRefused,
    RovoError,
    UsageError,
)
from rovo_reconcile.explain import reviewed_difference
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.context import GitHubContext, append_summary, set_output
from rovo_reconcile.github.errors import GitHubError, NoReviewedPlan
from rovo_reconcile.github.log import annotation, inert
from rovo_reconcile.github.phases import apply_with_progress, read_and_plan
from rovo_reconcile.github.reviewed import ReviewedPlan, default_branch_head, reviewed_plan
from rovo_reconcile.github.stamp import stamp
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.plan import Plan
from rovo_reconcile.plan_json import load_plan
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.render.apply_report import render_apply
from rovo_reconcile.render.plan_markdown import fenced
from rovo_reconcile.render.plan_text import render_plan_text
from rovo_reconcile.render.report import render_report
from rovo_reconcile.run_context import github_context
from rovo_reconcile.targets import Target

__all__ = ["ApplyJob", "run_apply_job"]


@dataclass(frozen=True)
class ApplyJob:
    paths: Sequence[str]
    target: Target
    today: date
    journal: Path
    force: bool = False
    reason: str | None = None
    concurrency: int = 8
    bot_login: str = "github-actions[bot]"
    mcp: McpMode = "auto"


def run_apply_job(ctx: GitHubContext, job: ApplyJob, env: Mapping[str, str]) -> int:
    head = f"#### rovo-reconcile apply · `{job.target.label}`\n\n{stamp(ctx, ctx.sha, datetime.now(UTC))}"
    dispatched = ctx.event_name == "workflow_dispatch"
    if dispatched and not (job.reason or "").strip():
        raise UsageError("a dispatched apply needs --reason: it is recorded in the journal")
    if job.force and not dispatched:
        raise UsageError("--force is only for the workflow_dispatch route, with a --reason")
    try:
        reviewed = _reviewed(ctx, job, dispatched)
    except (NoReviewedPlan, NotTheHead, GitHubError) as e:
        return _finish(ctx, e.exit_code, f"{head}\n\n**Nothing was applied:** {e}", str(e))
    checked = load_policies(job.paths, job.today, packed=True)
    if checked.errors:
        click.echo(render_report(checked, "github"), nl=False)
        return _finish(
            ctx, EXIT_ERROR, f"{head}\n\n**Nothing was applied:** the policies are invalid."
        )
    context = github_context(env) | ({"reason": job.reason} if job.reason else {})
    journal = Journal(job.journal, job.target.label, context)
    journal.check_writable()
    run = read_and_plan(job.target, checked.policies, job.today, job.concurrency, job.mcp)
    plan = run.plan
    click.echo(inert(render_plan_text(plan)), nl=False)
    why = _origin(reviewed, job)
    if plan.empty and plan.manual[0]:  # never "live matches" while MCP steps are pending
        report = render_apply(result_without_writes(plan))
        click.echo(inert(report), nl=False)
        return _finish(
            ctx,
            EXIT_OK,
            f"{head}\n\n{why}\n\nNothing to apply through the API.\n\n{fenced(report)}",
        )
    if plan.empty:
        return _finish(ctx, EXIT_OK, f"{head}\n\n{why}\n\nNothing to apply: live matches.")
    if any(org.error for org in plan.orgs):  # the reviewed changes cannot be checked
        failed = ", ".join(org.title for org in plan.orgs if org.error)
        return _finish(
            ctx,
            EXIT_ERROR,
            f"{head}\n\n**Nothing was applied:** some orgs could not be read ({failed}), so the "
            f"changes cannot be checked against the reviewed plan.\n\n{fenced(render_plan_text(plan))}",
            f"some orgs could not be read ({failed}); nothing was applied",
        )
    if not any(org.changes for org in plan.orgs):
        return _finish(
            ctx,
            EXIT_ERROR,
            f"{head}\n\nNo org could be planned:\n\n{fenced(render_plan_text(plan))}",
        )
    if reviewed is not None:
        try:
            reviewed_as_plan = _reviewed_plan(reviewed)
        except NoReviewedPlan as e:
            return _finish(ctx, e.exit_code, f"{head}\n\n**Nothing was applied:** {e}", str(e))
        difference = reviewed_difference(reviewed.digest, reviewed_as_plan, plan)
        if difference is not None:
            text = "\n".join(difference)
            click.echo(
                inert(
                    f"The changes differ from the plan reviewed on PR #{reviewed.pr_number}:\n{text}"
                ),
                nl=False,
            )
            return _finish(
                ctx,
                EXIT_GUARD,
                f"{head}\n\n**Nothing was applied:** the changes differ from the plan reviewed on "
                f"PR #{reviewed.pr_number}. Review a new plan (a PR), or re-run apply through "
                f"`workflow_dispatch` with a reason.\n\n{fenced(text)}",
                f"the changes differ from the plan reviewed on PR #{reviewed.pr_number}; "
                "nothing was applied",
            )
    result = apply_with_progress(
        job.target, plan, force=job.force, journal=journal, concurrency=job.concurrency
    )
    report = render_apply(result, journal=str(job.journal))
    click.echo(inert(report), nl=False)
    return _finish(ctx, result.exit_code, f"{head}\n\n{why}\n\n{fenced(report)}")


def _reviewed(ctx: GitHubContext, job: ApplyJob, dispatched: bool) -> ReviewedPlan | None:
    """The plan reviewed on the PR merged as this commit (None on a dispatched run), after
    making sure the commit is still the head of the default branch: a re-run of an old job
    would otherwise apply what later merges changed or reverted."""
    if not ctx.sha:
        raise UsageError("GITHUB_SHA is not set: run this command in GitHub Actions")
    repo = ctx.require_repository()
    with GitHubClient.from_context(ctx) as gh:
        event_repo = ctx.event.get("repository")
        default = event_repo.get("default_branch") if isinstance(event_repo, Mapping) else None
        branch, head = default_branch_head(gh, repo, default if isinstance(default, str) else None)
        if head != ctx.sha:
            raise NotTheHead(
                f"commit {ctx.sha[:12]} is no longer the head of {branch} ({head[:12]}): applying "
                "it would undo what was merged since; nothing was applied (the newer commit's "
                "own apply run applies it)"
            )
        if dispatched:
            return None
        found = reviewed_plan(gh, repo, ctx.sha, job.target.label, job.bot_login)
    click.echo(
        f"rovo-reconcile: applying the plan reviewed on PR #{found.pr_number} "
        f"(commit {found.head_sha[:12]}, {found.digest})",
        err=True,
    )
    return found


def _reviewed_plan(reviewed: ReviewedPlan) -> Plan:
    """The reviewed plan of the artifact (whose digest `reviewed_plan` checked)."""
    try:
        return load_plan(json.dumps(reviewed.plan), "the plan artifact")
    except RovoError as e:
        raise NoReviewedPlan(f"the plan artifact is not a plan file: {e}") from e


class NotTheHead(GuardRefused):
    """The commit to apply is not the head of the default branch any more (a re-run)."""


def _origin(reviewed: ReviewedPlan | None, job: ApplyJob) -> str:
    if reviewed is not None:
        return f"Applying the plan reviewed on PR #{reviewed.pr_number} (`{reviewed.digest}`)."
    forced = " with `--force`" if job.force else ""
    return f"Dispatched by hand{forced}; reason: {json.dumps(job.reason, ensure_ascii=False)}."


def _finish(ctx: GitHubContext, code: int, summary: str, refused: str | None = None) -> int:
    """The job summary and outputs on every path; `refused` also becomes an annotation."""
    append_summary(ctx, summary + "\n")
    set_output(ctx, "exit-code", str(code))
    if refused is not None:
        click.echo(annotation("error", "rovo-reconcile apply", refused))
    return code
