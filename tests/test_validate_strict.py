"""`validate --strict`: the summary line agrees with the exit code."""

from __future__ import annotations

from pathlib import Path

from .conftest import CliRunner

WARNS = Path(__file__).parent / "corpus" / "invalid" / "mcp-api-token-blocked-supported.yaml"


def test_strict_with_a_warning_says_invalid_and_exits_1(cli: CliRunner) -> None:
    """A warning under --strict fails the run, and the summary says so instead of 'valid'."""
    result = cli("validate", "--strict", str(WARNS))
    assert result.code == 1
    assert result.stdout.splitlines()[-1] == (
        "1 policy file checked: invalid under --strict (0 errors, 1 warning)"
    )


def test_without_strict_the_same_file_is_valid(cli: CliRunner) -> None:
    """Without --strict a warning keeps the verdict valid and the exit code 0."""
    result = cli("validate", str(WARNS))
    assert result.code == 0
    assert result.stdout.splitlines()[-1] == "1 policy file checked: valid (0 errors, 1 warning)"
