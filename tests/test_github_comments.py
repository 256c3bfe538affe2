"""The sticky plan comment: found by marker and author, edited in place, duplicates collapsed."""

from __future__ import annotations

import json

import pytest

from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.comments import (
    find_comment,
    format_metadata,
    parse_metadata,
    plan_marker,
    upsert_comment,
)

from .fake_github import FakeGitHub

MARKER = plan_marker("atlassian (https://api.atlassian.com)")


def test_created_once_then_edited_in_place(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    first = upsert_comment(github_client, fake_github.repo, pr, MARKER, "plan one")
    second = upsert_comment(github_client, fake_github.repo, pr, MARKER, "plan two")
    assert first[0] == "created"
    assert second == ("updated", first[1])
    (comment,) = fake_github.comments_on(pr)
    assert comment["body"] == f"{MARKER}\nplan two"
    assert comment["user"]["login"] == "github-actions[bot]"


def test_a_body_that_starts_with_the_marker_is_kept_as_is(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    upsert_comment(github_client, fake_github.repo, pr, MARKER, f"{MARKER}\nbody")
    assert fake_github.comments_on(pr)[0]["body"] == f"{MARKER}\nbody"


def test_duplicates_from_a_race_collapse_into_the_oldest(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    oldest = fake_github.add_comment(pr, f"{MARKER}\nrun 1")
    fake_github.add_comment(pr, f"{MARKER}\nrun 2")
    fake_github.add_comment(pr, f"{MARKER}\r\nrun 3 (CRLF)")
    assert upsert_comment(github_client, fake_github.repo, pr, MARKER, "run 4") == (
        "updated",
        oldest,
    )
    assert [c["id"] for c in fake_github.comments_on(pr)] == [oldest]
    assert len(fake_github.requests_to("/issues/comments/", "DELETE")) == 2


def test_a_humans_comment_carrying_the_marker_is_ignored(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    human = fake_github.add_comment(pr, f"{MARKER}\nI typed the marker", login="mallory")
    action, comment_id = upsert_comment(github_client, fake_github.repo, pr, MARKER, "plan")
    assert action == "created"
    assert comment_id != human
    assert fake_github.comments[human]["body"] == f"{MARKER}\nI typed the marker"
    found = find_comment(github_client, fake_github.repo, pr, MARKER)
    assert found is not None
    assert found.id == comment_id


def test_a_custom_bot_login_is_honoured(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    app_comment = fake_github.add_comment(pr, f"{MARKER}\nx", login="policy-bot[bot]")
    found = find_comment(github_client, fake_github.repo, pr, MARKER, bot_login="policy-bot[bot]")
    assert found is not None
    assert found.id == app_comment
    assert find_comment(github_client, fake_github.repo, pr, MARKER) is None


def test_other_targets_and_quoting_comments_do_not_match(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    fake_github.add_comment(pr, f"{plan_marker('sandbox (x.db)')}\nother target")
    fake_github.add_comment(pr, f"> {MARKER}\nquoted")
    assert find_comment(github_client, fake_github.repo, pr, MARKER) is None


def test_comments_beyond_the_first_page_are_found(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    for i in range(150):
        fake_github.add_comment(pr, f"review comment {i}", login="reviewer")
    ours = fake_github.add_comment(pr, f"{MARKER}\nold plan")
    assert upsert_comment(github_client, fake_github.repo, pr, MARKER, "new") == ("updated", ours)
    assert len(fake_github.requests_to("/comments", "GET")) == 2
    assert len(fake_github.comments_on(pr)) == 151


def test_markers_differ_per_target_and_cannot_close_the_html_comment() -> None:
    assert plan_marker("sandbox (a.db)") != plan_marker("sandbox (b.db)")
    nasty = plan_marker("x --> <b>y</b>\n--!>")
    assert nasty.startswith("<!-- rovo-reconcile:plan target=")
    inner = nasty[len("<!--") : -len("-->")]
    assert "--" not in inner
    assert ">" not in inner
    assert "\n" not in nasty


METADATA = {
    "digest": "sha256:" + "0" * 64,
    "head_sha": "a" * 40,
    "run_id": 4242,
    "artifact": "rovo-reconcile-plan-7-" + "a" * 40,
    "target": "atlassian (https://x.example/--> <script>)",
    "exit_code": -1,
}


def test_metadata_round_trips_and_stays_inside_its_comment() -> None:
    line = format_metadata(METADATA)
    assert line.startswith("<!-- rovo-reconcile:reviewed ")
    assert line.endswith(" -->")
    inner = line[len("<!--") : -len("-->")]
    assert "--" not in inner
    assert ">" not in inner
    assert parse_metadata(f"{MARKER}\n{line}\n\n# Plan\n") == METADATA


@pytest.mark.parametrize(
    "body",
    [
        "no metadata here",
        "<!-- rovo-reconcile:reviewed {not json} -->",
        "<!-- rovo-reconcile:reviewed [1, 2] -->",
        '<!-- rovo-reconcile:reviewed {"digest": "x"}',
        "",
    ],
)
def test_unreadable_metadata_is_none(body: str) -> None:
    assert parse_metadata(body) is None


def test_metadata_survives_crlf_bodies() -> None:
    body = f"{MARKER}\r\n{format_metadata({'digest': 'd'})}\r\nplan"
    assert parse_metadata(body) == {"digest": "d"}


def test_metadata_line_is_valid_json_inside() -> None:
    line = format_metadata({"a": "<-->"})
    payload = line.removeprefix("<!-- rovo-reconcile:reviewed ").removesuffix(" -->")
    assert json.loads(payload) == {"a": "<-->"}
