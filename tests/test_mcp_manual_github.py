"""The GitHub jobs against a real org whose MCP endpoints answer 404: the PR comment lists
the manual steps and never says live matches; the drift issue shows MCP as unverifiable,
and its closing comment says what was not checked. The jobs run as the CLI does in the
action (`rovo-reconcile github ...`), against the fake GitHub API and a hostile Admin API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CliRunner, Result
from .fake_github import FakeGitHub, github_env
from .hostile_api import HostileApi, hostile_api
from .test_mcp_manual_e2e import KEY, NOT_FOUND, POLICY


@pytest.fixture
def api(tmp_path: Path) -> Iterator[HostileApi]:
    with hostile_api(tmp_path) as server:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            server.on(method, r"/rovo-mcp/", NOT_FOUND)
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "real.yaml").write_text(POLICY, encoding="utf-8")
    return root


def job(
    cli: CliRunner,
    api: HostileApi,
    fake: FakeGitHub,
    repo: Path,
    tmp_path: Path,
    *args: str,
    event_name: str = "schedule",
    event: dict[str, object] | None = None,
) -> Result:
    job_dir = tmp_path / f"job-{len(list(tmp_path.iterdir()))}"
    job_dir.mkdir()
    env = github_env(fake, job_dir, event_name=event_name, event=event)
    env["ATLASSIAN_ADMIN_API_KEY"] = KEY
    return cli("github", *args, "--api-url", api.url, cwd=repo, env=env)


def test_the_pr_comment_lists_the_manual_steps(
    cli: CliRunner, api: HostileApi, fake_github: FakeGitHub, repo: Path, tmp_path: Path
) -> None:
    pr = fake_github.add_pull(head_sha="a" * 40)
    event = {
        "number": pr,
        "pull_request": {
            "number": pr,
            "head": {"sha": "a" * 40, "repo": {"full_name": fake_github.repo}},
            "base": {"sha": "b" * 40, "repo": {"full_name": fake_github.repo}},
        },
    }
    result = job(
        cli,
        api,
        fake_github,
        repo,
        tmp_path,
        "plan",
        "policies/",
        "--out-dir",
        str(tmp_path / "out"),
        event_name="pull_request",
        event=event,
    )
    assert result.code == 2, result.stdout + result.stderr  # the allowlist is an API change
    (comment,) = fake_github.comments_on(pr)
    body = str(comment["body"])
    assert "MCP: 3 manual steps pending in 1 org" in body
    assert "MCP settings: not readable through any API; 3 manual steps" in body
    assert "cannot be read through any API: 3 manual step(s)" in body
    assert "live already matches" not in body


def test_the_drift_issue_shows_mcp_unverifiable_and_closes_honestly(
    cli: CliRunner, api: HostileApi, fake_github: FakeGitHub, repo: Path, tmp_path: Path
) -> None:
    found = job(cli, api, fake_github, repo, tmp_path, "drift", "policies/")
    assert found.code == 2, found.stdout + found.stderr  # the allowlist is missing: drift
    (issue,) = fake_github.issues.values()
    assert issue["state"] == "open"
    assert "### MCP settings not verifiable" in str(issue["body"])

    applied = cli(
        "apply", "policies/", "--yes", "--api-url", api.url, cwd=repo,
        env={"ATLASSIAN_ADMIN_API_KEY": KEY},
    )  # fmt: skip
    assert applied.code == 0, applied.stdout + applied.stderr

    calm = job(cli, api, fake_github, repo, tmp_path, "drift", "policies/")
    assert calm.code == 0, calm.stdout + calm.stderr
    (issue,) = fake_github.issues.values()
    assert issue["state"] == "closed"
    closing = str(fake_github.comments_on(issue["number"])[-1]["body"])
    assert "Live matches" not in closing
    assert "Nothing that could be read drifts any more" in closing
    assert "not readable through any API and were not checked" in closing
