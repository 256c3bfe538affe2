"""The published pre-commit hook (`.pre-commit-hooks.yaml`), run for real through
`pre-commit try-repo` on a policy repository, offline: pip installs rovo-reconcile into
the hook's environment from this checkout and its dependencies from a wheelhouse rebuilt
from the installed test environment (tests/wheelhouse.py), with no package index."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from .conftest import EXAMPLES, ROOT

HOOKS = ROOT / ".pre-commit-hooks.yaml"
TEMPLATE_CONFIG = ROOT / "examples" / "policy-repo" / ".pre-commit-config.yaml"


def _load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text("utf-8"))


def test_the_hook_validates_the_policies_folder_when_a_policy_changes() -> None:
    (hook,) = _load(HOOKS)
    assert hook["id"] == "rovo-reconcile-validate"
    assert hook["language"] == "python"  # pre-commit installs this repository's package
    assert hook["entry"] == "rovo-reconcile validate"
    assert hook["args"] == ["policies/"]
    assert hook["pass_filenames"] is False  # the whole set: two files for one org is an error
    import re

    files = re.compile(hook["files"])
    assert files.search("policies/acme.yaml")
    assert files.search("policies/emea/acme.yml")
    assert not files.search(".github/workflows/plan.yml")
    assert not files.search("drift-ack.yaml")


def test_the_template_config_uses_the_published_hook_pinned_by_sha() -> None:
    (repo,) = _load(TEMPLATE_CONFIG)["repos"]
    assert repo["repo"] == "https://github.com/OWNER/rovo-reconcile"
    assert len(repo["rev"]) == 40
    assert [h["id"] for h in repo["hooks"]] == ["rovo-reconcile-validate"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(
    importlib.util.find_spec("pre_commit") is None or shutil.which("git") is None,
    reason="pre-commit (a test extra) or git is not installed",
)
def test_pre_commit_try_repo_runs_the_hook_offline(tmp_path: Path) -> None:
    """The hook's environment installs offline and validates the whole policies/ folder:
    a typo fails the commit with file:line; broken YAML outside policies/ is not its business.
    (One run: each try-repo builds a new environment, about 15 s of CPU.)"""
    from .wheelhouse import build_wheelhouse

    wheels = build_wheelhouse(tmp_path / "wheels")
    repo = tmp_path / "policy-repo"
    (repo / "policies").mkdir(parents=True)
    shutil.copy(EXAMPLES / "small-team.yaml", repo / "policies")
    (repo / "notes.yaml").write_text("this: [is not: valid\n")
    broken = (
        (EXAMPLES / "locked-down.yaml")
        .read_text("utf-8")
        .replace("apps: [jira, jsm,", "apps: [jria, jsm,")
    )
    (repo / "policies" / "broken.yaml").write_text(broken)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_CONFIG_FILE": os.devnull,  # no machine-wide index or constraints
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VIRTUALENV_NO_DOWNLOAD": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "rovo-reconcile-validate"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "rovo-reconcile validate" in output
    assert "Failed" in output
    assert "policies/broken.yaml:" in output
    assert "jria" in output
    assert "notes.yaml" not in output.split("rovo-reconcile validate", 1)[1]
    # the tool ran in the hook's own environment, over the whole folder (both files)
    assert "2 policy files checked: invalid" in output
