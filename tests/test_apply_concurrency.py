"""Two applies at once: a lease per org, a re-read by name before each create, and duplicates
counted by the final convergence check."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import rovo_reconcile.lease as lease_module
from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import Endpoints
from rovo_reconcile.apply import (
    LEASE_DIR_ENV,
    ApplyResult,
    Journal,
    LeaseHeld,
    apply_plan,
    lease_dir,
)
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
    with start_emulator(
        tmp_path, "--latency-ms", "50", "--settle-ms", "0", "--page-size", "50"
    ) as emu:
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


def _two_applies_with_their_own_journals(tmp_path: Path, org: str) -> tuple[list[int], list[str]]:
    """Two apply processes on one org from one saved plan, each with its own --journal
    (as two checkouts would have); the exit codes and the live allowlist names after."""
    lists = "".join(
        f"  - {{name: L{n}, enabled: true, apps: [confluence], addresses: [52.{n}.0.0/16]}}\n"
        for n in range(6)
    )
    path = policy_file(tmp_path, f"org: {{id: {org}}}\nipAllowlists:\n{lists}")
    with start_emulator(
        tmp_path, "--latency-ms", "50", "--settle-ms", "0", "--page-size", "50"
    ) as emu:
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
        runs = []
        for checkout in ("a", "b"):
            (tmp_path / checkout).mkdir()
            journal = tmp_path / checkout / "journal.jsonl"
            command = [*cli, "apply", "--plan", str(plan), "--api-url", emu.url]
            runs.append(
                subprocess.Popen(
                    [*command, "--journal", str(journal)],
                    cwd=tmp_path / checkout,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        outputs = [run.communicate(timeout=120) for run in runs]

        async def live_names() -> list[str]:
            async with httpx.AsyncClient() as http:
                pages = AdminClient(http).pages("GET", Endpoints(emu.url, org).policies)
                return sorted([item["attributes"]["name"] async for item in pages])

        names = asyncio.run(live_names())
    texts = [out.decode() + err.decode() for out, err in outputs]
    codes = sorted(run.returncode for run in runs)
    assert codes[1] in (EXIT_OK, EXIT_GUARD), texts
    if codes[1] == EXIT_GUARD:  # refused by the lease (never "stale": both start before writes)
        assert any("another apply is running" in t for t in texts), texts
    return codes, names


def test_two_applies_with_different_journals_exclude_each_other(tmp_path: Path) -> None:
    """The lease is per user, target and org, not beside the journal: two applies with their
    own --journal in their own directories do not both write (before: every list twice)."""
    codes, names = _two_applies_with_their_own_journals(tmp_path, "org-two-journals")
    assert names == [f"L{n}" for n in range(6)]
    assert codes[0] == EXIT_OK


def test_the_lease_ignores_the_journal_and_lives_in_the_lease_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two journals anywhere share one lease per target and org, a file in
    $ROVO_RECONCILE_LEASE_DIR named by a hash; without it, ~/.cache/rovo-reconcile/leases."""
    leases = tmp_path / "leases"
    monkeypatch.setenv(LEASE_DIR_ENV, str(leases))
    first = Journal(tmp_path / "a" / "journal.jsonl", "atlassian (https://x.invalid)")
    second = Journal(tmp_path / "b" / "other.jsonl", "atlassian (https://x.invalid)")
    with first.lease("org-1"):
        with (
            pytest.raises(LeaseHeld, match="another apply is running on org org-1"),
            second.lease("org-1"),
        ):
            pass
        with second.lease("org-2"):  # another org
            pass
        with Journal(tmp_path / "c.jsonl", "sandbox (http://127.0.0.1:1)").lease("org-1"):
            pass  # another target
    with second.lease("org-1"):  # released
        pass
    assert len(list(leases.glob("*.lock"))) == 3
    assert not list(tmp_path.glob("**/*.leases"))
    monkeypatch.delenv(LEASE_DIR_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert lease_dir() == tmp_path / "home" / ".cache" / "rovo-reconcile" / "leases"


def _apply_with_broken_lease(tmp_path: Path, org: str) -> tuple[ApplyResult, list[str]]:
    path = policy_file(tmp_path, _POLICY.replace("ORG", org))

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with sandbox(tmp_path / "e.db") as (client, writes):
            return (await apply_policy(client, path, tmp_path))[1], writes.writes

    return asyncio.run(scenario())


def test_a_file_system_without_locks_is_a_clear_error_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flock failing with ENOLCK (some NFS mounts): exit 1 naming the lease and the way out,
    nothing written (before: "internal error")."""

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lease_module.fcntl, "flock", no_locks)
    result, writes = _apply_with_broken_lease(tmp_path, "org-nolock")
    message = result.orgs[0].message or ""
    assert result.exit_code == EXIT_ERROR
    assert "cannot take the lease for org org-nolock" in message
    assert "No locks available" in message
    assert LEASE_DIR_ENV in message
    assert "internal error" not in message
    assert writes == []


def test_a_lease_dir_that_cannot_be_made_is_a_clear_error_before_any_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv(LEASE_DIR_ENV, str(tmp_path / "a-file" / "leases"))
    result, writes = _apply_with_broken_lease(tmp_path, "org-nodir")
    message = result.orgs[0].message or ""
    assert result.exit_code == EXIT_ERROR
    assert "cannot take the lease for org org-nodir" in message
    assert "internal error" not in message
    assert writes == []


def test_two_applies_in_two_directories_cannot_both_hold_the_org(tmp_path: Path) -> None:
    """Deterministically, in one process: two applies of one plan started together, journals
    in two directories; the second is refused by the lease, so each list is created once."""
    db, org = tmp_path / "e.db", "org-two-dirs"
    path = policy_file(tmp_path, _POLICY.replace("ORG", org))

    async def scenario() -> list[ApplyResult]:
        async with sandbox(db) as (client, _):
            plan = await plan_of(client, path)
            journals = [Journal(tmp_path / d / "journal.jsonl") for d in ("one", "two")]
            return list(
                await asyncio.gather(
                    *(apply_plan(client, BASE, plan, force=False, journal=j) for j in journals)
                )
            )

    results = asyncio.run(scenario())
    assert sorted(r.exit_code for r in results) == [EXIT_OK, EXIT_GUARD]
    refused = next(r for r in results if r.exit_code == EXIT_GUARD)
    assert "another apply is running" in (refused.orgs[0].message or "")
    assert _names(db, org) == ["Office"]
