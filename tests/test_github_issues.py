"""The drift issue: opened once, updated while drift persists, closed when it is gone."""

from __future__ import annotations

import pytest

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.errors import GitHubError
from rovo_reconcile.github.issues import (
    DEFAULT_LABEL,
    close_issue,
    drift_marker,
    ensure_label,
    find_issue,
    upsert_issue,
)

from .fake_github import FakeGitHub

MARKER = drift_marker("atlassian (https://api.atlassian.com)")


def test_drift_issue_opens_updates_and_closes(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    repo = fake_github.repo
    opened = upsert_issue(github_client, repo, DEFAULT_LABEL, MARKER, "Drift: 2 orgs", "night 1")
    assert opened[0] == "opened"
    number = opened[1]
    issue = fake_github.issues[number]
    assert [label["name"] for label in issue["labels"]] == [DEFAULT_LABEL]
    assert issue["body"] == f"{MARKER}\nnight 1"

    updated = upsert_issue(github_client, repo, DEFAULT_LABEL, MARKER, "Drift: 1 org", "night 2")
    assert updated == ("updated", number)
    assert (issue["title"], issue["body"]) == ("Drift: 1 org", f"{MARKER}\nnight 2")
    assert len(fake_github.issues) == 1

    assert close_issue(github_client, repo, DEFAULT_LABEL, MARKER, "Live matches again.") == number
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert [c["body"] for c in fake_github.comments_on(number)] == ["Live matches again."]

    assert close_issue(github_client, repo, DEFAULT_LABEL, MARKER, "again") is None
    reopened = upsert_issue(github_client, repo, DEFAULT_LABEL, MARKER, "Drift", "night 4")
    assert reopened[0] == "opened"
    assert reopened[1] != number


def test_the_label_is_created_once(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    ensure_label(github_client, fake_github.repo, "drift")
    ensure_label(github_client, fake_github.repo, "drift")  # 422 already_exists is fine
    assert list(fake_github.labels) == ["drift"]
    assert [r.body["name"] for r in fake_github.requests_to("/labels", "POST")] == [
        "drift",
        "drift",
    ]


def test_other_label_failures_are_errors(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    fake_github.fail_next(1, status=403, message="Resource not accessible by integration")
    with pytest.raises(GitHubError, match="not accessible") as caught:
        ensure_label(github_client, fake_github.repo, "drift")
    assert caught.value.status == 403


def test_pull_requests_with_the_label_and_marker_are_skipped(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40, labels=(DEFAULT_LABEL,))
    fake_github.issues[pr]["body"] = f"{MARKER}\na PR quoting the marker"
    assert find_issue(github_client, fake_github.repo, DEFAULT_LABEL, MARKER) is None
    action, number = upsert_issue(github_client, fake_github.repo, DEFAULT_LABEL, MARKER, "t", "b")
    assert action == "opened"
    assert number != pr
    assert fake_github.issues[pr]["body"] == f"{MARKER}\na PR quoting the marker"


def test_issues_without_the_marker_or_closed_are_left_alone(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    team = fake_github.add_issue("Team issue", "ours", labels=(DEFAULT_LABEL,), login="octocat")
    old = fake_github.add_issue("Old drift", f"{MARKER}\n", labels=(DEFAULT_LABEL,), state="closed")
    other_target = fake_github.add_issue(
        "Sandbox drift", f"{drift_marker('sandbox (x.db)')}\n", labels=(DEFAULT_LABEL,)
    )
    _, number = upsert_issue(github_client, fake_github.repo, DEFAULT_LABEL, MARKER, "t", "b")
    assert number not in (team, old, other_target)
    assert fake_github.issues[team]["body"] == "ours"


def test_the_open_issue_is_found_beyond_the_first_page(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    for i in range(5):
        fake_github.add_issue(f"other {i}", "", labels=(DEFAULT_LABEL,), login="octocat")
    ours = fake_github.add_issue("Drift", f"{MARKER}\nold", labels=(DEFAULT_LABEL,))
    fake_github.max_per_page = 2
    assert upsert_issue(github_client, fake_github.repo, DEFAULT_LABEL, MARKER, "t", "new") == (
        "updated",
        ours,
    )
    assert len(fake_github.requests_to("/issues", "GET")) == 3
