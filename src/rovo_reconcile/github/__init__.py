"""The GitHub glue: the sticky PR plan comment, the reviewed-plan lookup and the drift issue.

Each job of `rovo-reconcile github` builds a `GitHubContext` from the environment, opens one
`GitHubClient`, and calls the library modules below, which neither print nor render a plan.
The job modules and the command are the CLI layer of GitHub Actions: they print the plan or
report, write $GITHUB_OUTPUT and the job summary, and return an exit code. Tests run all of
it against `tests/fake_github.py` over a loopback socket.

    command.py    the click group `rovo-reconcile github plan|apply|drift|adopt`
    plan_job.py   PR: validate, plan with guards, sticky comment, summary, JSON plan artifact
    apply_job.py  merge: apply exactly the reviewed plan; dispatch: forced apply with a reason
    drift_job.py  nightly: one labelled issue opened, updated and closed with drift
    adopt_job.py  after drift: live's changes as one pull request to the policies
    phases.py     read-and-plan and apply, with per-org progress on stderr
    stamp.py      the commit, run and time line

    context.py   GITHUB_* variables, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY
    client.py    httpx: auth, pagination, bounded retries, artifact download
    comments.py  marker, upsert, hidden metadata line
    issues.py    the labelled drift issue
    adopt_pr.py  the adoption branch (Git data API commit) and its pull request
    reviewed.py  merge commit -> PR -> comment -> digest and plan artifact
    errors.py    GitHubError, ArtifactError, NoReviewedPlan
"""

from __future__ import annotations

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import (
    DEFAULT_BOT_LOGIN,
    Comment,
    find_comment,
    format_metadata,
    parse_metadata,
    plan_marker,
    upsert_comment,
)
from rovo_reconcile.github.context import GitHubContext, PullRequest, append_summary, set_output
from rovo_reconcile.github.errors import ArtifactError, GitHubError, NoReviewedPlan
from rovo_reconcile.github.issues import (
    DEFAULT_LABEL,
    Issue,
    close_issue,
    drift_marker,
    find_issue,
    upsert_issue,
)
from rovo_reconcile.github.reviewed import (
    PLAN_FILE,
    MergedPull,
    ReviewedPlan,
    artifact_name,
    download_plan,
    find_merged_pr,
    reviewed_plan,
)

__all__ = [
    "DEFAULT_BOT_LOGIN",
    "DEFAULT_LABEL",
    "PLAN_FILE",
    "ArtifactError",
    "Comment",
    "GitHubClient",
    "GitHubContext",
    "GitHubError",
    "Issue",
    "MergedPull",
    "NoReviewedPlan",
    "PullRequest",
    "ReviewedPlan",
    "append_summary",
    "artifact_name",
    "close_issue",
    "download_plan",
    "drift_marker",
    "find_comment",
    "find_issue",
    "find_merged_pr",
    "format_metadata",
    "parse_metadata",
    "plan_marker",
    "reviewed_plan",
    "set_output",
    "upsert_comment",
    "upsert_issue",
]
