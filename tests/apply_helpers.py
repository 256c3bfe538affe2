"""Helpers shared by the apply-path review tests: an in-process sandbox whose transport can
watch or intercept writes, the plan and apply the CLI would run, and the lockout the emulator's
SQLite file shows at any instant."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.apply import ApplyResult, Journal, apply_plan
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.plan import Plan
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.reconcile import plan_from_live

from .conftest import TODAY
from .fakes import FakeClock

BASE = "http://sandbox.invalid"
DAY = date.fromisoformat(TODAY)


def policy_file(tmp_path: Path, body: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / "policies" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n" + body, encoding="utf-8")
    return path


class Writes(httpx.AsyncBaseTransport):
    """Passes requests on; after every write, calls `after(method, path)` (state snapshots)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        after: Callable[[str, str], None] | None = None,
        intercept: Callable[[httpx.Request], httpx.Response | None] | None = None,
    ) -> None:
        self.inner = inner
        self.after = after
        self.intercept = intercept
        self.writes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.intercept is not None:
            answer = self.intercept(request)
            if answer is not None:
                return answer
        response = await self.inner.handle_async_request(request)
        is_search = request.method == "POST" and request.url.path.endswith("/workspaces")
        if request.method not in ("GET", "HEAD") and not is_search:
            await response.aread()
            self.writes.append(f"{request.method} {request.url.path}")
            if self.after is not None:
                self.after(request.method, request.url.path)
        return response


@asynccontextmanager
async def sandbox(
    db: Path,
    after: Callable[[str, str], None] | None = None,
    intercept: Callable[[httpx.Request], httpx.Response | None] | None = None,
) -> AsyncIterator[tuple[AdminClient, Writes]]:
    app = create_app(db, EmulatorOptions(settle_ms=0, page_size=50))
    transport = Writes(httpx.ASGITransport(app=app), after, intercept)
    http = httpx.AsyncClient(transport=transport, base_url=BASE)
    client = AdminClient(http, clock=FakeClock(), retry=RetryPolicy(rng=random.Random(1)))
    try:
        yield client, transport
    finally:
        await client.aclose()


async def plan_of(client: AdminClient, path: Path) -> Plan:
    """What `plan PATH` computes: load, read live, plan (the same functions the CLI calls)."""
    loaded = load_policies([str(path)], DAY)
    assert not loaded.errors, [p.message for p in loaded.problems]
    org_ids = [p.policy.org.id for p in loaded.policies]
    live = {org_id: await read_org(client, BASE, org_id) for org_id in org_ids}
    return plan_from_live("test", loaded.policies, live, DAY)


async def apply_policy(
    client: AdminClient, path: Path, tmp_path: Path, *, force: bool = False
) -> tuple[Plan, ApplyResult]:
    plan = await plan_of(client, path)
    result = await apply_plan(
        client, BASE, plan, force=force, journal=Journal(tmp_path / "journal.jsonl")
    )
    return plan, result


def policy_body(
    name: str, status: str, addresses: list[str], resources: list[str]
) -> dict[str, Any]:
    return {
        "data": {
            "type": "policy",
            "attributes": {
                "type": "ip-allowlist",
                "name": name,
                "status": status,
                "rule": {"in": addresses, "allowMobileBypass": False},
                "resources": [{"id": r} for r in resources],
            },
        }
    }


async def attach_partly(client: AdminClient, org: str, name: str, addresses: list[str]) -> str:
    """Create, as if outside Git, an enabled allowlist on every Confluence site and on ONE of
    the org's Jira sites; return that Jira site's id."""
    live = await read_org(client, BASE, org)
    jira_one = next(w.id for w in live.workspaces if w.app == "jira")
    confluence = [w.id for w in live.workspaces if w.app == "confluence"]
    await client.send_json(
        "POST",
        Endpoints(BASE, org).policies,
        policy_body(name, "enabled", addresses, [jira_one, *confluence]),
    )
    return jira_one
