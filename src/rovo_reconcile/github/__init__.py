"""The GitHub glue: the sticky PR plan comment, the reviewed-plan lookup and the drift issue.

Each job of `rovo-reconcile github` builds a `GitHubContext` from the environment, opens one
`GitHubClient`, and calls the functions here; nothing here imports click or renders a plan.
Tests run all of it against `tests/fake_github.py` over a loopback socket.

    context.py   GITHUB_* variables, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY
    client.py    httpx: auth, pagination, bounded retries, artifact download
    comments.py  marker, upsert, hidden metadata line
    issues.py    the labelled drift issue
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
