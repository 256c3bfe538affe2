"""GitHubContext from the environment, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rovo_reconcile.errors import UsageError
from rovo_reconcile.github.context import GitHubContext, append_summary, set_output

from .fake_github import FakeGitHub, github_env, parse_github_output

PR_EVENT = {
    "number": 7,
    "pull_request": {
        "number": 7,
        "head": {"sha": "a" * 40, "repo": {"full_name": "someone/policies"}},
        "base": {"sha": "b" * 40, "repo": {"full_name": "acme/policies"}},
    },
}


def test_from_env_reads_the_runner_variables(fake_github: FakeGitHub, tmp_path: Path) -> None:
    ctx = GitHubContext.from_env(github_env(fake_github, tmp_path, event=PR_EVENT))
    assert ctx.api_url == fake_github.url
    assert ctx.repository == "acme/policies"
    assert ctx.token is not None
    assert ctx.token.reveal() == fake_github.token
    assert ctx.run_url == "https://github.com/acme/policies/actions/runs/4242"
    assert ctx.output_path == tmp_path / "github_output"


def test_token_is_not_in_the_repr(fake_github: FakeGitHub, tmp_path: Path) -> None:
    ctx = GitHubContext.from_env(github_env(fake_github, tmp_path))
    assert fake_github.token not in repr(ctx)


def test_defaults_off_github() -> None:
    ctx = GitHubContext.from_env({})
    assert ctx.api_url == "https://api.github.com"
    assert (ctx.run_url, ctx.pull_request, ctx.token) == (None, None, None)
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        ctx.require_token()


def test_a_later_attempt_links_to_its_own_log() -> None:
    env = {"GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "9", "GITHUB_RUN_ATTEMPT": "2"}
    assert GitHubContext.from_env(env).run_url == "https://github.com/a/b/actions/runs/9/attempts/2"


def test_pull_request_from_a_fork(fake_github: FakeGitHub, tmp_path: Path) -> None:
    pr = GitHubContext.from_env(github_env(fake_github, tmp_path, event=PR_EVENT)).pull_request
    assert pr is not None
    assert (pr.number, pr.head_sha, pr.base_sha) == (7, "a" * 40, "b" * 40)
    assert pr.from_fork


def test_pull_request_from_the_same_repository(fake_github: FakeGitHub, tmp_path: Path) -> None:
    event = json.loads(json.dumps(PR_EVENT))
    event["pull_request"]["head"]["repo"]["full_name"] = "acme/policies"
    pr = GitHubContext.from_env(github_env(fake_github, tmp_path, event=event)).pull_request
    assert pr is not None
    assert not pr.from_fork


def test_push_event_has_no_pull_request(fake_github: FakeGitHub, tmp_path: Path) -> None:
    env = github_env(fake_github, tmp_path, event_name="push", event={"after": "c" * 40})
    assert GitHubContext.from_env(env).pull_request is None


def test_missing_event_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"GITHUB_EVENT_PATH .*cannot be read"):
        GitHubContext.from_env({"GITHUB_EVENT_PATH": str(tmp_path / "nope.json")})


def test_invalid_event_file_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match=r"GITHUB_EVENT_PATH .*not valid JSON"):
        GitHubContext.from_env({"GITHUB_EVENT_PATH": str(tmp_path / "event.json")})


def test_set_output_round_trips_multi_line_values(tmp_path: Path) -> None:
    ctx = GitHubContext(output_path=tmp_path / "out")
    tricky = "line 1\nghadelimiter_x\nEOF\nplan-file<<EOF\n\nlast"
    set_output(ctx, "exit-code", "2")
    set_output(ctx, "plan", tricky)
    set_output(ctx, "empty", "")
    outputs = parse_github_output((tmp_path / "out").read_text(encoding="utf-8"))
    assert outputs == {"exit-code": "2", "plan": tricky, "empty": ""}


def test_set_output_refuses_a_name_that_could_inject(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="output name"):
        set_output(GitHubContext(output_path=tmp_path / "out"), "a\nb", "x")


def test_outputs_and_summary_are_no_ops_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = GitHubContext()
    set_output(ctx, "x", "y")
    assert append_summary(ctx, "# hi") is False
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_summary_is_appended_whole_when_it_fits(tmp_path: Path) -> None:
    ctx = GitHubContext(summary_path=tmp_path / "summary")
    assert append_summary(ctx, "# one") is False
    assert append_summary(ctx, "# two\n") is False
    assert (tmp_path / "summary").read_text(encoding="utf-8") == "# one\n# two\n"


def test_summary_over_the_limit_is_cut_with_a_note(tmp_path: Path) -> None:
    ctx = GitHubContext(summary_path=tmp_path / "summary")
    markdown = "".join(f"- line {i} ünïcode\n" for i in range(5000))
    assert append_summary(ctx, markdown, limit=10_000) is True
    written = (tmp_path / "summary").read_bytes()
    assert len(written) <= 10_000
    text = written.decode("utf-8")
    assert "- line 0 ünïcode\n" in text
    assert "Cut here" in text
    assert text.split("\n> **Cut here")[0].endswith("ünïcode\n")  # cut at a line end


def test_summary_limit_counts_what_earlier_steps_wrote(tmp_path: Path) -> None:
    ctx = GitHubContext(summary_path=tmp_path / "summary")
    (tmp_path / "summary").write_text("x" * 9_000, encoding="utf-8")
    assert append_summary(ctx, "y\n" * 1_000, limit=10_000) is True
    assert (tmp_path / "summary").stat().st_size <= 10_000


def test_summary_cut_inside_a_code_fence_closes_it(tmp_path: Path) -> None:
    ctx = GitHubContext(summary_path=tmp_path / "summary")
    markdown = "# Plan\n```diff\n" + "+ https://x.example/**\n" * 2000 + "```\n"
    append_summary(ctx, markdown, limit=5_000)
    text = (tmp_path / "summary").read_text(encoding="utf-8")
    head, _note = text.split("\n> **Cut here", 1)
    assert head.count("```") % 2 == 0
    assert head.endswith("```\n")


def test_summary_keeps_within_githubs_one_mebibyte(tmp_path: Path) -> None:
    ctx = GitHubContext(summary_path=tmp_path / "summary")
    assert append_summary(ctx, "| org | change |\n" * 80_000) is True
    assert 1_000_000 < (tmp_path / "summary").stat().st_size <= 1024 * 1024
