"""Review of shared baselines (issue 8): the ways an org file, a broken chain or a hostile
`extends` could slip past the checks, each refused at file:line and never with a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import CliRunner
from .test_layering import _errors, _load, repo

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
