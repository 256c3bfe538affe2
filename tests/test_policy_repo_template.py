"""The policy-repository template and the GitHub delivery: what a new team copies must work as is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from rovo_reconcile.ack import load_acks

from .action_runner import ACTION, install_tool, run_action_step
from .conftest import ROOT, CliRunner

TEMPLATE = ROOT / "examples" / "policy-repo"
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATE_WORKFLOWS = TEMPLATE / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *TEMPLATE_WORKFLOWS.glob("*.yml")])
CALLER_FILES = sorted(TEMPLATE_WORKFLOWS.glob("*.yml"))
TEMPLATE_POLICIES = sorted((TEMPLATE / "policies").glob("*.y*ml"))

SHA_PINNED = re.compile(r"[^@\s]+@[0-9a-f]{40}")
CALLED_WORKFLOW = re.compile(r"[^/]+/rovo-reconcile/\.github/workflows/([^/@]+\.yml)@[0-9a-f]{40}")
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)")


def _load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text("utf-8"))


def _uses(node: Any) -> Iterator[str]:
    """Every `uses:` value anywhere in a workflow or action document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from _uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uses(item)


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_template_policies_validate(cli: CliRunner) -> None:
    assert TEMPLATE_POLICIES, "the template ships no example policy"
    result = cli("validate", str(TEMPLATE / "policies"), "--strict")
    assert result.code == 0, result.stdout + result.stderr


@pytest.mark.parametrize("policy", TEMPLATE_POLICIES, ids=_id)
def test_template_modeline_resolves_inside_the_template(policy: Path) -> None:
    match = MODELINE.match(policy.read_text("utf-8").splitlines()[0])
    assert match, f"{policy.name} does not start with the yaml-language-server modeline"
    target = (policy.parent / match.group(1)).resolve()
    assert target.is_relative_to(TEMPLATE.resolve()), f"{match.group(1)} leaves the template"
    assert target.read_bytes() == (ROOT / "schemas" / "rovo-policy.schema.json").read_bytes()


def test_template_ack_file_is_valid_and_empty() -> None:
    assert len(load_acks(TEMPLATE / "drift-ack.yaml")) == 0


@pytest.mark.parametrize("path", [*WORKFLOW_FILES, ACTION], ids=_id)
def test_every_action_is_pinned_by_commit_sha(path: Path) -> None:
    uses = list(_uses(_load(path)))
    unpinned = [u for u in uses if not u.startswith(("./", "$/")) and not SHA_PINNED.fullmatch(u)]
    assert not unpinned, f"{_id(path)}: not pinned by a 40-hex commit SHA: {unpinned}"


@pytest.mark.parametrize("caller", CALLER_FILES, ids=_id)
def test_template_callers_match_the_reusable_workflows(caller: Path) -> None:
    """Each caller names an existing reusable workflow and passes only what it declares."""
    jobs = _load(caller)["jobs"]
    assert jobs, f"{caller.name} has no job"
    for name, job in jobs.items():
        match = CALLED_WORKFLOW.fullmatch(job.get("uses", ""))
        assert match, f"{caller.name}: job {name} does not call a rovo-reconcile workflow by SHA"
        called_path = WORKFLOWS / match.group(1)
        assert called_path.is_file(), f"{caller.name} calls {match.group(1)}, which does not exist"
        call = _load(called_path)["on"]["workflow_call"]
        assert set(job.get("with", {})) <= set(call.get("inputs", {}))
        assert set(job.get("secrets", {})) <= set(call.get("secrets", {}))
        required = {k for k, v in call.get("secrets", {}).items() if v.get("required")}
        assert required <= set(job.get("secrets", {}))


def test_plan_never_sees_the_write_key() -> None:
    """The write key is named only by apply, whose job runs in the protected environment."""
    for path in WORKFLOW_FILES:
        text = path.read_text("utf-8")
        if "ATLASSIAN_ADMIN_WRITE_KEY" in text:
            assert path.name == "apply.yml", f"{_id(path)} names the write key"
    apply = _load(WORKFLOWS / "apply.yml")
    assert [job["environment"] for job in apply["jobs"].values()] == ["atlassian-admin"]


def _run_action_step(
    tmp_path: Path, exit_code: int = 0, **inputs: str
) -> tuple[int, list[str], str]:
    """Run the action's `run` step as GitHub would, with a fake tool that records its argv."""
    argv_file = tmp_path / "argv"
    install_tool(tmp_path, f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\nexit {exit_code}\n')
    result = run_action_step(tmp_path, {k.replace("_", "-"): v for k, v in inputs.items()})
    argv = argv_file.read_text().splitlines() if argv_file.exists() else []
    return result.code, argv, result.output


def test_action_builds_the_command_line_from_inputs(tmp_path: Path) -> None:
    code, argv, output = _run_action_step(
        tmp_path, command="plan", paths="policies/ more/\nother", base_dir="base", out_dir="out"
    )
    assert code == 0
    assert argv == [
        *("github", "plan", "policies/", "more/", "other", "--target", "atlassian"),
        *("--base-dir", "base", "--out-dir", "out"),
    ]
    assert "exit-code=0" in output


def test_action_passes_a_forced_reason_as_one_argument_and_never_expands_it(tmp_path: Path) -> None:
    reason = 'allowlist retired; see "SEC-9" $(touch pwned) *'
    _, argv, _ = _run_action_step(
        tmp_path, command="apply", force="true", reason=reason, args="--concurrency 2"
    )
    assert argv[-5:] == ["--reason", reason, "--force", "--concurrency", "2"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(("tool_exit", "step_exit"), [(0, 0), (2, 0), (1, 1), (3, 3)])
def test_action_step_fails_on_error_and_refusal_only(
    tmp_path: Path, tool_exit: int, step_exit: int
) -> None:
    code, _, output = _run_action_step(tmp_path, tool_exit, command="drift", ack="drift-ack.yaml")
    assert (code, output.strip()) == (step_exit, f"exit-code={tool_exit}")


def test_action_refuses_an_unknown_command(tmp_path: Path) -> None:
    code, argv, _ = _run_action_step(tmp_path, command="destroy")
    assert (code, argv) == (64, [])


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
        for r in requirements
    }


def test_the_action_installs_every_dependency_from_the_hash_lock() -> None:
    """The lock the action installs with --require-hashes covers pyproject's dependencies."""
    import tomllib

    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    source = (ROOT / ".github" / "action-requirements.in").read_text("utf-8")
    listed = [line for line in source.splitlines() if line and not line.startswith("#")]
    assert _names(listed) == _names(wanted) | {"setuptools"}, "refresh action-requirements.in"
    lock = (ROOT / ".github" / "action-requirements.txt").read_text("utf-8")
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}", lock, re.MULTILINE
    )
    assert len(pins) == len(re.findall(r"^[A-Za-z0-9_.-]+==", lock, re.MULTILINE)), (
        "a pin lacks a hash"
    )
    assert _names(listed) <= _names(pins), "re-run pip-compile (see action-requirements.in)"
