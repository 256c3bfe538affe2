"""`rovo-reconcile github adopt` through the CLI subprocess, against the fake GitHub API and
the sandbox: live's out-of-band changes become one pull request holding exactly what `adopt`
writes, updated by later runs and closed once live matches the policies again."""

from __future__ import annotations

import shutil
from pathlib import Path

from .admin_ui import AdminUi
from .conftest import ROOT, CliRunner
from .emulator_fixture import start_emulator
from .fake_github import FakeGitHub, github_env, parse_github_output

FIXTURE = ROOT / "tests" / "adopt" / "commented.yaml"
ORG = "e2b8f4a6-0c1d-4f93-8b7e-5a6d3c9e1f20"
BASE = "b" * 40


def _checkout(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    (checkout / "policies").mkdir(parents=True)
    shutil.copy(FIXTURE, checkout / "policies" / "contoso.yaml")
    return checkout


def test_adoption_pull_request_opens_updates_and_closes(
    cli: CliRunner, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    checkout = _checkout(tmp_path)
    policy = checkout / "policies" / "contoso.yaml"
    original = policy.read_text("utf-8")
    sandbox = ("--sandbox-db", str(tmp_path / "sandbox.db"))
    assert cli("apply", "policies/", "--yes", *sandbox, cwd=checkout).code == 0
    state = tmp_path / "sandbox.db"
    with start_emulator(tmp_path, state=state) as emu, AdminUi(emu.url, None, ORG) as ui:
        ui.add_domain("https://new-tool.example.com/**")
        ui.edit_allowlist("Contractors", enabled=True)
    env = github_env(fake_github, tmp_path, event_name="schedule", sha=BASE)
    job = ("github", "adopt", "policies/", "--target", "sandbox", *sandbox)

    first = cli(*job, cwd=checkout, env=env)
    assert first.code == 0, first.stderr
    assert policy.read_text("utf-8") == original, "the job must not touch the checkout"
    (number,) = fake_github.pulls
    pull = fake_github.pulls[number]
    branch = pull["head"]["ref"]
    assert branch.startswith("rovo-reconcile/adopt-sandbox-")
    assert pull["state"] == "open"
    assert "accept 2 changes from live" in pull["title"]
    assert "`mcp.domains: + https://new-tool.example.com/**`" in pull["body"]
    assert "`ipAllowlists 'Contractors': enabled -> true`" in pull["body"]
    commit = fake_github.git_commits[fake_github.branches[branch]]
    assert commit["parents"] == [BASE]
    # the pull request holds exactly what `adopt` writes locally
    local = tmp_path / "local"
    shutil.copytree(checkout, local)
    assert cli("adopt", "policies/", *sandbox, cwd=local).code == 0
    adopted = (local / "policies" / "contoso.yaml").read_text("utf-8")
    assert fake_github.pull_files(number) == {"policies/contoso.yaml": adopted}
    assert parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())["adopt-pull-request"] == str(
        number
    )

    second = cli(*job, cwd=checkout, env=env)
    assert second.code == 0, second.stderr
    assert list(fake_github.pulls) == [number], "a second run opened another pull request"
    assert fake_github.requests_to(f"/pulls/{number}", "PATCH")
    assert fake_github.pull_files(number) == {"policies/contoso.yaml": adopted}

    # the policies win: apply puts live back (disabling takes --force), and the next run
    # closes the pull request
    assert cli("apply", "policies/", "--yes", "--force", *sandbox, cwd=checkout).code == 0
    third = cli(*job, cwd=checkout, env=env)
    assert third.code == 0, third.stderr
    assert fake_github.pulls[number]["state"] == "closed"
    assert "nothing to adopt" in fake_github.comments_on(number)[-1]["body"]
    assert branch not in fake_github.branches


def test_a_refused_file_is_left_out_and_the_job_says_so(
    cli: CliRunner, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    """Accepting a live state that shuts the mustAllow address out is never offered (exit 3)."""
    checkout = _checkout(tmp_path)
    sandbox = ("--sandbox-db", str(tmp_path / "sandbox.db"))
    assert cli("apply", "policies/", "--yes", *sandbox, cwd=checkout).code == 0
    state = tmp_path / "sandbox.db"
    with start_emulator(tmp_path, state=state) as emu, AdminUi(emu.url, None, ORG) as ui:
        ui.edit_allowlist("Head office and DR site", remove=["77.87.233.150/32"])
    env = github_env(fake_github, tmp_path, event_name="schedule", sha=BASE)
    result = cli(
        "github", "adopt", "policies/", "--target", "sandbox", *sandbox, cwd=checkout, env=env
    )
    assert result.code == 3, result.stderr
    assert "77.87.233.150" in result.stderr
    assert fake_github.pulls == {}
    assert "Not adopted" in Path(env["GITHUB_STEP_SUMMARY"]).read_text("utf-8")


def test_the_template_offers_the_adopt_job_commented_out_and_it_matches_the_workflow() -> None:
    """Opt-in (it needs write permissions): uncommented, it calls adopt.yml by SHA, after drift,
    with only what adopt.yml declares, and the read key."""
    from ruamel.yaml import YAML

    caller = ROOT / "examples" / "policy-repo" / ".github" / "workflows" / "drift.yml"
    lines = caller.read_text("utf-8").splitlines()
    start = lines.index("  # adopt:")
    block = "\n".join(line.replace("  # ", "  ", 1) for line in lines[start:] if line.strip())
    job = YAML(typ="safe", pure=True).load("jobs:\n" + block)["jobs"]["adopt"]
    assert job["needs"] == "drift"
    assert job["uses"].startswith("OWNER/rovo-reconcile/.github/workflows/adopt.yml@")
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    called = YAML(typ="safe", pure=True).load(
        (ROOT / ".github" / "workflows" / "adopt.yml").read_text("utf-8")
    )
    call = called["on"]["workflow_call"]
    assert set(job.get("with", {})) <= set(call["inputs"])
    assert set(job["secrets"]) == set(call["secrets"]) == {"ATLASSIAN_ADMIN_READ_KEY"}
    (inner,) = called["jobs"].values()
    assert inner["permissions"] == job["permissions"]
    assert inner["concurrency"]["group"] == "rovo-reconcile-live"


def test_the_action_runs_the_adopt_command(tmp_path: Path) -> None:
    """The action's step passes `adopt` through with the paths and target (a recording tool)."""
    from .action_runner import install_tool, run_action_step

    argv_file = tmp_path / "argv"
    install_tool(tmp_path, f'#!/bin/sh\nprintf "%s\\n" "$@" > "{argv_file}"\nexit 0\n')
    result = run_action_step(tmp_path, {"command": "adopt", "paths": "policies/ more/"})
    assert result.code == 0, result.output
    assert argv_file.read_text().splitlines() == [
        "github",
        "adopt",
        "policies/",
        "more/",
        "--target",
        "atlassian",
    ]
