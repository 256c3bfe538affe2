"""Client edge cases: refused connections, unreadable rate-limit headers, malformed keys,
and what counts as a write."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from datetime import UTC, datetime

import httpx
import pytest

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.errors import ApiConnectionError, ApiUnauthorized
from rovo_reconcile.api.retry import RetryPolicy, SystemClock, server_wait
from rovo_reconcile.api.secrets import BearerAuth, Secret
from rovo_reconcile.api.transport import CountingTransport

from .fakes import FakeClock

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _refused(method: str, clock: FakeClock | SystemClock) -> tuple[list[str], int]:
    """Send one request to a closed port; return the retry log lines and the attempts made."""
    log: list[str] = []
    counter = CountingTransport(httpx.AsyncHTTPTransport())

    async def scenario() -> None:
        http = httpx.AsyncClient(transport=counter, timeout=5)
        client = AdminClient(
            http, clock=clock, retry=RetryPolicy(rng=random.Random(1)), log=log.append
        )
        try:
            with pytest.raises(ApiConnectionError, match="connection refused"):
                await client.send_json(method, f"http://127.0.0.1:{_closed_port()}/admin/x", {})
        finally:
            await client.aclose()

    asyncio.run(scenario())
    return log, counter.total


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_connection_gives_up_after_three_quick_attempts(method: str) -> None:
    """Nothing listening: three attempts, waits of at most a second, retries announced as before."""
    clock = FakeClock()
    log, attempts = _refused(method, clock)
    assert attempts == 3
    assert len(clock.sleeps) == 2
    assert all(wait <= 1.0 for wait in clock.sleeps)
    assert all(": cannot connect; retrying in " in line for line in log), log
    assert log[-1].endswith("(attempt 3 of 3)")


def test_an_unreachable_url_fails_within_seconds_on_the_real_clock() -> None:
    """The default policy against a closed port takes seconds, not the minute it once did."""
    started = time.monotonic()
    _refused("GET", SystemClock())
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Reset": "1795694460"}, 60.0),
        ({"X-RateLimit-Reset": "1795694460000"}, 60.0),
        ({"X-RateLimit-Reset": "2026-11-26T12:01Z"}, 60.0),
        ({"X-RateLimit-Reset": "2026-11-26T12:00:30"}, 30.0),
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Reset": "9" * 40}, None),
        ({"X-RateLimit-Reset": "30"}, 30.0),
        ({"X-RateLimit-Reset": "-5"}, None),
        ({"Retry-After": "²".encode("latin-1")}, None),
        ({"Retry-After": "Thu, 26 Nov 2026 12:00:10 -0000"}, 10.0),
        ({"Retry-After": "Thu, 99 Nov 2026 99:00:10 GMT"}, None),
    ],
)
def test_a_rate_limit_header_is_read_or_ignored_never_an_error(
    headers: dict[str, str | bytes], expected: float | None
) -> None:
    """Epoch seconds, epoch milliseconds and ISO dates are read; anything else falls back to backoff."""
    assert server_wait(httpx.Response(429, headers=headers), NOW) == expected


@pytest.mark.parametrize("key", ["two words", "tab\there", "line\nbreak", "bell\x07", "clé"])
def test_a_key_that_cannot_be_a_header_is_refused_before_sending_and_never_quoted(key: str) -> None:
    """A key with whitespace, control or non-ASCII characters stops in-process, and the message names no key."""
    sent: list[httpx.Request] = []

    async def scenario() -> str:
        transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200, json={}))
        http = httpx.AsyncClient(transport=transport, auth=BearerAuth(Secret(key)))
        client = AdminClient(http, clock=FakeClock(), secret=Secret(key))
        try:
            with pytest.raises(ApiUnauthorized) as caught:
                await client.get_json("https://api.example.invalid/admin/x")
            return str(caught.value)
        finally:
            await client.aclose()

    message = asyncio.run(scenario())
    assert "whitespace, control or non-ASCII" in message
    assert key not in message
    assert key.split()[0] not in message
    assert not sent


def test_only_real_writes_are_counted_as_writes() -> None:
    """The workspaces search is a POST that only reads; every other POST, PUT, PATCH and DELETE is a write."""
    counter = CountingTransport(httpx.MockTransport(lambda _r: httpx.Response(200, json={})))
    base = "https://api.example.invalid"

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=counter) as http:
            await http.post(f"{base}/admin/v2/orgs/o1/workspaces", json={})
            await http.get(f"{base}/admin/control/v1/orgs/o1/policies")
            await http.post(f"{base}/admin/control/v1/orgs/o1/policies", json={})
            await http.delete(f"{base}/admin/control/v1/orgs/o1/policies/p1")

    asyncio.run(scenario())
    assert (counter.total, counter.writes) == (4, 2)


def test_a_host_name_that_does_not_resolve_gives_up_after_three_quick_attempts() -> None:
    """A mistyped --api-url fails in seconds, saying why, not after the whole retry budget."""

    def no_such_host(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(
            -2, "Name or service not known"
        )

    clock = FakeClock()
    log: list[str] = []

    async def scenario() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(no_such_host))
        client = AdminClient(
            http, clock=clock, retry=RetryPolicy(rng=random.Random(1)), log=log.append
        )
        try:
            with pytest.raises(ApiConnectionError, match="the host name does not resolve"):
                await client.get_json("https://admin.exampel.invalid/admin/x")
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert len(clock.sleeps) == 2
    assert all(wait <= 1.0 for wait in clock.sleeps)
