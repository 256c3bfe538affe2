"""The command line itself: version, help, usage errors, no tracebacks."""

from __future__ import annotations

from rovo_reconcile import __version__

from .conftest import CliRunner


def test_version_prints_the_package_version(cli: CliRunner) -> None:
    result = cli("--version")
    assert result.code == 0
    assert __version__ in result.stdout


def test_help_lists_the_commands(cli: CliRunner) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "validate" in result.stdout
    assert "schema" in result.stdout


def test_unknown_option_is_a_usage_error_64(cli: CliRunner) -> None:
    result = cli("validate", "--frobnicate", ".")
    assert result.code == 64
    assert "Traceback" not in result.stderr


def test_missing_path_is_a_usage_error_64(cli: CliRunner) -> None:
    result = cli("validate", "does-not-exist.yaml")
    assert result.code == 64
    assert "does-not-exist.yaml: no such file or directory" in result.stderr
