"""Issue 11 item 5: a FIFO, a device or another non-regular file given as a policy path (or
found in a directory) is refused with a located message instead of blocking the run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rovo_reconcile.cli import run

from .conftest import ROOT, CliRunner

MINIMAL = ROOT / "tests" / "corpus" / "valid" / "minimal.yaml"

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
def test_fifo_given_as_path_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    """Opening a FIFO with no writer blocks forever; the run now refuses it at 1:1, exit 1.
    (Before, this subprocess never ended.)"""
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    result = cli("validate", "--format", "json", str(fifo))
    assert result.code == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["file"], problem["line"], problem["column"]) == (str(fifo), 1, 1)
    assert problem["code"] == "file.not-regular"
    assert "a named pipe (FIFO), not a regular file" in problem["message"]


@needs_fifo
def test_fifo_found_in_a_directory_is_refused_and_the_rest_is_read(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A FIFO named *.yaml inside a policy directory: refused, the other files still checked."""
    root = tmp_path / "policies"
    root.mkdir()
    shutil.copy(MINIMAL, root / "a-minimal.yaml")
    os.mkfifo(root / "b-pipe.yaml")
    result = cli("validate", "policies")
    assert result.code == 1
    assert "policies/b-pipe.yaml:1:1: error: this is a named pipe (FIFO)" in result.stdout
    assert result.stdout.endswith("2 policy files checked: invalid (1 error, 0 warnings)\n")


@needs_fifo
def test_plan_refuses_a_fifo_before_reading_live_state(cli: CliRunner, tmp_path: Path) -> None:
    """plan goes through the same loader: exit 1 with the located message, nothing read."""
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    result = cli("plan", str(fifo), "--sandbox-db", str(tmp_path / "s.db"))
    assert result.code == 1
    assert f"{fifo}:1:1: error: this is a named pipe (FIFO)" in result.stderr
    assert not (tmp_path / "s.db").exists()


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null here")
def test_device_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """/dev/null is a character device: refused as one (it used to read as an empty file)."""
    code = run(["validate", "--format", "json", "/dev/null"])
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert code == 1
    assert problem["code"] == "file.not-regular"
    assert "a character device" in problem["message"]


def test_symlink_to_a_regular_file_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What counts is the file a link points at: a link to a policy is read as before."""
    link = tmp_path / "linked.yaml"
    link.symlink_to(MINIMAL)
    code = run(["validate", "--format", "json", "--strict", str(link)])
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert code == 0
