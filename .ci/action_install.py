"""Run action.yml's install step as GitHub would (bash -e, the step's env) into a scratch
RUNNER_TEMP, then the installed tool's --version: proves the hash-locked dependency list
still installs and builds the tool with nothing unlocked."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    action = YAML(typ="safe", pure=True).load((ROOT / "action.yml").read_text("utf-8"))
    step = next(s for s in action["runs"]["steps"] if s.get("name", "").startswith("Install"))
    with tempfile.TemporaryDirectory() as runner_temp:
        env = {
            **os.environ,
            "RUNNER_TEMP": runner_temp,
            "ACTION_PATH": str(ROOT),
            "PYTHON": sys.executable,
            "PIP_CONSTRAINT": "",  # a machine-wide constraint file is no part of GitHub's runner
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env=env,
            check=False,
        )
    print(f"action install step: exit {proc.returncode}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
