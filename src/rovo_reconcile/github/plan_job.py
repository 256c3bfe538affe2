"""The pull-request job (`rovo-reconcile github plan`): what a reviewer sees before merging.

Validate (annotations on the changed lines), plan against live with the guards apply will
check, write the JSON plan for the artifact, put the whole plan in the job summary, and keep
one sticky comment per PR and target up to date whatever the outcome: invalid policies, no
read key (a fork's PR), an org that could not be read, a guard refusal, no changes. A stale
comment must never survive a failed run, or a reviewer approves a plan that no longer holds.

The comment's hidden metadata line carries the changes digest and the head commit planned,
which is what `github apply` compares at merge. A digest is recorded only for a plan apply
could carry out (exit 0 or 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import click

from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.errors import EXIT_ERROR, RovoError, UsageError
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import format_metadata, plan_marker, upsert_comment
from rovo_reconcile.github.context import GitHubContext, PullRequest, append_summary, set_output
from rovo_reconcile.github.errors import GitHubError
from rovo_reconcile.github.log import annotation
from rovo_reconcile.github.phases import read_and_plan
from rovo_reconcile.github.reviewed import PLAN_FILE, artifact_name
from rovo_reconcile.github.stamp import stamp
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.plan import Plan
from rovo_reconcile.plan_json import write_plan
from rovo_reconcile.policy.loader import LoadedPolicy, PolicySet, load_policies
from rovo_reconcile.reconcile import plan_exit_code, plan_org
from rovo_reconcile.render.plan_markdown import fenced, md_text, render_plan_markdown
from rovo_reconcile.render.report import render_report
from rovo_reconcile.targets import API_KEY_ENV, Target

__all__ = ["PlanJob", "run_plan_job"]

SUMMARY_LIMIT = 900_000
"""The job summary takes 1 MiB a step: the whole plan fits where a comment cannot hold it."""


@dataclass(frozen=True)
class PlanJob:
    paths: Sequence[str]
    target: Target
    today: date
    out_dir: Path
    base_dir: Path | None = None
    concurrency: int = 8
    bot_login: str = "github-actions[bot]"
    mcp: McpMode = "auto"


@dataclass
class _Outcome:
    """What the comment, the summary and the outputs say."""

    code: int
    body: str
    summary: str
    plan: Plan | None = None


def run_plan_job(ctx: GitHubContext, job: PlanJob, env: Mapping[str, str]) -> int:
    pr = ctx.pull_request
    if pr is None:
        raise UsageError(
            "github plan runs on pull_request events: GITHUB_EVENT_PATH holds no pull request"
        )
    now = datetime.now(UTC)
    head = _head(ctx, pr, job.target.label, now)
    summary = f"[the job summary]({ctx.run_url})" if ctx.run_url else "the job summary"
    where = f"in {summary} and in the artifact `{artifact_name(pr.number, pr.head_sha)}`"
    outcome = _plan(job, head, pr, env, where)
    artifact = None
    if outcome.plan is not None:
        job.out_dir.mkdir(parents=True, exist_ok=True)
        with (job.out_dir / PLAN_FILE).open("w", encoding="utf-8") as stream:
            write_plan(outcome.plan, stream)
        artifact = artifact_name(pr.number, pr.head_sha)
        set_output(ctx, "plan-file", str(job.out_dir / PLAN_FILE))
        set_output(ctx, "artifact-name", artifact)
    applyable = outcome.plan is not None and outcome.code in (0, 2)
    digest = outcome.plan.changes_digest if applyable and outcome.plan is not None else ""
    metadata = {
        "digest": digest or None,
        "head_sha": pr.head_sha,
        "run_id": ctx.run_id,
        "artifact": artifact,
        "target": job.target.label,
        "exit_code": outcome.code,
    }
    marker = plan_marker(job.target.label)
    comment = f"{marker}\n{format_metadata(metadata)}\n{outcome.body}"
    append_summary(ctx, outcome.summary)
    set_output(ctx, "exit-code", str(outcome.code))
    set_output(ctx, "changes-digest", digest)
    _post(ctx, pr, marker, comment, job.bot_login)
    return outcome.code


def _head(ctx: GitHubContext, pr: PullRequest, label: str, now: datetime) -> str:
    return f"#### rovo-reconcile plan · `{label}`\n\n{stamp(ctx, pr.head_sha, now)}"


def _plan(job: PlanJob, head: str, pr: PullRequest, env: Mapping[str, str], where: str) -> _Outcome:
    """`where`: where the full plan is, for a comment cut to GitHub's size limit."""
    try:
        checked = load_policies(job.paths, job.today, packed=True)
    except UsageError as e:  # no policy file at all: still say so on the PR
        text = f"{head}\n\n**Nothing was planned:** {md_text(str(e))}"
        return _Outcome(e.exit_code, text, text)
    annotations = render_report(checked, "github")
    if annotations.strip():
        click.echo(annotations, nl=False)  # stdout: GitHub turns these lines into annotations
    if checked.errors:
        return _invalid(head, checked)
    if (
        job.target.name == "atlassian"
        and job.target.api_key_file is None
        and not env.get(API_KEY_ENV, "").strip()
    ):
        return _no_key(head, pr)
    base = _BaseChanges(job) if job.base_dir is not None else None
    try:
        run = read_and_plan(job.target, checked.policies, job.today, job.concurrency, job.mcp, base)
    except RovoError as e:
        text = (
            f"{head}\n\n**The plan failed:** {md_text(str(e))}\n\nMerging will not apply anything."
        )
        return _Outcome(e.exit_code, text, text)
    plan = run.plan
    reverts = base.reverts(plan) if base is not None else None
    preface = f"{head}\n\n{_on_merge(plan)}"
    body = render_plan_markdown(plan, preface=preface, full_plan_at=where, reverts=reverts)
    full = render_plan_markdown(
        plan, preface=preface, full_plan_at=where, reverts=reverts, limit=SUMMARY_LIMIT
    )
    click.echo(
        f"rovo-reconcile: planned {len(plan.orgs)} org(s) with {run.requests} requests", err=True
    )
    return _Outcome(plan_exit_code(plan, detailed=True), body, full, plan)


def _on_merge(plan: Plan) -> str:
    """What merging this PR will do, in one sentence a reviewer can hold the tool to."""
    failed = sum(org.error is not None for org in plan.orgs)
    refused = sum(bool(org.refusals) for org in plan.orgs)
    if failed:
        return (
            f"**On merge:** nothing is applied from this plan: {failed} org(s) could not be "
            "planned. Fix that and push again."
        )
    if refused:
        return (
            f"**On merge:** apply will refuse {refused} org(s) (see below) and write nothing "
            "there; a forced apply needs the `workflow_dispatch` route with a reason."
        )
    count = sum(len(org.changes) for org in plan.orgs)
    steps, orgs = plan.manual
    by_hand = (
        f" The MCP settings of {orgs} org(s) cannot be read through any API: {steps} manual "
        "step(s) (see below) are for an admin in Atlassian Administration, not for apply."
        if steps
        else ""
    )
    if not count:
        if steps:
            return f"**On merge:** nothing to apply through the API.{by_hand}"
        return "**On merge:** nothing to apply; live already matches."
    return (
        f"**On merge:** apply makes exactly these {count} change(s), and refuses to write if "
        f"live or `main` changed since this plan.{by_hand}"
    )


def _invalid(head: str, checked: PolicySet) -> _Outcome:
    text = (
        f"{head}\n\n**The policies are invalid**: {checked.errors} error(s), "
        f"{checked.warnings} warning(s); nothing was planned and merging will not apply anything."
        " The errors are also annotated on the changed lines.\n\n"
    )
    report = render_report(checked, "text")
    return _Outcome(EXIT_ERROR, text + fenced(report[:55_000]), text + fenced(report))


def _no_key(head: str, pr: PullRequest) -> _Outcome:
    if pr.from_fork:
        why = "pull requests from forks get no repository secrets"
        fix = "A maintainer can push this branch to the repository to get a plan."
    else:
        why = "the secret ATLASSIAN_ADMIN_READ_KEY is not set"
        fix = "Add it as a repository secret (see the policy repository's README)."
    text = (
        f"{head}\n\n**Cannot plan without the read key:** {why}, so live state could not be "
        f"read and nothing was planned; merging will not apply anything. {fix}"
    )
    click.echo(annotation("error", "rovo-reconcile", f"cannot plan without the read key: {why}"))
    return _Outcome(EXIT_ERROR, text, text)


class _BaseChanges:
    """Changes the base commit's policies would make too: they undo drift, not this PR.

    Each org is planned from the base policy against the same live state as the PR's plan,
    as that org's read ends (`compute_plan`'s `on_planned`), so no live state is kept for it.
    """

    def __init__(self, job: PlanJob) -> None:
        assert job.base_dir is not None
        self.today = job.today
        try:
            base = load_policies([str(job.base_dir / p) for p in job.paths], job.today, packed=True)
        except UsageError:  # the base has no policies yet: every change is the PR's
            base = PolicySet()
        self.invalid = bool(base.errors)
        self.policies = {} if self.invalid else {p.org_id: p for p in base.policies}
        self.made: set[tuple[str, str]] = set()
        """(org id, repr of what a change writes) for each change the base would make."""

    def __call__(self, loaded: LoadedPolicy, live: LiveOrg | RovoError) -> None:
        base = self.policies.get(loaded.org_id)
        if base is not None:
            before = plan_org(base, live, self.today)
            self.made.update((before.org_id, repr(c.what())) for c in before.changes)

    def reverts(self, plan: Plan) -> frozenset[tuple[str, str]] | None:
        """The PR plan's (org id, change key) that the base would make too; None when the
        base cannot tell (its policies are invalid)."""
        if self.invalid:
            return None
        return frozenset(
            (org.org_id, c.key)
            for org in plan.orgs
            for c in org.changes
            if (org.org_id, repr(c.what())) in self.made
        )


def _post(ctx: GitHubContext, pr: PullRequest, marker: str, body: str, bot: str) -> None:
    """Upsert the sticky comment; a fork's read-only token cannot, and says so without failing."""
    try:
        with GitHubClient.from_context(ctx) as gh:
            action, comment_id = upsert_comment(
                gh, ctx.require_repository(), pr.number, marker, body, bot_login=bot
            )
    except GitHubError as e:
        if pr.from_fork and e.status in (401, 403, 404):
            click.echo(
                f"rovo-reconcile: note: could not comment on a fork's PR ({e}); the job summary "
                "has the status",
                err=True,
            )
            return
        raise
    click.echo(f"rovo-reconcile: plan comment {action} (id {comment_id})", err=True)
