"""What a CI log sees, through the real CLI: missing ack files, colour, progress, apply JSON, journal."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .conftest import EXAMPLES, CliRunner

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROGRESS = re.compile(
    r"rovo-reconcile: \[(\d+)/(\d+)\] org (\S+) (read|applied) in \d+\.\d\d s \(\d+\.\d s elapsed\)"
)
_GITHUB = ("GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_ACTOR", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY")


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(EXAMPLES, copy)
    return copy


@pytest.fixture
def applied(cli: CliRunner, examples: Path) -> Path:
    """The examples applied to the sandbox, so live matches them."""
    result = cli("apply", str(examples), "--yes")
    assert result.code == 0, result.stdout + result.stderr
    return examples


# ------------------------------------------------------------------ drift --ack


def test_missing_ack_file_means_no_acknowledgements(
    cli: CliRunner, applied: Path, tmp_path: Path
) -> None:
    """A repository without drift-ack.yaml: exit 0, one note on stderr, the same report."""
    plain = cli("drift", str(applied))
    result = cli("drift", str(applied), "--ack", "drift-ack.yaml")
    assert result.code == 0, result.stderr
    assert result.stdout == plain.stdout
    note = "rovo-reconcile: note: drift-ack.yaml does not exist; no drift is acknowledged"
    assert result.stderr.count(note) == 1


@pytest.mark.parametrize("text", ["", "# nothing acknowledged\n"])
def test_empty_ack_file_is_fine(cli: CliRunner, applied: Path, tmp_path: Path, text: str) -> None:
    """A 0-byte or comments-only ack file acknowledges nothing and is not an error."""
    (tmp_path / "drift-ack.yaml").write_text(text, encoding="utf-8")
    result = cli("drift", str(applied), "--ack", "drift-ack.yaml")
    assert result.code == 0, result.stderr
    assert "note:" not in result.stderr


def test_malformed_ack_file_is_still_an_error(
    cli: CliRunner, examples: Path, tmp_path: Path
) -> None:
    """An ack file that exists and is wrong fails with its file:line:column."""
    (tmp_path / "drift-ack.yaml").write_text("acknowledged: yes\n", encoding="utf-8")
    result = cli("drift", str(examples), "--ack", "drift-ack.yaml")
    assert result.code == 1
    assert "drift-ack.yaml:1:15: 'acknowledged' must be a list of entries" in result.stderr


# ------------------------------------------------------------------ colour


def _broken(examples: Path) -> Path:
    path = examples / "enterprise.yaml"
    path.write_text(path.read_text("utf-8").replace("213.61.38.0/26", "213.61.38.1/26"))
    return examples


@pytest.mark.parametrize(
    ("env", "coloured"),
    [  # the whole table is in test_output.py; these two go through click's own stripping
        ({"NO_COLOR": "", "FORCE_COLOR": "1"}, True),  # empty NO_COLOR means nothing
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR wins
    ],
)
def test_validate_colour_follows_no_color_and_force_color(
    cli: CliRunner, examples: Path, env: dict[str, str], coloured: bool
) -> None:
    """validate colours its text report only when asked, and the words never change."""
    broken = _broken(examples)
    result = cli("validate", str(broken), env=env)
    plain = cli("validate", str(broken))
    assert result.code == plain.code == 1
    assert ("\x1b[" in result.stdout) is coloured
    assert _ANSI.sub("", result.stdout) == plain.stdout
    if coloured:
        assert "\x1b[1;31merror:\x1b[0m" in result.stdout


def test_drift_text_is_coloured_when_forced(cli: CliRunner, applied: Path, tmp_path: Path) -> None:
    """drift's text report is coloured under FORCE_COLOR; JSON never is."""
    extra = applied / "small-team.yaml"
    extra.write_text(extra.read_text("utf-8").replace("127.0.0.1", "127.0.0.2"))
    forced = {"NO_COLOR": "", "FORCE_COLOR": "1"}
    result = cli("drift", str(applied), env=forced)
    plain = cli("drift", str(applied))
    assert result.code == plain.code == 2
    assert "\x1b[31mdrift\x1b[0m" in result.stdout
    assert _ANSI.sub("", result.stdout) == plain.stdout
    assert "\x1b[" not in cli("drift", str(applied), "--format", "json", env=forced).stdout


# ------------------------------------------------------------------ progress


def test_multi_org_runs_report_progress_on_stderr(cli: CliRunner, examples: Path) -> None:
    """Four orgs: a line per org read (plan), and per org applied (apply); stdout unchanged."""
    planned = cli("plan", str(examples))
    lines = [m.groups() for m in _PROGRESS.finditer(planned.stderr)]
    assert [(k, n, what) for k, n, _, what in lines] == [
        (str(i), "4", "read") for i in (1, 2, 3, 4)
    ]
    assert "rovo-reconcile: [" not in planned.stdout

    applied = cli("apply", str(examples), "--yes")
    assert applied.code == 0, applied.stderr
    done = [(n, what) for _, n, _, what in (m.groups() for m in _PROGRESS.finditer(applied.stderr))]
    assert done == [("4", "read")] * 4 + [("4", "applied")] * 4


def test_single_org_runs_print_no_progress(cli: CliRunner, examples: Path) -> None:
    """One org: no progress lines at all."""
    result = cli("plan", str(examples / "small-team.yaml"))
    assert result.code == 0
    assert "rovo-reconcile: [" not in result.stderr


# ------------------------------------------------------------------ apply --format json


def test_apply_json_report(cli: CliRunner, examples: Path) -> None:
    """stdout is one JSON document: target, writes, exit code, orgs with their outcomes."""
    result = cli("apply", str(examples), "--yes", "--format", "json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "rovo-reconcile plan for target" in result.stderr  # the plan went to stderr
    assert report["format_version"] == "1"
    assert report["exit_code"] == 0
    assert report["target"].startswith("sandbox (")
    assert report["writes"] > 0
    assert len(report["orgs"]) == 4
    org = report["orgs"][0]
    assert set(org) == {
        "org_id",
        "file",
        "exit_code",
        "message",
        "converged",
        "ip_allowlists_converged",
        "mcp",
        "refusals",
        "notes",
        "outcomes",
        "new_plan_changes",
    }
    assert org["converged"] is True
    assert set(org["outcomes"][0]) == {"key", "action", "resource", "status", "detail"}
    assert {o["status"] for o in org["outcomes"]} == {"applied"}
    assert result.stdout == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    again = cli("apply", str(examples), "--yes", "--format", "json")
    assert again.code == 0
    assert json.loads(again.stdout) == {
        "exit_code": 0,
        "format_version": "1",
        "orgs": [],
        "summary": {"applied": 0, "failed": 0, "skipped": 0, "manual_steps": 0},
        "target": report["target"],
        "writes": 0,
    }


# ------------------------------------------------------------------ journal context


def _journal(tmp_path: Path) -> list[dict[str, str]]:
    text = (tmp_path / ".rovo-reconcile" / "journal.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_journal_lines_carry_github_context(
    cli: CliRunner, examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In GitHub Actions each journal line names the commit, run, actor and run link."""
    for name in _GITHUB:
        monkeypatch.delenv(name, raising=False)
    env = {
        "GITHUB_SHA": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "GITHUB_RUN_ID": "9876",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/rovo-policies",
    }
    result = cli("apply", str(examples / "small-team.yaml"), "--yes", env=env)
    assert result.code == 0, result.stderr
    for line in _journal(tmp_path):
        assert line["commit"] == env["GITHUB_SHA"]
        assert line["run_id"] == "9876"
        assert line["actor"] == "octocat"
        assert line["run_url"] == "https://github.com/acme/rovo-policies/actions/runs/9876"


def test_journal_lines_have_no_github_keys_outside_github(
    cli: CliRunner, examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without GITHUB_* the keys are absent, not empty."""
    for name in _GITHUB:
        monkeypatch.delenv(name, raising=False)
    assert cli("apply", str(examples / "small-team.yaml"), "--yes").code == 0
    for line in _journal(tmp_path):
        assert not {"commit", "run_id", "actor", "run_url"} & set(line)
