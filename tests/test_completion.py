"""`rovo-reconcile completion bash|zsh|fish`: click's scripts, and completion that works
through the lazily imported subcommands (emulator, github) without importing them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CliRunner

BIN = Path(sys.executable).parent


def _complete(shell: str, words: str, cword: int | str) -> list[str]:
    """Ask the CLI for completions as the shell's script does: through its environment
    (fish passes the word being completed as COMP_CWORD, the others its index)."""
    env = {
        **os.environ,
        "_ROVO_RECONCILE_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_script_for_the_shell(cli: CliRunner, shell: str) -> None:
    result = cli("completion", shell)
    assert result.code == 0, result.stderr
    source = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile"],
        env={**os.environ, "_ROVO_RECONCILE_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert result.stdout.rstrip("\n") == source.rstrip("\n")
    assert "_ROVO_RECONCILE_COMPLETE" in result.stdout


def test_unknown_shell_is_a_usage_error(cli: CliRunner) -> None:
    result = cli("completion", "tcsh")
    assert result.code == 64
    assert "bash" in result.stderr


def test_subcommands_complete_including_lazy_ones_and_their_subcommands() -> None:
    assert _complete("bash", "rovo-reconcile e", 1) == ["plain,emulator", "plain,export"]
    assert _complete("bash", "rovo-reconcile ad", 1) == ["plain,adopt"]
    assert _complete("bash", "rovo-reconcile github ", 2) == [
        "plain,adopt",
        "plain,apply",
        "plain,drift",
        "plain,plan",
    ]
    assert "plain,--dry-run" in _complete("bash", "rovo-reconcile adopt --d", 2)
    assert _complete("bash", "rovo-reconcile completion ", 2) == [
        "plain,bash",
        "plain,zsh",
        "plain,fish",
    ]
    zsh = _complete("zsh", "rovo-reconcile emu", 1)
    assert zsh[:2] == ["plain", "emulator"]
    assert zsh[2] == "Run a local emulator of the Atlassian Admin API."
    assert _complete("fish", "rovo-reconcile gith", "gith")[0].startswith("plain,github")


def test_completing_a_command_name_imports_no_lazy_command() -> None:
    """A TAB press must stay fast: the emulator (starlette) and github modules stay unimported."""
    code = (
        "import os, sys\n"
        "from rovo_reconcile.cli import run\n"
        "try:\n    run([])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('starlette', 'rovo_reconcile.github',"
        " 'rovo_reconcile.emulator'))), file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "_ROVO_RECONCILE_COMPLETE": "bash_complete",
        "COMP_WORDS": "rovo-reconcile ",
        "COMP_CWORD": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "plain,github" in proc.stdout
    assert proc.stderr.strip() == "[]"


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_the_bash_script_completes_in_bash(tmp_path: Path) -> None:
    """Source the printed script in a real bash and call its completion function."""
    if not (BIN / "rovo-reconcile").exists():
        pytest.skip("the rovo-reconcile console script is not installed beside this python")
    script = (
        'eval "$(rovo-reconcile completion bash)"\n'
        "COMP_WORDS=(rovo-reconcile gith); COMP_CWORD=1\n"
        "_rovo_reconcile_completion rovo-reconcile\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["github"]
