"""Ctrl-C: exit 130 with one line on stderr, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .conftest import EXAMPLES


def test_ctrl_c_during_a_read_exits_130_saying_interrupted(tmp_path: Path) -> None:
    """click turns a KeyboardInterrupt into Abort; the CLI reported it as exit 1, "aborted"."""
    accepted = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        held: list[socket.socket] = []

        def accept() -> None:  # an API that takes the request and never answers
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            accepted.set()

        threading.Thread(target=accept, daemon=True).start()
        port = server.getsockname()[1]
        env = {**os.environ, "ATLASSIAN_ADMIN_API_KEY": "k", "NO_COLOR": "1"}
        env.pop("ROVO_RECONCILE_DEBUG", None)
        command = [
            sys.executable,
            "-m",
            "rovo_reconcile",
            "plan",
            str(EXAMPLES / "small-team.yaml"),
        ]
        proc = subprocess.Popen(
            [*command, "--api-url", f"http://127.0.0.1:{port}", "--timeout", "60"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert accepted.wait(30), "the plan never sent its first request"
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for conn in held:
                conn.close()
    assert proc.returncode == 130, err
    assert "rovo-reconcile: interrupted" in err
    assert "Traceback" not in err
    assert out == ""
