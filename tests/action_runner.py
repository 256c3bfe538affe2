"""Run the composite action's `run` step as GitHub would: inputs through `env:`, bash with
`-eo pipefail`, $RUNNER_TEMP holding the venv the install step made, $GITHUB_OUTPUT a file.

The tool in that venv is a small script: either a fake that records its argv (to test how
the step builds the command line) or the real CLI of this checkout (end-to-end tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .conftest import ROOT

__all__ = ["ACTION", "StepResult", "install_tool", "real_tool", "run_action_step"]

ACTION = ROOT / "action.yml"


@dataclass(frozen=True)
class StepResult:
    code: int
    stdout: str
    stderr: str
    output: str
    """What the step (and the tool) wrote to $GITHUB_OUTPUT."""


def install_tool(runner_temp: Path, script: str) -> Path:
    """Put `script` where the action's install step leaves the tool."""
    tool = runner_temp / "rovo-reconcile-venv" / "bin" / "rovo-reconcile"
    tool.parent.mkdir(parents=True, exist_ok=True)
    tool.write_text(script, encoding="utf-8")
    tool.chmod(0o755)
    return tool


def real_tool() -> str:
    """A tool script that runs this checkout's CLI with the test interpreter."""
    return f'#!/bin/sh\nexec "{sys.executable}" -m rovo_reconcile "$@"\n'


def run_action_step(
    runner_temp: Path,
    inputs: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> StepResult:
    """Run the `run` step with `inputs` (names as in action.yml) and extra `env`."""
    action = _load(ACTION)
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values["github-token"] = (env or {}).get("GITHUB_TOKEN", "")
    values.update(inputs)
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    step_env = {}
    for name, expression in step["env"].items():
        match = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", expression)
        assert match, f"env {name} is not a plain input: {expression}"
        step_env[name] = values[match.group(1)]
    full_env = {**(env or {})}
    output = Path(full_env.setdefault("GITHUB_OUTPUT", str(runner_temp / "github_output")))
    output.touch()
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={
            "PATH": os.environ["PATH"],
            "RUNNER_TEMP": str(runner_temp),
            "NO_COLOR": "1",
            **{k: v for k, v in os.environ.items() if k.startswith("ROVO_RECONCILE_")},
            **full_env,
            **step_env,
        },
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    return StepResult(proc.returncode, proc.stdout, proc.stderr, output.read_text("utf-8"))


def _load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text("utf-8"))
