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

from rovo_reconcile.api.client import AdminClient, ReadLimits
from rovo_reconcile.api.errors import AmbiguousWrite
from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.api.transport import DeadlineTransport
from rovo_reconcile.apply import (
    RECHECK_AFTER,
    RECHECK_AFTER_ANSWER,
    ApplyResult,
    Journal,
    apply_plan,
)
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.errors import EXIT_ERROR, EXIT_GUARD, EXIT_OK

from .apply_helpers import BASE, Writes, apply_policy, plan_of, policy_file, sandbox
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
    """Refused by the gateway (nothing landed): the re-read finds nothing, and still nothing
    after a wait (at least Retry-After, 2 s, and a few seconds' grace), so the POST goes
    again; the journal shows both attempts."""
    db, org = tmp_path / "e.db", "org-gw-before"
    path = policy_file(tmp_path, _CREATE.replace("ORG", org))

    async def scenario() -> tuple[ApplyResult, FakeClock]:
        async with behind(db, first("POST", "/policies", "before", 503)) as (client, _, clock):
            return (await apply_policy(client, path, tmp_path))[1], clock

    result, clock = asyncio.run(scenario())
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert _names(db, org) == ["Office"]
    assert clock.sleeps == [RECHECK_AFTER_ANSWER]  # before the second re-read and send
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


# --------------------------------------------------------- a write that lands after a timeout


class LateOrigin(httpx.AsyncBaseTransport):
    """An origin slower than the client's deadline: the first POST of an allowlist is held
    (the `DeadlineTransport` in front gives up on it: `WriteTimedOut`) and committed once the
    run's clock has moved `delay` seconds on, or when `commit_on_resend` and the POST comes
    again. `Writes` behind it records what reached the emulator."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: FakeClock, delay: float, on_resend: bool
    ) -> None:
        self.inner, self.clock, self.delay, self.on_resend = inner, clock, delay, on_resend
        self.held: list[tuple[float, httpx.Request]] = []
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/policies"):
            self.posts += 1
            if self.posts == 1:
                copy = httpx.Request(
                    "POST", request.url, headers=request.headers, content=await request.aread()
                )
                self.held.append((self.clock.now + self.delay, copy))
                await asyncio.sleep(3600)  # past the deadline: the client gives up on it
            if self.on_resend:
                await self.commit(due_only=False)
        return await self.inner.handle_async_request(request)

    async def commit(self, *, due_only: bool = True) -> None:
        for due, request in list(self.held):
            if not due_only or self.clock.now >= due:
                self.held.remove((due, request))
                await (await self.inner.handle_async_request(request)).aread()


class OriginClock(FakeClock):
    """A fake clock whose waits let the slow origin get on with its held writes."""

    origin: LateOrigin

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await self.origin.commit()


def _late(
    db: Path, tmp_path: Path, org: str, delay: float, on_resend: bool
) -> tuple[ApplyResult, list[str], OriginClock]:
    path = policy_file(tmp_path, _CREATE.replace("ORG", org))

    async def scenario() -> tuple[ApplyResult, list[str], OriginClock]:
        async with sandbox(db) as (client, _):
            plan = await plan_of(client, path)
        app = create_app(db, EmulatorOptions(settle_ms=0, page_size=50))
        writes = Writes(httpx.ASGITransport(app=app))
        clock = OriginClock()
        clock.origin = LateOrigin(writes, clock, delay, on_resend)
        http = httpx.AsyncClient(transport=DeadlineTransport(clock.origin, 0.05), base_url=BASE)
        client = AdminClient(http, clock=clock, retry=RetryPolicy(rng=random.Random(1)))
        try:
            journal = Journal(tmp_path / "journal.jsonl")
            result = await apply_plan(client, BASE, plan, force=False, journal=journal)
        finally:
            await client.aclose()
        await clock.origin.commit(due_only=False)  # the origin finishes what it holds, at last
        return result, writes.writes, clock

    return asyncio.run(scenario())


def test_a_create_that_timed_out_and_lands_late_is_not_sent_again(tmp_path: Path) -> None:
    """The POST times out and the origin commits it 10 s later: the re-read right after the
    timeout finds nothing, but apply re-reads again after the request's deadline before it
    would resend, finds the list, and sends no second POST (before: a duplicate, exit 0)."""
    db, org = tmp_path / "e.db", "org-late"
    result, writes, clock = _late(db, tmp_path, org, delay=10.0, on_resend=False)
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert _names(db, org) == ["Office"]
    assert [w for w in writes if w.endswith("/policies")] == [
        f"POST /admin/control/v1/orgs/{org}/policies"
    ]
    assert RECHECK_AFTER in clock.sleeps
    posts = [e for e in _journal(tmp_path) if e["path"].endswith("/policies")]
    assert [(e["event"], e.get("status"), e.get("verdict")) for e in posts] == [
        ("intent", None, None),
        ("outcome", None, "landed"),
    ]


def test_a_create_that_lands_beside_its_resend_stops_the_org(tmp_path: Path) -> None:
    """Still absent after the wait, the POST is sent again, and the first one lands with it:
    two lists of the name. The org stops there (exit 1, saying so), nothing more written."""
    db, org = tmp_path / "e.db", "org-late-twice"
    result, writes, _ = _late(db, tmp_path, org, delay=1e6, on_resend=True)
    assert result.exit_code == EXIT_ERROR
    assert result.orgs[0].converged is not True
    assert "2 allowlists named 'Office' after creating it" in (result.orgs[0].message or "")
    assert not [w for w in writes if w.startswith("PUT")]  # never enabled, never converged


# ------------------------------------------------------------ waits bounded by the retry budget


Rule = Callable[[httpx.Request], tuple[str, httpx.Response] | None]


class Answering(httpx.AsyncBaseTransport):
    """The in-process emulator, with `rule(request)` answering some requests itself:
    ("instead", response) without passing them on, ("after", response) once passed on."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        rule: Rule,
    ) -> None:
        self.inner, self.rule = inner, rule

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.rule(request)
        if answer is not None and answer[0] == "instead":
            return answer[1]
        response = await self.inner.handle_async_request(request)
        if answer is not None:
            await response.aread()
            return answer[1]
        return response


def _run_answering(
    db: Path,
    tmp_path: Path,
    org: str,
    rule: Rule,
    limits: ReadLimits | None = None,
) -> tuple[ApplyResult, list[str], FakeClock]:
    path = policy_file(tmp_path, _CREATE.replace("ORG", org))

    async def scenario() -> tuple[ApplyResult, list[str], FakeClock]:
        async with sandbox(db) as (client, _):
            plan = await plan_of(client, path)
        app = create_app(db, EmulatorOptions(settle_ms=0, page_size=50))
        writes = Writes(httpx.ASGITransport(app=app))
        clock = FakeClock()
        http = httpx.AsyncClient(transport=Answering(writes, rule), base_url=BASE)
        client = AdminClient(
            http, clock=clock, retry=RetryPolicy(rng=random.Random(1)), limits=limits
        )
        try:
            journal = Journal(tmp_path / "journal.jsonl")
            result = await apply_plan(client, BASE, plan, force=False, journal=journal)
        finally:
            await client.aclose()
        return result, writes.writes, clock

    return asyncio.run(scenario())


def _posts_to(method: str, suffix: str, how: str, response: httpx.Response, times: int = 1) -> Rule:
    """Answer the first `times` requests of `method` to a path ending in `suffix` so."""
    left = [times]

    def rule(request: httpx.Request) -> tuple[str, httpx.Response] | None:
        if request.method == method and request.url.path.endswith(suffix) and left[0] > 0:
            left[0] -= 1
            return how, response
        return None

    return rule


@pytest.mark.parametrize(
    ("retry_after", "times", "sends"),
    [("86400", 1, 1), ("50", 10, 3)],
    ids=["one-day", "adds-up"],
)
def test_a_write_never_waits_past_the_retry_budget(
    tmp_path: Path, retry_after: str, times: int, sends: int
) -> None:
    """A 429 asking for a day (before: slept 86,400 s), or 50 s waits that add up: apply
    waits at most the retry budget in all, then stops the org, exit 1, saying why, with the
    verdict and the reason in the journal."""
    db, org = tmp_path / "e.db", f"org-budget-{times}"
    slow_down = httpx.Response(429, headers={"Retry-After": retry_after}, json={"message": "slow"})
    rule = _posts_to("POST", "/policies", "instead", slow_down, times)
    result, writes, clock = _run_answering(db, tmp_path, org, rule)
    assert result.exit_code == EXIT_ERROR
    message = result.orgs[0].message or ""
    assert "retry budget" in message, message
    assert "not sent again" in message, message
    assert sum(clock.sleeps) <= RetryPolicy().budget
    assert not [w for w in writes if w.endswith("/policies")]
    assert [o.status for o in result.orgs[0].outcomes if o.change.key.startswith("ip")] == [
        "failed"
    ]
    outcomes = [
        e for e in _journal(tmp_path) if e["event"] == "outcome" and e["path"].endswith("/policies")
    ]
    assert len(outcomes) == sends
    assert all(e["verdict"] == "not landed" for e in outcomes)
    assert "retry budget" in outcomes[-1]["note"]


# ------------------------------------------------------------------- an answer too big to read


@pytest.mark.parametrize("status", [202, 503])
def test_a_write_answer_too_large_to_read_is_ambiguous_and_re_read(
    tmp_path: Path, status: int
) -> None:
    """A create that landed, answered with more than the size cap: re-read (it landed),
    journalled `ambiguous` with the verdict, not sent again, converged (before: `error`, exit 1)."""
    db, org = tmp_path / "e.db", f"org-big-{status}"
    big = httpx.Response(status, content=b'{"data":{"id":"x","pad":"' + b"a" * 5000 + b'"}}')
    rule = _posts_to("POST", "/policies", "after", big)
    result, writes, _ = _run_answering(db, tmp_path, org, rule, ReadLimits(max_response_bytes=4096))
    assert result.exit_code == EXIT_OK, result.orgs[0].message
    assert _names(db, org) == ["Office"]
    assert len([w for w in writes if w.startswith("POST") and w.endswith("/policies")]) == 1
    outcome = next(
        e for e in _journal(tmp_path) if e["event"] == "outcome" and e["path"].endswith("/policies")
    )
    assert (outcome["status"], outcome["result"], outcome["verdict"]) == (
        status,
        "ambiguous",
        "landed",
    )


def test_an_unreadable_accepted_write_that_did_not_land_is_not_resent(tmp_path: Path) -> None:
    """An over-size 202 for a create that is nowhere to be found, even after the wait: the
    server said it accepted it, so sending it again could duplicate it; exit 1."""
    db, org = tmp_path / "e.db", "org-big-lost"
    big = httpx.Response(202, content=b'{"data":{"id":"x","pad":"' + b"a" * 5000 + b'"}}')
    rule = _posts_to("POST", "/policies", "instead", big)
    result, writes, _ = _run_answering(db, tmp_path, org, rule, ReadLimits(max_response_bytes=4096))
    assert result.exit_code == EXIT_ERROR
    assert "not sent again" in (result.orgs[0].message or "")
    assert not [w for w in writes if w.endswith("/policies")]
    outcome = next(
        e for e in _journal(tmp_path) if e["event"] == "outcome" and e["path"].endswith("/policies")
    )
    assert (outcome["result"], outcome["verdict"]) == ("ambiguous", "not landed")


def test_a_storm_of_429s_on_a_write_gives_up_after_the_attempts_not_minutes_later(
    tmp_path: Path,
) -> None:
    """Every create answered 429 with no Retry-After and never landing: apply re-reads each
    time, waits a second (not the 5 s after an unclear 5xx), and stops after the retry
    policy's attempts (before: ~50 s of waits for one write, found by bench/hostile.py)."""
    db, org = tmp_path / "e.db", "org-429-storm"
    slow_down = httpx.Response(429, json={"message": "slow down"})
    rule = _posts_to("POST", "/policies", "instead", slow_down, 100)
    result, writes, clock = _run_answering(db, tmp_path, org, rule)
    assert result.exit_code == EXIT_ERROR
    assert not [w for w in writes if w.endswith("/policies")]
    assert sum(clock.sleeps) <= RetryPolicy().max_attempts * 1.0
