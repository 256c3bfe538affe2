"""A `failed` attachment is drift, and apply applies it again (issue 11, item 6).

An attachment that settled to `applicationStatus: failed` counts as not attached: plan and
drift show the allowlist's app as missing, apply writes the list again, and once that lands
the org has no drift. The emulator's `--apply-fail-rate` provokes the failure.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from .apply_helpers import apply_policy, plan_of, policy_file, sandbox
from .conftest import CliRunner
from .emulator_fixture import start_emulator

KEY = "failed-attachment-test-key"
ORG = "org-failed"
POLICY = f"""\
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [91.208.44.0/24]}}
guards: {{mustAllow: [91.208.44.10]}}
"""


def test_plan_shows_a_failed_attachment_and_apply_attaches_it_again(tmp_path: Path) -> None:
    """Applied, then Atlassian reports `failed` for the Jira attachments: the next plan
    re-attaches Jira (an update, with a note saying why), and apply converges."""
    path, db = policy_file(tmp_path, POLICY), tmp_path / "e.db"

    async def scenario() -> None:
        async with sandbox(db) as (client, _):
            _, first = await apply_policy(client, path, tmp_path)
            assert first.exit_code == 0
        with sqlite3.connect(db) as con:  # as an apply-fail-rate of 1 would have left it
            con.execute("UPDATE policies SET outcome = 'failed'")
        async with sandbox(db) as (client, writes):
            plan = await plan_of(client, path)
            (org,) = plan.orgs
            (change,) = org.changes
            assert (change.action, change.key) == ("update", "ip_allowlist:Office")
            assert change.before["apps"] == []
            assert change.after["apps"] == ["jira", "confluence"]
            assert any("applicationStatus 'failed'" in note for note in org.notes), org.notes
            _, again = await apply_policy(client, path, tmp_path)
            assert again.exit_code == 0, again.orgs[0].message
            assert again.orgs[0].converged
            assert [w.split()[0] for w in writes.writes] == ["PUT"]
            assert (await plan_of(client, path)).empty

    asyncio.run(scenario())


def test_drift_reports_a_failed_attachment_until_apply_succeeds(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Against the emulator over HTTP: applied; then a widening write that Atlassian fails
    to apply leaves live equal to the policy in every field but the status. Drift says so
    (it once said 'No drift'); with failures off, apply writes it again and drift is clean."""
    path = policy_file(tmp_path, POLICY)
    state = tmp_path / "emulator.db"
    env = {"ATLASSIAN_ADMIN_API_KEY": KEY}

    def run(url: str, *args: str) -> tuple[int, str]:
        result = cli(*args, str(path.parent), "--api-url", url, env=env)
        return result.code, result.stdout + result.stderr

    flags = ("--settle-ms", "0", "--retry-after", "0")
    with start_emulator(tmp_path, *flags, state=state) as emu:
        assert run(emu.url, "apply", "--yes")[0] == 0
    path.write_text(
        path.read_text("utf-8").replace("[91.208.44.0/24]", "[91.208.44.0/24, 62.217.140.7]"),
        "utf-8",
    )
    with start_emulator(tmp_path, *flags, "--apply-fail-rate", "1", state=state) as emu:
        code, output = run(emu.url, "apply", "--yes")
        assert code == 1
        assert "applicationStatus 'failed'" in output
        code, output = run(emu.url, "drift")
        assert code == 2, output
        assert "Office" in output
    with start_emulator(tmp_path, *flags, state=state) as emu:
        code, output = run(emu.url, "apply", "--yes")
        assert code == 0, output
        code, output = run(emu.url, "drift")
        assert code == 0, output
