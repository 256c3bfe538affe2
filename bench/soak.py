"""Fault soak: N applies against the emulator with injected faults; prints one table.

Each run starts an org from a known live state (three enabled allowlists, MCP domains), then
applies a policy that widens and narrows one list, creates two, deletes one, swaps MCP domains
and flips a toggle, through the emulator app in-process with:

- `--fail-rate`: the emulator answers 503 before doing anything (nothing landed);
- `--drop-rate`: the emulator does a write, then cuts the answer (it landed, answer lost);
- `--gateway-rate`: a gateway answers a write 503 *after* the emulator did it (it landed);
- `--edit-rate`: the share of runs in which a colleague adds an address to the list being
  widened and narrowed, right after the run's first write to it.

A run that does not converge is re-planned and applied again (same faults), up to 3 times.
Columns: runs; converged in one apply (of the runs without a colleague's edit, which must
stop); converged at all; duplicates (extra same-named allowlists at the end); lockouts (runs
in which, after some write, a `mustAllow` address was shut out of a workspace); edits made
and lost (the colleague's address gone after the first apply).

Usage: python bench/soak.py [--runs N] [--fail-rate P] [--drop-rate P] [--gateway-rate P]
                            [--edit-rate P] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.apply import ApplyResult, Journal, apply_plan
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.emulator.inspect import locked_out
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.reconcile import plan_from_live

BASE = "http://soak.invalid"
ORG = "org-soak"
DAY = date(2026, 11, 26)
MUST_ALLOW = "52.14.1.1"
COLLEAGUE = "7.7.7.7/32"

HEADER = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
BEFORE = f"""\
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [52.14.0.0/16, 18.0.0.0/8]}}
  - {{name: VPN, enabled: true, apps: [jira], addresses: [10.0.0.0/8]}}
  - {{name: Old, enabled: true, apps: [confluence], addresses: [52.14.0.0/16, 3.3.3.0/24]}}
mcp: {{domains: ['https://a.example.com/**', 'https://b.example.com/**']}}
guards: {{mustAllow: [{MUST_ALLOW}]}}
"""
AFTER = f"""\
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira, confluence], addresses: [52.14.0.0/16, 19.0.0.0/8]}}
  - {{name: VPN, enabled: true, apps: [jira], addresses: [10.0.0.0/8]}}
  - {{name: Lab, enabled: true, apps: [jira], addresses: [52.14.0.0/16, 4.4.4.0/24]}}
  - {{name: Branch, enabled: false, apps: [confluence], addresses: [5.5.5.0/24]}}
mcp:
  domains: ['https://a.example.com/**', 'https://c.example.com/**']
  allowAtlassianSupportedDomains: true
guards: {{mustAllow: [{MUST_ALLOW}], maxDeletePercent: 100}}
"""


class InstantClock:
    """Waits take no real time: the soak measures outcomes, not patience."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 11, 26, tzinfo=UTC) + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class Watch(httpx.AsyncBaseTransport):
    """In front of the emulator: after every write, checks for a lockout and may let a
    colleague edit; with `gateway_rate`, answers a write 503 after the emulator did it."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, db: Path, rng: random.Random, rates: Rates
    ) -> None:
        self.inner, self.db, self.rng, self.rates = inner, db, rng, rates
        self.lockout = False
        self.edit_pending = False
        self.edited = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        write = request.method in (
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
        ) and not request.url.path.endswith("/workspaces")
        try:
            response = await self.inner.handle_async_request(request)
            if write:
                await response.aread()
        finally:
            if write:
                self.lockout |= bool(locked_out(self.db, ORG, MUST_ALLOW))
                if self.edit_pending and request.method == "PUT":
                    self.edit_pending, self.edited = False, colleague_edit(self.db)
        if write and response.status_code < 300 and self.rng.random() < self.rates.gateway:
            return httpx.Response(503, headers={"Retry-After": "1"}, json={"message": "gateway"})
        return response


@dataclass(frozen=True)
class Rates:
    fail: float
    drop: float
    gateway: float
    edit: float


def colleague_edit(db: Path) -> bool:
    """Someone adds COLLEAGUE to Office in Atlassian Administration."""
    with sqlite3.connect(db) as con:
        row = con.execute(
            "SELECT rule FROM policies WHERE org_id = ? AND name = 'Office'", (ORG,)
        ).fetchone()
        if row is None:
            return False
        rule = json.loads(row[0])
        rule["in"].append(COLLEAGUE)
        con.execute(
            "UPDATE policies SET rule = ? WHERE org_id = ? AND name = 'Office'",
            (json.dumps(rule), ORG),
        )
    return True


def office_has_colleague(db: Path) -> bool:
    with sqlite3.connect(db) as con:
        rules = con.execute(
            "SELECT rule FROM policies WHERE org_id = ? AND name = 'Office'", (ORG,)
        ).fetchall()
    return any(COLLEAGUE in json.loads(r[0])["in"] for r in rules)


def duplicates(db: Path) -> int:
    with sqlite3.connect(db) as con:
        (n,) = con.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT name) FROM policies WHERE org_id = ?", (ORG,)
        ).fetchone()
    return int(n)


async def apply_once(
    db: Path, policy: Path, journal: Journal, options: EmulatorOptions, watch: Watch | None
) -> ApplyResult:
    inner: httpx.AsyncBaseTransport = httpx.ASGITransport(app=create_app(db, options))
    if watch is not None:
        watch.inner = inner
        inner = watch
    http = httpx.AsyncClient(transport=inner, base_url=BASE)
    client = AdminClient(http, clock=InstantClock(), retry=RetryPolicy(rng=random.Random(0)))
    try:
        loaded = load_policies([str(policy)], DAY)
        assert not loaded.errors, [p.message for p in loaded.problems]
        live = {ORG: await read_org(client, BASE, ORG)}
        plan = plan_from_live("soak", loaded.policies, live, DAY)
        return await apply_plan(client, BASE, plan, force=True, journal=journal)
    finally:
        await client.aclose()


@dataclass
class RunResult:
    one_apply: bool
    converged: bool
    duplicates: int
    lockout: bool
    edited: bool
    lost_edit: bool


async def soak_run(tmp: Path, run: int, rates: Rates, seed: int) -> RunResult:
    db, journal = tmp / f"run-{run}.db", Journal(tmp / f"run-{run}.jsonl", "soak")
    clean = EmulatorOptions(settle_ms=0, page_size=3)
    before, after = tmp / "before" / "policy.yaml", tmp / "after" / "policy.yaml"
    setup = await apply_once(db, before, journal, clean, None)
    assert setup.exit_code == 0, setup.orgs[0].message
    rng = random.Random(seed * 1000 + run)
    faulty = EmulatorOptions(
        settle_ms=0,
        page_size=3,
        fail_rate=rates.fail,
        drop_rate=rates.drop,
        retry_after_s=0,
        seed=seed * 1000 + run,
    )
    watch = Watch(httpx.ASGITransport(app=create_app(db, clean)), db, rng, rates)
    watch.edit_pending = rng.random() < rates.edit
    first = await apply_once(db, after, journal, faulty, watch)
    lost = watch.edited and not office_has_colleague(db)
    converged = first.exit_code == 0
    for _ in range(3):
        if converged:
            break
        again = await apply_once(db, after, journal, faulty, watch)
        converged = again.exit_code == 0
    return RunResult(
        first.exit_code == 0, converged, duplicates(db), watch.lockout, watch.edited, lost
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--drop-rate", type=float, default=0.1)
    parser.add_argument("--gateway-rate", type=float, default=0.1)
    parser.add_argument("--edit-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rates = Rates(args.fail_rate, args.drop_rate, args.gateway_rate, args.edit_rate)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for folder, body in (("before", BEFORE), ("after", AFTER)):
            (tmp / folder).mkdir()
            (tmp / folder / "policy.yaml").write_text(HEADER + body, encoding="utf-8")
        results = [asyncio.run(soak_run(tmp, run, rates, args.seed)) for run in range(args.runs)]
    plain = [r for r in results if not r.edited]
    print(
        f"fault soak: fail-rate {args.fail_rate}, drop-rate {args.drop_rate}, "
        f"gateway-rate {args.gateway_rate}, edit-rate {args.edit_rate}, seed {args.seed}"
    )
    rows = [
        ("runs", len(results)),
        ("converged in one apply", f"{sum(r.one_apply for r in plain)}/{len(plain)} (no edit)"),
        ("converged", f"{sum(r.converged for r in results)}/{len(results)}"),
        ("duplicates", sum(r.duplicates for r in results)),
        ("lockouts", sum(r.lockout for r in results)),
        ("edits made", sum(r.edited for r in results)),
        ("lost edits", sum(r.lost_edit for r in results)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
