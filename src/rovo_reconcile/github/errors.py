"""Errors of the GitHub glue. Both are RovoErrors, so `cli.main` reports them without a traceback.

    RovoError
    ├── GitHubError (1)        the GitHub API failed; `status` is the HTTP status (0: no answer)
    │   └── ArtifactError (1)  the plan artifact could not be fetched or was refused (size, zip bomb)
    └── NoReviewedPlan (3)     merge-apply found no plan a reviewer saw; `reason` says which step

Messages never contain the token: it is attached to requests in one place
(`client.GitHubClient`) and never formatted into text.
"""

from __future__ import annotations

from rovo_reconcile.errors import EXIT_ERROR, EXIT_GUARD, RovoError

__all__ = ["ArtifactError", "GitHubError", "NoReviewedPlan"]


class GitHubError(RovoError):
    """The GitHub API failed, in GitHub's own words where it gave any.

    `errors` holds the `code` of each entry of a 422 body (`already_exists`, `missing_field`),
    so a caller can accept one specific validation failure without parsing the message.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, status: int = 0, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class ArtifactError(GitHubError):
    """The plan artifact was missing from storage, too large, or not a zip we accept."""


class NoReviewedPlan(RovoError):
    """No reviewed plan can be tied to the merge commit, so apply must not write.

    Exit 3 like a guard refusal: nothing failed, the tool declined; a maintainer re-plans or
    re-runs apply through the forced `workflow_dispatch` route.
    """

    exit_code = EXIT_GUARD

    def __init__(self, reason: str) -> None:
        super().__init__(f"no reviewed plan: {reason}")
        self.reason = reason
