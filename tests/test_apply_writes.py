"""Writes whose answer is ambiguous, and objects that change under a run: re-read, then decide."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.errors import AmbiguousWrite
from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.apply import ApplyResult
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.errors import EXIT_GUARD, EXIT_OK

from .apply_helpers import BASE, Writes, apply_policy, policy_file, sandbox
from .emulator_fixture import start_emulator
from .fakes import FakeClock

Fault = Callable[[httpx.Request], "tuple[str, int] | None"]


class Gateway(httpx.AsyncBaseTransport):
    """A gateway in front of the emulator: `fault(request)` may answer a request with a
    status of its own, `("before", status)` without passing it on (it did not land) or
    `("after", status)` once the emulator has done it (it landed, the answer is lost)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, fault: Fault) -> None:
        self.inner = inner
        self.fault = fault

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.fault(request)
        if fault is not None and fault[0] == "before":
            return _unavailable(fault[1])
        response = await self.inner.handle_async_request(request)
        if fault is not None:
            await response.aread()
            return _unavailable(fault[1])
        return response


def _unavailable(status: int) -> httpx.Response:
    return httpx.Response(status, headers={"Retry-After": "2"}, json={"message": "gateway"})


def first(method: str, suffix: str, when: str, status: int, times: int = 1) -> Fault:
    """A fault for the first `times` requests of `method` to a path ending in `suffix`."""
    left = [times]

    def fault(request: httpx.Request) -> tuple[str, int] | None:
        if request.method == method and request.url.path.endswith(suffix) and left[0] > 0:
            left[0] -= 1
            return when, status
        return None

    return fault


@asynccontextmanager
async def behind(db: Path, fault: Fault) -> AsyncIterator[tuple[AdminClient, Writes, FakeClock]]:
    """The in-process emulator behind a `Gateway`; `Writes` records what reached the emulator."""
    app = create_app(db, EmulatorOptions(settle_ms=0, page_size=50))
    writes = Writes(httpx.ASGITransport(app=app))
    clock = FakeClock()
    http = httpx.AsyncClient(transport=Gateway(writes, fault), base_url=BASE)
    client = AdminClient(http, clock=clock, retry=RetryPolicy(rng=random.Random(1)))
    try:
        yield client, writes, clock
    finally:
        await client.aclose()


def _journal(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "journal.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _names(db: Path, org: str) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT name FROM policies WHERE org_id = ? ORDER BY name", (org,))
        return [r[0] for r in rows]


_CREATE = """\
org: {id: ORG}
ipAllowlists:
  - {name: Office, enabled: true, apps: [confluence], addresses: [52.14.0.0/16]}
mcp: {domains: ['https://mcp.example.com/**']}
"""


# ----------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("status", [429, 503, 502])
def test_a_create_answered_5xx_after_it_landed_is_not_sent_again(
    tmp_path: Path, status: int
) -> None:
    """An allowlist POST and a domain POST that land but are answered 429/5xx: one of each, converged."""
    db, org = tmp_path / "e.db", f"org-gw-{status}"
    path = policy_file(tmp_path, _CREATE.replace("ORG", org))

    def fault(request: httpx.Request) -> tuple[str, int] | None:
        posts = ("/policies", "/rovo-mcp/domains")
        if request.method == "POST" and request.url.path.endswith(posts):
            return "after", status
        return None

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with behind(db, fault) as (client, writes, _):
            _, result = await apply_policy(client, path, tmp_path)
            return result, writes.writes

    result, writes = asyncio.run(scenario())
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert _names(db, org) == ["Office"]
    assert sum(w.startswith("POST") for w in writes) == 2
    verdicts = [e.get("verdict") for e in _journal(tmp_path) if e.get("result") == "ambiguous"]
    assert verdicts == ["landed", "landed"]


def test_a_create_answered_503_before_it_landed_is_sent_again_after_the_wait(
    tmp_path: Path,
) -> None:
    """Refused by the gateway (nothing landed): the re-read finds nothing, the POST goes again
    after Retry-After, and the journal shows both attempts."""
    db, org = tmp_path / "e.db", "org-gw-before"
    path = policy_file(tmp_path, _CREATE.replace("ORG", org))

    async def scenario() -> tuple[ApplyResult, FakeClock]:
        async with behind(db, first("POST", "/policies", "before", 503)) as (client, _, clock):
            return (await apply_policy(client, path, tmp_path))[1], clock

    result, clock = asyncio.run(scenario())
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert _names(db, org) == ["Office"]
    assert 2.0 in clock.sleeps  # the server's Retry-After, before the second send
    posts = [e for e in _journal(tmp_path) if e["method"] == "POST" and "/policies" in e["path"]]
    assert [(e["event"], e.get("status"), e.get("verdict")) for e in posts] == [
        ("intent", None, None),
        ("outcome", 503, "not landed"),
        ("intent", None, None),
        ("outcome", 202, None),
    ]


def test_a_put_answered_503_after_it_landed_is_verified_not_resent(tmp_path: Path) -> None:
    """A PUT that landed behind a 503 is re-read (it is as written) and not sent again."""
    db, org = tmp_path / "e.db", "org-gw-put"
    setup = policy_file(tmp_path, _CREATE.replace("ORG", org), "setup.yaml")
    changed = policy_file(tmp_path, _CREATE.replace("ORG", org).replace("52.14", "52.15"))

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with sandbox(db) as (client, _):
            assert (await apply_policy(client, setup, tmp_path))[1].exit_code == EXIT_OK
        setup.unlink()
        async with behind(db, first("PUT", "", "after", 503)) as (client, writes, _):
            _, result = await apply_policy(client, changed, tmp_path)
            return result, writes.writes

    result, writes = asyncio.run(scenario())
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert len([w for w in writes if w.startswith("PUT")]) == 2  # widen and narrow, once each


def test_the_client_never_resends_a_write_answered_503(tmp_path: Path) -> None:
    """HTTP layer: a POST or PUT answered 503 is sent once and raised as ambiguous, with the wait."""
    with start_emulator(tmp_path, "--fail-rate", "1", "--retry-after", "3") as emu:
        urls = Endpoints(emu.url, "org-client")

        async def scenario() -> list[float | None]:
            waits = []
            async with httpx.AsyncClient() as http:
                client = AdminClient(http, clock=FakeClock())
                for method, url in (("POST", urls.mcp_domains), ("PUT", f"{urls.policies}/x")):
                    with pytest.raises(AmbiguousWrite, match="may or may not") as info:
                        await client.send_json(method, url, {"data": {}})
                    waits.append(info.value.wait)
            return waits

        assert asyncio.run(scenario()) == [3.0, 3.0]
        stats = httpx.get(f"{emu.url}/_emulator/stats").json()
        assert stats["requests"] == {"POST": 1, "PUT": 1}


# ----------------------------------------------------------------------------- item 4

_OFFICE = """\
org: {id: ORG}
ipAllowlists:
  - {name: Office, enabled: true, apps: [confluence], addresses: [ADDRESSES]}
"""


def test_a_concurrent_edit_between_widen_and_narrow_is_not_overwritten(tmp_path: Path) -> None:
    """A colleague adds an address after the widen write: the narrow write is not sent, exit 3."""
    db, org = tmp_path / "e.db", "org-between"
    setup = policy_file(
        tmp_path, _OFFICE.replace("ORG", org).replace("ADDRESSES", "52.14.0.0/16"), "setup.yaml"
    )
    swap = _OFFICE.replace("ORG", org).replace("ADDRESSES", "18.0.0.0/8")
    colleague = "9.9.9.9/32"

    def edit_after_widen(method: str, path: str) -> None:
        if method != "PUT":
            return
        with sqlite3.connect(db) as con:
            (rule,) = con.execute("SELECT rule FROM policies WHERE org_id = ?", (org,)).fetchone()
            value = json.loads(rule)
            if colleague not in value["in"]:
                value["in"].append(colleague)
                con.execute(
                    "UPDATE policies SET rule = ? WHERE org_id = ?", (json.dumps(value), org)
                )

    async def scenario() -> tuple[ApplyResult, list[str]]:
        async with sandbox(db) as (client, _):
            assert (await apply_policy(client, setup, tmp_path))[1].exit_code == EXIT_OK
        setup.unlink()
        path = policy_file(tmp_path, swap)
        async with sandbox(db, after=edit_after_widen) as (client, writes):
            _, result = await apply_policy(client, path, tmp_path)
            return result, writes.writes

    result, writes = asyncio.run(scenario())
    assert result.exit_code == EXIT_GUARD
    message = result.orgs[0].message or ""
    assert "changed by someone else" in message
    assert f"+{colleague}" in message
    assert len([w for w in writes if w.startswith("PUT")]) == 1  # the widen only

    async def live_addresses() -> list[str]:
        async with sandbox(db) as (client, _):
            live = await read_org(client, BASE, org)
        (office,) = live.state.ip_allowlists or ()
        return [a.address for a in office.addresses]

    assert colleague in asyncio.run(live_addresses())
