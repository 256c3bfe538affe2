"""GitHubClient against the fake GitHub: headers, pagination, retries, errors, the token kept in."""

from __future__ import annotations

import httpx
import pytest

from rovo_reconcile.api.secrets import Secret
from rovo_reconcile.github.client import GitHubClient
from rovo_reconcile.github.context import GitHubContext
from rovo_reconcile.github.errors import GitHubError

from .fake_github import FakeGitHub


def comments_path(fake: FakeGitHub, number: int) -> str:
    return f"/repos/{fake.repo}/issues/{number}/comments"


def test_sends_githubs_headers(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    number = fake_github.add_issue("t", "b")
    github_client.get_json(f"/repos/{fake_github.repo}/issues/{number}")
    (sent,) = fake_github.requests
    assert sent.authorization == f"Bearer {fake_github.token}"
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["user-agent"].startswith("rovo-reconcile/")


def test_paginate_follows_link_next(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    number = fake_github.add_issue("t", "b")
    for i in range(7):
        fake_github.add_comment(number, f"c{i}")
    fake_github.max_per_page = 3
    bodies = [c["body"] for c in github_client.paginate(comments_path(fake_github, number))]
    assert bodies == [f"c{i}" for i in range(7)]
    pages = fake_github.requests_to("/comments")
    assert [r.query.get("page") for r in pages] == [None, "2", "3"]
    assert pages[0].query["per_page"] == "100"


def test_retries_502_on_a_fake_clock(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    number = fake_github.add_issue("t", "b")
    fake_github.fail_next(2, status=502)
    assert github_client.get_json(f"/repos/{fake_github.repo}/issues/{number}")["number"] == number
    assert fake_github.slept == [1.0, 2.0]


def test_retries_are_bounded(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    fake_github.fail_next(10, status=503, message="Service Unavailable")
    with pytest.raises(GitHubError, match="HTTP 503: Service Unavailable") as caught:
        github_client.get_json(f"/repos/{fake_github.repo}/issues/1")
    assert caught.value.status == 503
    assert len(fake_github.requests) == 4


def test_a_post_is_not_resent_after_502(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    number = fake_github.add_issue("t", "b")
    fake_github.fail_next(1, status=502)
    with pytest.raises(GitHubError, match="HTTP 502"):
        github_client.post_json(comments_path(fake_github, number), {"body": "x"})
    assert len(fake_github.requests) == 1


def test_rate_limit_waits_as_retry_after_says(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    number = fake_github.add_issue("t", "b")
    fake_github.fail_next(1, status=403, headers={"Retry-After": "7"}, message="secondary rate")
    fake_github.fail_next(1, status=429, headers={"x-ratelimit-remaining": "0"})
    github_client.get_json(f"/repos/{fake_github.repo}/issues/{number}")
    assert fake_github.slept == [7.0, 60.0]


def test_a_plain_403_is_not_retried(fake_github: FakeGitHub, github_client: GitHubClient) -> None:
    fake_github.fail_next(1, status=403, message="Resource not accessible by integration")
    with pytest.raises(GitHubError, match="Resource not accessible by integration") as caught:
        github_client.post_json(f"/repos/{fake_github.repo}/issues", {"title": "x"})
    assert caught.value.status == 403
    assert fake_github.slept == []


def test_a_rate_limit_longer_than_max_wait_fails_now(fake_github: FakeGitHub) -> None:
    fake_github.fail_next(1, status=429, headers={"Retry-After": "3600"}, message="slow down")
    with (
        GitHubClient(
            fake_github.url, Secret(fake_github.token), sleep=fake_github.slept.append
        ) as client,
        pytest.raises(GitHubError, match="HTTP 429: slow down"),
    ):
        client.get_json(f"/repos/{fake_github.repo}/issues/1")
    assert fake_github.slept == []


def test_wrong_token_is_a_clear_error_without_the_token(fake_github: FakeGitHub) -> None:
    wrong = "ghp_wrongTokenValue987654321"
    with (
        GitHubClient(fake_github.url, Secret(wrong)) as client,
        pytest.raises(GitHubError) as caught,
    ):
        client.get_json(f"/repos/{fake_github.repo}/issues")
    assert caught.value.status == 401
    assert caught.value.exit_code == 1
    assert "Bad credentials" in str(caught.value)
    assert "GITHUB_TOKEN" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(client)):
        assert wrong not in text


def test_from_context_needs_a_token() -> None:
    from rovo_reconcile.errors import UsageError

    with pytest.raises(UsageError, match="GITHUB_TOKEN is not set"):
        GitHubClient.from_context(GitHubContext())


def test_a_token_that_cannot_be_a_header_is_refused_unquoted() -> None:
    with pytest.raises(GitHubError) as caught:
        GitHubClient("http://127.0.0.1:9", Secret("ghp_bad token\n"))
    assert "ghp_bad" not in str(caught.value)


def test_no_answer_is_a_github_error(fake_github: FakeGitHub) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport = httpx.MockTransport(refuse)
    with (
        GitHubClient(fake_github.url, Secret(fake_github.token), transport=transport) as client,
        pytest.raises(GitHubError, match=r"no answer from 127\.0\.0\.1") as caught,
    ):
        client.get_json("/repos/acme/policies/issues")
    assert caught.value.status == 0


def test_a_next_page_on_another_host_is_refused(fake_github: FakeGitHub) -> None:
    # The fake's links stay on its host; a MockTransport stands in for a hostile one.
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[{"id": 1}], headers={"Link": '<https://evil.example/next>; rel="next"'}
        )

    with (
        GitHubClient(
            "https://api.github.com", Secret("t"), transport=httpx.MockTransport(answer)
        ) as client,
        pytest.raises(GitHubError, match=r"refusing to send the token to evil\.example"),
    ):
        list(client.paginate("/repos/a/b/issues"))
