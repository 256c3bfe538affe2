"""Review of shared baselines (issue 8): the ways an org file, a broken chain or a hostile
`extends` could slip past the checks, each refused at file:line and never with a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import CliRunner
from .test_layering import CORP, _errors, _load, _org, repo

__all__ = ["repo"]  # the fixture, shared with test_layering


def test_a_symlink_loop_is_a_located_problem_never_an_internal_error(
    repo: Path, cli: CliRunner
) -> None:
    """A *.yaml symlink loop in a policy directory, and one named by extends, are reported at
    a file and line; `validate` exits 1 with no internal error."""
    os.symlink("loop-b.yaml", repo / "baselines" / "loop-a.yaml")
    os.symlink("loop-a.yaml", repo / "baselines" / "loop-b.yaml")
    os.symlink("self.yaml", repo / "orgs" / "self.yaml")
    result = _load(repo, "", extends="../baselines/loop-a.yaml")
    assert "orgs/acme.yaml:3: extends names ../baselines/loop-a.yaml, which cannot be read" in (
        _errors(result)
    )
    validated = cli("validate", "orgs", "baselines", cwd=repo)
    assert validated.code == 1, validated.stderr
    assert "internal error" not in validated.stderr + validated.stdout
    assert "orgs/self.yaml:1:1" in validated.stdout


def test_extends_reads_only_a_relative_yaml_file_and_never_shows_another_files_text(
    repo: Path, cli: CliRunner
) -> None:
    """`extends: ../.env` or an absolute path would read any file the runner can and print its
    text in the schema error (a secret in a PR comment). Only a relative path to a .yaml or
    .yml file is followed; anything else is refused at the extends line, unread."""
    secret = repo / ".env"
    secret.write_text("ATLASSIAN_ADMIN_API_KEY=not-for-your-eyes\n")
    (repo / "baselines" / "abs.yaml").write_text(CORP)
    for extends in ("../.env", str(secret), str(repo / "baselines" / "abs.yaml")):
        (repo / "orgs" / "acme.yaml").write_text(_org("", extends=extends))
        validated = cli("validate", "orgs", cwd=repo)
        assert validated.code == 1, extends
        assert "not-for-your-eyes" not in validated.stdout + validated.stderr
        assert validated.stdout.startswith("orgs/acme.yaml:3:10: error: extends names "), (
            validated.stdout
        )
        assert "a relative path to a .yaml or .yml file" in validated.stdout
