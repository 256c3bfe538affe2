"""Two applies at once: a lease per org, a re-read by name before each create, and duplicates
counted by the final convergence check."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import Endpoints
from rovo_reconcile.apply import ApplyResult, Journal, apply_plan
from rovo_reconcile.emulator.store import PolicyWrite, Store
from rovo_reconcile.errors import EXIT_ERROR, EXIT_GUARD, EXIT_OK

from .apply_helpers import BASE, apply_policy, plan_of, policy_file, sandbox
from .emulator_fixture import start_emulator

_POLICY = """\
org: {id: ORG}
ipAllowlists:
  - {name: Office, enabled: true, apps: [confluence], addresses: [52.14.0.0/16]}
mcp: {domains: ['https://mcp.example.com/**']}
"""


def _colleague_creates(db: Path, org: str, name: str) -> None:
    """Someone else creates an allowlist named `name`, straight in the emulator's file."""
    fields = PolicyWrite("ip-allowlist", name, "disabled", {"in": ["1.2.3.4/32"]}, ())
    Store(db).create_policy(org, fields, 0, "applied")


def _names(db: Path, org: str) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT name FROM policies WHERE org_id = ? ORDER BY name", (org,))
        return [r[0] for r in rows]


def test_a_create_re_reads_by_name_and_stops_when_someone_created_it(tmp_path: Path) -> None:
    """Created by someone else after the plan, before our POST: nothing sent for it, exit 3."""
    db, org = tmp_path / "e.db", "org-raced"
    path = policy_file(tmp_path, _POLICY.replace("ORG", org))

    def after(method: str, url: str) -> None:  # the domain POST comes first
        if method == "POST" and url.endswith("/rovo-mcp/domains"):
            _colleague_creates(db, org, "Office")

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with sandbox(db, after=after) as (client, writes):
            _, result = await apply_policy(client, path, tmp_path)
            return result, writes.writes

    result, writes = asyncio.run(scenario())
    assert result.exit_code == EXIT_GUARD
    assert "created by someone else" in (result.orgs[0].message or "")
    assert _names(db, org) == ["Office"]
    assert not [w for w in writes if w.endswith("/policies")]


def test_a_duplicate_name_after_the_writes_is_not_converged(tmp_path: Path) -> None:
    """A same-named list appears after our create: exit 1 saying so, never 'converged'."""
    db, org = tmp_path / "e.db", "org-dup"
    path = policy_file(tmp_path, _POLICY.replace("ORG", org))

    def after(method: str, url: str) -> None:
        if method == "POST" and url.endswith("/policies"):
            _colleague_creates(db, org, "Office")

    async def scenario() -> ApplyResult:
        async with sandbox(db, after=after) as (client, _):
            return (await apply_policy(client, path, tmp_path))[1]

    result = asyncio.run(scenario())
    assert result.exit_code == EXIT_ERROR
    assert result.orgs[0].converged is False
    assert "more than one live allowlist is named 'Office'" in (result.orgs[0].message or "")


def test_an_org_whose_lease_is_held_is_refused_before_any_read_or_write(tmp_path: Path) -> None:
    """While another apply holds the org's lease, apply exits 3 naming the holder; nothing sent."""
    db, org = tmp_path / "e.db", "org-leased"
    path = policy_file(tmp_path, _POLICY.replace("ORG", org))
    journal = Journal(tmp_path / "journal.jsonl")

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with sandbox(db) as (client, writes):
            plan = await plan_of(client, path)
            with Journal(tmp_path / "journal.jsonl").lease(org):
                result = await apply_plan(client, BASE, plan, force=False, journal=journal)
            again = await apply_plan(client, BASE, plan, force=False, journal=journal)
            assert again.exit_code == EXIT_OK  # released: the next apply goes ahead
            return result, writes.writes

    result, writes = asyncio.run(scenario())
    assert result.exit_code == EXIT_GUARD
    message = result.orgs[0].message or ""
    assert f"another apply is running on org {org}" in message
    assert f"pid {os.getpid()}" in message
    assert writes == [  # all from the second apply
        f"POST /admin/control/v1/orgs/{org}/rovo-mcp/domains",
        f"POST /admin/control/v1/orgs/{org}/policies",
        *[w for w in writes if w.startswith("PUT")],
    ]
    assert len(writes) == 3


def test_two_apply_processes_on_one_org_make_no_duplicate(tmp_path: Path) -> None:
    """Two real apply processes at once against the emulator: one refuses (or finds it done)."""
    org = "org-two-runs"
    lists = "".join(
        f"  - {{name: L{n}, enabled: true, apps: [confluence], addresses: [52.{n}.0.0/16]}}\n"
        for n in range(6)
    )
    path = policy_file(tmp_path, f"org: {{id: {org}}}\nipAllowlists:\n{lists}")
    with start_emulator(tmp_path, "--latency-ms", "100", "--settle-ms", "0") as emu:
        env = {**os.environ, "ATLASSIAN_ADMIN_API_KEY": "unused", "NO_COLOR": "1"}
        cli = [sys.executable, "-m", "rovo_reconcile"]
        plan = tmp_path / "plan.json"
        subprocess.run(
            [*cli, "plan", str(path), "--api-url", emu.url, "--out", str(plan)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=True,
            timeout=120,
        )
        # Both start from one saved plan, so both find it fresh unless the other has written.
        command = [*cli, "apply", "--plan", str(plan), "--api-url", emu.url]
        runs = [
            subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        codes = sorted(run.returncode for run in runs)

        async def live_names() -> list[str]:
            async with httpx.AsyncClient() as http:
                pages = AdminClient(http).pages("GET", Endpoints(emu.url, org).policies)
                return sorted([item["attributes"]["name"] async for item in pages])

        names = asyncio.run(live_names())
    text = [out.decode() + err.decode() for out, err in outputs]
    assert names == [f"L{n}" for n in range(6)]  # every list once: no duplicate
    assert codes[0] == EXIT_OK, text
    assert codes[1] in (EXIT_OK, EXIT_GUARD), text
    if codes[1] == EXIT_GUARD:
        assert any("another apply is running" in t for t in text), text
