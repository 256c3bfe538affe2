"""What a command imports is part of its start-up time (issue 9): ~230 CLI processes run in the
test suite alone. Heavy libraries load only on the path that needs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import EXAMPLES

_RUN_AND_LIST = """\
import sys
from rovo_reconcile.cli import run
code = run(sys.argv[1:])
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
sys.exit(code)
"""


def _imported(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, set(proc.stderr.splitlines()[-1].split())


def test_validate_of_valid_policies_imports_neither_httpx_nor_jsonschema(tmp_path: Path) -> None:
    """The compiled schema check answers for a valid file; jsonschema only describes errors."""
    code, modules = _imported(tmp_path, "validate", str(EXAMPLES))
    assert code == 0
    assert "rovo_reconcile" in modules
    assert not {"httpx", "jsonschema", "deepdiff"} & modules


def test_an_invalid_policy_is_described_by_jsonschema(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {id: 7}\n", "utf-8")
    code, modules = _imported(tmp_path, "validate", str(policy))
    assert code == 1
    assert "jsonschema" in modules


def test_plan_and_apply_load_deepdiff_only_to_explain_a_stale_plan(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    for args in (("plan", str(examples)), ("apply", str(examples), "--yes")):
        code, modules = _imported(tmp_path, *args)
        assert code in (0, 2), args
        assert "httpx" in modules
        assert not {"deepdiff", "jsonschema"} & modules, args


def test_importing_the_models_builds_no_pydantic_validator() -> None:
    """Models build on first use (`defer_build`): a program that imports them but validates
    nothing pays no schema build, nor pydantic's plugin lookup over every installed
    distribution (the CLI also turns that lookup off: cli.main)."""
    code = (
        "import os; os.environ.pop('PYDANTIC_DISABLE_PLUGINS', None)\n"
        "import pydantic.plugin._loader as loader\n"
        "import rovo_reconcile.policy.model, rovo_reconcile.api.shapes\n"
        "print(loader._plugins is None)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "True"
