"""The three workflows end to end: the action's step runs the real CLI, as GitHub would run it
(GITHUB_* variables, event file, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY), against the Admin API
emulator and the fake GitHub API, both on loopback. What upload-artifact does between the plan
and apply jobs is done here by hand (`upload`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rovo_reconcile.github.comments import parse_metadata

from .action_runner import StepResult, install_tool, real_tool, run_action_step
from .conftest import CliRunner
from .emulator_fixture import ADMIN_KEY, Emulator, EmulatorPool, admin_flags, ui_adds_domain, writes
from .fake_github import FakeGitHub, github_env, parse_github_output

KEY = ADMIN_KEY
ORG = "org-workflow"
HEAD = "a" * 40
BASE = "b" * 40
MERGE = "c" * 40

POLICY = f"""\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {{id: {ORG}, name: Acme Corp}}
mcp:
  domains:
    - pattern: https://app.example.com/**
      note: the internal assistant
ipAllowlists:
  - name: Office
    enabled: true
    apps: [jira]
    addresses: [52.14.0.0/16]
guards: {{mustAllow: [52.14.1.1]}}
"""


@pytest.fixture
def emulator(emulator_pool: EmulatorPool) -> Iterator[Emulator]:
    with emulator_pool.fresh(*admin_flags(KEY)) as emu:
        yield emu


@dataclass
class Repo:
    """A checkout of the policy repository, its base checkout, and the runner's temp dir."""

    root: Path
    runner_temp: Path

    def write(self, body: str, *, base: bool = False) -> None:
        self.write_file("acme.yaml", body, base=base)

    def write_file(self, name: str, body: str, *, base: bool = False) -> None:
        folder = self.root / (".rovo-reconcile-base/policies" if base else "policies")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    runner_temp = tmp_path / "runner"
    install_tool(runner_temp, real_tool())
    the_repo = Repo(tmp_path / "repo", runner_temp)
    the_repo.write(POLICY)
    the_repo.write("", base=True)
    (the_repo.root / ".rovo-reconcile-base/policies/acme.yaml").unlink()
    return the_repo


def pr_event(number: int, head: str = HEAD, head_repo: str | None = None) -> dict[str, object]:
    repo_name = {"full_name": "acme/policies"}
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head, "repo": {"full_name": head_repo or "acme/policies"}},
            "base": {"sha": BASE, "repo": repo_name},
        },
    }


def step(
    repo: Repo,
    fake: FakeGitHub,
    emu: Emulator,
    command: str,
    *,
    event_name: str,
    event: dict[str, object],
    sha: str = HEAD,
    key: str = KEY,
    **inputs: str,
) -> tuple[StepResult, dict[str, str], str]:
    """One job's action step; its result, its outputs and its job summary."""
    job_dir = repo.runner_temp / f"{command}-{len(list(repo.runner_temp.iterdir()))}"
    job_dir.mkdir()
    env = github_env(fake, job_dir, event_name=event_name, event=event, sha=sha)
    values = {"command": command, "api-key": key, "args": f"--api-url {emu.url}", **inputs}
    result = run_action_step(repo.runner_temp, values, env, cwd=repo.root)
    outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text("utf-8"))
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text("utf-8")
    return result, outputs, summary


def plan(
    repo: Repo, fake: FakeGitHub, emu: Emulator, pr: int, **kw: str
) -> tuple[StepResult, dict[str, str], str]:
    head = kw.pop("head", HEAD)
    event = pr_event(pr, head, kw.pop("head_repo", None))
    inputs = {"base-dir": ".rovo-reconcile-base", "out-dir": str(repo.runner_temp / "plan"), **kw}
    return step(repo, fake, emu, "plan", event_name="pull_request", event=event, sha=head, **inputs)


def upload(fake: FakeGitHub, outputs: dict[str, str], pr: int, head: str = HEAD) -> None:
    """What actions/upload-artifact does with the plan file between the jobs."""
    plan_file = Path(outputs["plan-file"])
    fake.add_artifact(
        f"rovo-reconcile-plan-{pr}-{head}", {"rovo-reconcile-plan.json": plan_file.read_bytes()}
    )


def apply_on_merge(
    repo: Repo, fake: FakeGitHub, emu: Emulator, *, main_head: str = MERGE
) -> tuple[StepResult, dict[str, str], str]:
    """The apply job of the push that merged into main; main's head is `main_head` by then."""
    fake.branches["main"] = main_head
    journal = str(repo.runner_temp / "journal.jsonl")
    return step(repo, fake, emu, "apply", event_name="push", event={}, sha=MERGE, journal=journal)


def planned_and_merged(repo: Repo, fake: FakeGitHub, emu: Emulator) -> int:
    """A PR planned, its plan uploaded as the artifact, and merged as MERGE: its number."""
    pr = fake.add_pull(head_sha=HEAD)
    _, outputs, _ = plan(repo, fake, emu, pr)
    upload(fake, outputs, pr)
    merge(fake, pr)
    return pr


def merge(fake: FakeGitHub, pr: int) -> None:
    """GitHub merges the PR as MERGE."""
    fake.pulls[pr].update(merge_commit_sha=MERGE, merged_at="2026-12-01T10:00:00Z")
    fake.commit_pulls.setdefault(MERGE, []).append(pr)


def dispatch_apply(repo: Repo, fake: FakeGitHub, emu: Emulator, reason: str) -> StepResult:
    """A maintainer's run by hand: applies the checkout as it is, with a reason."""
    fake.branches["main"] = BASE
    journal = str(repo.runner_temp / "dispatch.jsonl")
    result = step(
        repo,
        fake,
        emu,
        "apply",
        event_name="workflow_dispatch",
        event={},
        sha=BASE,
        reason=reason,
        journal=journal,
    )[0]
    assert result.code == 0, result.stdout + result.stderr
    return result


def the_comment(fake: FakeGitHub, pr: int) -> dict[str, object]:
    (comment,) = fake.comments_on(pr)
    return comment


def ui_adds(emu: Emulator, pattern: str) -> None:
    ui_adds_domain(emu, KEY, ORG, pattern)


# ----------------------------------------------------------------------------- plan on a PR


def test_plan_comment_is_created_once_then_edited_in_place(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD)
    first, outputs, summary = plan(repo, fake_github, emulator, pr)
    assert first.code == 0, first.stderr  # changes pending (2) passes the step
    assert outputs["exit-code"] == "2"
    body = str(the_comment(fake_github, pr)["body"])
    assert "Acme Corp (`org-workflow`)" in body
    assert "**On merge:** apply makes exactly these 2 change(s)" in body
    assert f"commit [`{HEAD[:12]}`]" in body
    assert "[run 4242]" in body
    assert "https://app.example.com/**: the internal assistant" in body
    assert "*(this PR)*" in body
    assert "Acme Corp" in summary
    assert "<details>" in summary
    metadata = parse_metadata(body)
    assert metadata is not None
    assert metadata["digest"] == outputs["changes-digest"]
    assert metadata["head_sha"] == HEAD

    second_head = "d" * 40
    repo.write(POLICY.replace("52.14.0.0/16", "52.14.0.0/15"))
    second, outputs2, _ = plan(repo, fake_github, emulator, pr, head=second_head)
    assert second.code == 0
    comment = the_comment(fake_github, pr)  # still exactly one
    assert "52.14.0.0/15" in str(comment["body"])
    assert parse_metadata(str(comment["body"]))["head_sha"] == second_head  # type: ignore[index]
    assert outputs2["changes-digest"] != outputs["changes-digest"]


def test_a_failed_run_replaces_the_plan_comment(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD)
    assert plan(repo, fake_github, emulator, pr)[0].code == 0
    repo.write(POLICY.replace("52.14.0.0/16", "52.14.0.1/16"))
    result, outputs, summary = plan(repo, fake_github, emulator, pr, head="e" * 40)
    assert result.code == 1
    assert "::error file=policies/acme.yaml,line=" in result.stdout  # annotations
    body = str(the_comment(fake_github, pr)["body"])
    assert "**The policies are invalid**" in body
    assert "52.14.0.0/16" not in body.split("```")[0], "the old plan must not survive"
    metadata = parse_metadata(body)
    assert metadata is not None
    assert metadata["digest"] is None
    assert metadata["exit_code"] == 1
    assert outputs["changes-digest"] == ""
    assert "host bits" in summary


def test_a_guard_refusal_fails_the_pr_plan_with_exit_3(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    dispatch_apply(repo, fake_github, emulator, "set up the test org")
    pr = fake_github.add_pull(head_sha=HEAD)
    repo.write(POLICY.split("ipAllowlists:")[0] + "ipAllowlists: []\n")
    result, outputs, _ = plan(repo, fake_github, emulator, pr)
    assert result.code == 3
    assert outputs["exit-code"] == "3"
    body = str(the_comment(fake_github, pr)["body"])
    assert "### :no_entry: Apply will refuse" in body
    assert "the plan deletes the enabled allowlist" in body
    assert "**On merge:** apply will refuse 1 org(s)" in body
    assert parse_metadata(body)["digest"] is None  # type: ignore[index]


def test_a_fork_pr_without_the_read_key_gets_a_clear_status(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD, head_repo="someone/fork")
    result, _, summary = plan(repo, fake_github, emulator, pr, key="", head_repo="someone/fork")
    assert result.code == 1
    assert "cannot plan without the read key" in result.stdout  # an ::error annotation
    assert "pull requests from forks get no repository secrets" in summary
    assert writes(emulator) == 0


def test_changes_that_undo_live_drift_are_told_apart_from_the_pr(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    repo.write(POLICY, base=True)  # main already holds the policy and live matched it...
    dispatch_apply(repo, fake_github, emulator, "set up the test org")
    ui_adds(emulator, "https://colleague.example.com/**")  # ...until someone clicked
    repo.write(POLICY.replace("52.14.0.0/16", "52.14.0.0/15"))  # the PR's own change
    pr = fake_github.add_pull(head_sha=HEAD)
    assert plan(repo, fake_github, emulator, pr)[0].code == 0
    body = str(the_comment(fake_github, pr)["body"])
    lines = {line.split("  ")[0]: line for line in body.splitlines()}
    assert lines["- mcp.domain https://colleague.example.com/**"].endswith("(reverts live drift)")
    assert lines['~ ip_allowlist "Office"'].endswith("(this PR)")


# ----------------------------------------------------------------------------- apply on merge


def test_a_merged_pr_whose_plan_still_holds_is_applied(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = planned_and_merged(repo, fake_github, emulator)

    result, outputs, summary = apply_on_merge(repo, fake_github, emulator)

    assert result.code == 0, result.stdout + result.stderr
    assert outputs["exit-code"] == "0"
    assert f"Applying the plan reviewed on PR #{pr}" in summary
    assert "converged" in summary
    journal = [
        json.loads(line) for line in (repo.runner_temp / "journal.jsonl").read_text().splitlines()
    ]
    assert journal
    assert {e["commit"] for e in journal} == {MERGE}
    assert {e["actor"] for e in journal} == {"octocat"}


def test_a_ui_change_between_pr_and_merge_makes_apply_refuse_with_no_write(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    planned_and_merged(repo, fake_github, emulator)
    ui_adds(emulator, "https://colleague.example.com/**")
    before = writes(emulator)

    result, _outputs, summary = apply_on_merge(repo, fake_github, emulator)

    assert result.code == 3
    assert writes(emulator) == before
    assert "live changed since review" in summary
    assert "mcp.domain:https://colleague.example.com/**: new, not in the reviewed plan" in summary


def test_a_direct_push_applies_nothing(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    result, _, summary = apply_on_merge(repo, fake_github, emulator)
    assert result.code == 3
    assert "no pull request was merged as commit" in summary
    assert writes(emulator) == 0


# ----------------------------------------------------------------------------- nightly drift


def test_the_drift_issue_opens_updates_and_closes(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    def drift() -> tuple[StepResult, dict[str, str], str]:
        return step(
            repo,
            fake_github,
            emulator,
            "drift",
            event_name="schedule",
            event={},
            sha=BASE,
            ack="drift-ack.yaml",
        )

    dispatch_apply(repo, fake_github, emulator, "set up the test org")
    quiet, _, _ = drift()
    assert quiet.code == 0, quiet.stderr
    assert "drift-ack.yaml does not exist; no drift is acknowledged" in quiet.stderr
    assert fake_github.issues == {}

    ui_adds(emulator, "https://colleague.example.com/**")
    found, outputs, _ = drift()
    assert found.code == 0
    assert outputs["exit-code"] == "2"
    (issue,) = fake_github.issues.values()
    assert issue["state"] == "open"
    assert "`https://colleague.example.com/**`" in issue["body"]

    ui_adds(emulator, "https://another.example.com/**")
    drift()
    (issue,) = fake_github.issues.values()
    assert "another.example.com" in issue["body"], "the open issue is updated, not duplicated"

    dispatch_apply(repo, fake_github, emulator, "revert the clicks")
    gone, _, _ = drift()
    assert gone.code == 0
    (issue,) = fake_github.issues.values()
    assert issue["state"] == "closed"
    assert "Live matches the policies again" in str(
        fake_github.comments_on(issue["number"])[-1]["body"]
    )


def test_a_plan_too_long_for_a_comment_keeps_every_widening_change_and_links_the_rest(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    (repo.root / "policies" / "acme.yaml").unlink()
    for n in range(60):
        addresses = ", ".join(f"52.{n}.{i}.0/24" for i in range(40))
        repo.write_file(
            f"org-{n:02d}.yaml",
            f"apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {{id: org-big-{n:02d}}}\n"
            "mcp: {domains: [https://app.example.com/**]}\n"
            f"ipAllowlists: [{{name: Office, enabled: true, apps: [jira], addresses: [{addresses}]}}]\n",
        )
    pr = fake_github.add_pull(head_sha=HEAD)
    result, _outputs, summary = plan(repo, fake_github, emulator, pr)
    assert result.code == 0, result.stderr
    assert "[60/60]" in result.stderr  # progress, one line per org
    body = str(the_comment(fake_github, pr)["body"])
    assert len(body) <= 65_535
    assert body.count("| `+ mcp.domain https://app.example.com/**`") == 60
    assert "were cut to stay under GitHub's comment size limit" in body
    assert "[the job summary](https://github.com/acme/policies/actions/runs/4242)" in body
    assert f"the artifact `rovo-reconcile-plan-{pr}-{HEAD}`" in body
    assert summary.count("<details>") == 60  # the summary holds the whole plan


@pytest.mark.parametrize("job", ["plan", "apply", "drift"])
def test_outside_github_actions_a_job_stops_before_reading_anything(
    cli: CliRunner, repo: Repo, job: str
) -> None:
    env = dict.fromkeys(
        ("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_EVENT_PATH", "GITHUB_SHA"), ""
    )
    result = cli("github", job, "policies/", "--target", "sandbox", cwd=repo.root, env=env)
    assert result.code == 64
    assert "GITHUB_REPOSITORY is not set: `rovo-reconcile github` runs inside GitHub Actions" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (repo.root / ".rovo-reconcile").exists(), "nothing was read or written"


def test_an_edited_plan_comment_is_not_a_reviewed_plan(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = planned_and_merged(repo, fake_github, emulator)
    comment = the_comment(fake_github, pr)
    comment.update(
        body=str(comment["body"]).replace("52.14.0.0/16", "52.0.0.0/8"),
        updated_at="2026-12-31T00:00:00Z",
    )  # a human with write access edits it

    result, _, summary = apply_on_merge(repo, fake_github, emulator)

    assert result.code == 3
    assert "was edited after its plan run uploaded the plan" in summary
    assert writes(emulator) == 0


def test_a_plan_without_its_artifact_applies_nothing(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD)
    plan(repo, fake_github, emulator, pr)
    merge(fake_github, pr)  # the upload step never ran
    result, _, summary = apply_on_merge(repo, fake_github, emulator)
    assert result.code == 3
    assert f"no unexpired artifact named rovo-reconcile-plan-{pr}-{HEAD}" in summary
    assert writes(emulator) == 0


def test_a_rerun_of_an_old_apply_job_applies_nothing(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    planned_and_merged(repo, fake_github, emulator)
    result, _, summary = apply_on_merge(repo, fake_github, emulator, main_head="9" * 40)
    assert result.code == 3
    assert f"commit {MERGE[:12]} is no longer the head of main" in summary
    assert writes(emulator) == 0


def test_each_drift_shard_keeps_its_own_issue(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    dispatch_apply(repo, fake_github, emulator, "set up the test org")
    ui_adds(emulator, "https://colleague.example.com/**")
    for shard in ("1/2", "2/2", "1/2", "2/2"):  # one shard drifts; the calm one runs after it
        step(
            repo,
            fake_github,
            emulator,
            "drift",
            event_name="schedule",
            event={},
            sha=BASE,
            args=f"--api-url {emulator.url} --shard {shard}",
        )
    (issue,) = fake_github.issues.values()
    assert issue["state"] == "open", "a calm shard closed the other shard's drift issue"


def test_a_pr_that_removes_every_policy_still_updates_its_comment(
    repo: Repo, fake_github: FakeGitHub, emulator: Emulator
) -> None:
    pr = fake_github.add_pull(head_sha=HEAD)
    assert plan(repo, fake_github, emulator, pr)[0].code == 0
    (repo.root / "policies" / "acme.yaml").unlink()
    result, _, summary = plan(repo, fake_github, emulator, pr, head="e" * 40)
    assert result.code == 64
    body = str(the_comment(fake_github, pr)["body"])
    assert "**Nothing was planned:** no policy files" in body
    assert "Nothing was planned" in summary
