"""Named pipes and other special files: refused or read with a deadline, never waited on forever."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from rovo_reconcile.policy.files import read_pipe, special_kind

from .conftest import CliRunner

KEY = "special-files-key-0123456789"


def fifo(tmp_path: Path, name: str = "pipe") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def test_an_ack_file_or_plan_file_that_is_a_fifo_is_refused_at_once(
    cli: CliRunner, tmp_path: Path
) -> None:
    policies = Path(__file__).parent.parent / "examples" / "policies"
    ack = cli("drift", str(policies), "--ack", str(fifo(tmp_path, "ack")))
    assert ack.code == 64
    assert "is a named pipe (FIFO), not an acknowledgement file" in ack.stderr
    plan = cli("apply", "--plan", str(fifo(tmp_path, "plan")))
    assert plan.code == 64
    assert "is a named pipe (FIFO), not a plan file" in plan.stderr


def test_a_key_file_may_be_a_pipe_with_a_writer(cli: CliRunner, tmp_path: Path) -> None:
    """`--api-key-file <(pass show atlassian)`: the key is read and used."""
    pipe = fifo(tmp_path)

    def writer() -> None:
        with pipe.open("w") as stream:
            stream.write(KEY + "\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = cli(
        "show", "--org", "o1", "--api-url", "http://127.0.0.1:9", "--api-key-file", str(pipe)
    )
    thread.join(10)
    assert result.code == 1  # nothing listens on port 9: the key was read, the call was made
    assert "connection refused" in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_a_pipe_nobody_writes_to_reads_as_nothing_after_the_deadline(tmp_path: Path) -> None:
    assert read_pipe(fifo(tmp_path), timeout=0.3) is None


def test_special_kind_names_what_is_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert special_kind(tmp_path / "file") is None
    assert special_kind(tmp_path) == "a directory"
    assert special_kind(fifo(tmp_path)) == "a named pipe (FIFO)"
    assert special_kind(Path("/dev/null")) == "a character device"
