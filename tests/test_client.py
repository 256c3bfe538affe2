"""The Admin API client against the emulator over a real loopback socket, and in-process."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.errors import (
    AmbiguousWrite,
    ApiForbidden,
    ApiNotFound,
    ApiUnauthorized,
    ApiUnavailable,
    WriteRefused,
)
from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.api.secrets import BearerAuth, Secret
from rovo_reconcile.api.transport import ReadOnlyTransport
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.plan import state_value

from .emulator_fixture import Emulator, EmulatorPool, start_emulator
from .fakes import FakeClock

ORG = "org-client-test"


def _policy_body(
    name: str, addresses: list[str], resources: list[str], status: str = "enabled"
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


@asynccontextmanager
async def client_for(
    url: str,
    *,
    key: str | None = None,
    read_only: bool = False,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[AdminClient]:
    inner = transport or httpx.AsyncHTTPTransport()
    secret = Secret(key) if key else None
    http = httpx.AsyncClient(
        transport=ReadOnlyTransport(inner) if read_only else inner,
        auth=BearerAuth(secret) if secret else None,
        timeout=10.0,
    )
    client = AdminClient(
        http,
        retry=retry or RetryPolicy(rng=random.Random(1)),
        clock=clock or FakeClock(),
        secret=secret,
    )
    try:
        yield client
    finally:
        await client.aclose()


def _stats(emu: Emulator) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{emu.url}/_emulator/stats").json()
    return data


@pytest.fixture
def emulator(emulator_pool: EmulatorPool) -> Iterator[Emulator]:
    with emulator_pool.fresh("--settle-ms", "0", "--page-size", "2") as emu:
        yield emu


async def _seed(client: AdminClient, url: str) -> None:
    urls = Endpoints(url, ORG)
    workspaces = [w async for w in client.pages("POST", urls.workspaces, json_body={})]
    jira = [w["id"] for w in workspaces if w["attributes"]["typeKey"] == "jira-software"]
    confluence = [w["id"] for w in workspaces if w["attributes"]["typeKey"] == "confluence"]
    await client.send_json(
        "POST", urls.policies, _policy_body("Office", ["52.14.0.0/16", "9.9.9.9"], jira)
    )
    await client.send_json(
        "POST", urls.policies, _policy_body("VPN", ["18.0.0.0/8"], jira[:1] + confluence)
    )
    await client.send_json("POST", urls.policies, _policy_body("Lab", [], [], status="disabled"))
    for host in ("a", "b", "c", "d", "e"):
        body = {
            "data": {
                "type": "rovo-mcp-domain",
                "attributes": {"pattern": f"https://{host}.example.com/**"},
            }
        }
        await client.send_json("POST", urls.mcp_domains, body)
    await client.send_json(
        "PATCH",
        urls.mcp_settings,
        {
            "data": {
                "type": "rovo-mcp-settings",
                "attributes": {"allowAtlassianSupportedDomains": False},
            }
        },
    )


def test_pagination_reads_every_item_across_pages(emulator: Emulator) -> None:
    """With two items a page, five domains and seven workspaces still all arrive, once each."""

    async def scenario() -> None:
        async with client_for(emulator.url) as client:
            await _seed(client, emulator.url)
            live = await read_org(client, emulator.url, ORG)
        assert live.state.mcp is not None
        assert live.state.mcp.domains is not None
        assert [d.pattern for d in live.state.mcp.domains] == [
            f"https://{h}.example.com/**" for h in "abcde"
        ]
        assert len(live.workspaces) == 6
        assert live.state.mcp.allow_atlassian_supported_domains is False
        lists = {a.name: a for a in live.state.ip_allowlists or ()}
        assert lists["Office"].apps == ("jira",)
        assert lists["Office"].enabled
        assert [a.address for a in lists["Office"].addresses] == ["52.14.0.0/16", "9.9.9.9/32"]
        assert lists["VPN"].apps == (
            "confluence",
        )  # only one of two jira workspaces: jira not covered
        assert live.allowlists["VPN"].partial_apps == ("jira",)
        assert not lists["Lab"].enabled

    asyncio.run(scenario())


def test_rate_limit_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    """Over the limit the server answers 429; the client waits at least Retry-After, then succeeds."""
    with start_emulator(tmp_path, "--rate-limit", "2", "--retry-after", "1") as emu:
        clock = FakeClock(real_cap=1.05)

        async def scenario() -> list[int]:
            async with client_for(emu.url, clock=clock) as client:
                urls = Endpoints(emu.url, ORG)
                responses = await asyncio.gather(
                    *(client.request("GET", urls.mcp_settings) for _ in range(4))
                )
                return [r.status_code for r in responses]

        assert asyncio.run(scenario()) == [200, 200, 200, 200]
        assert clock.sleeps, "some requests must have been limited"
        assert all(wait >= 1.0 for wait in clock.sleeps)


def test_503_is_retried_never_earlier_than_asked_within_the_budget(tmp_path: Path) -> None:
    """Every wait honours Retry-After; the client gives up when the time budget would be exceeded."""
    with start_emulator(tmp_path, "--fail-rate", "1", "--retry-after", "7") as emu:
        clock = FakeClock()

        async def scenario() -> None:
            retry = RetryPolicy(max_attempts=10, budget=25.0)
            async with client_for(emu.url, clock=clock, retry=retry) as client:
                await client.get_json(Endpoints(emu.url, ORG).mcp_settings)

        with pytest.raises(ApiUnavailable, match="budget"):
            asyncio.run(scenario())
        assert len(clock.sleeps) == 3
        assert all(7.0 <= wait <= 8.0 for wait in clock.sleeps)
        assert _stats(emu)["requests"]["GET"] == 4


def test_503_storm_is_survived(tmp_path: Path) -> None:
    """With half the requests failing, a full read still completes, with retries."""
    with start_emulator(tmp_path, "--fail-rate", "0.5", "--retry-after", "0", "--seed", "3") as emu:
        clock = FakeClock()

        async def scenario() -> int:
            retry = RetryPolicy(max_attempts=12)
            async with client_for(emu.url, clock=clock, retry=retry) as client:
                live = await read_org(client, emu.url, ORG)
            return len(live.workspaces)

        assert asyncio.run(scenario()) == 6
        assert clock.sleeps


@pytest.mark.parametrize(
    ("key", "method", "path", "error", "words"),
    [
        ("wrong-key", "GET", "/policies", ApiUnauthorized, "HTTP 401"),
        ("reader", "POST", "/rovo-mcp/domains", ApiForbidden, "HTTP 403"),
        ("writer", "GET", "/policies/does-not-exist", ApiNotFound, "HTTP 404"),
    ],
)
def test_errors_become_typed_messages_without_the_key(
    emulator_pool: EmulatorPool,
    key: str,
    method: str,
    path: str,
    error: type[Exception],
    words: str,
) -> None:
    """401, 403 and 404 map to their error types, with the server's words and no secret in them."""
    with emulator_pool.fresh("--api-key", "reader:read", "--api-key", "writer:write") as emu:

        async def scenario() -> None:
            async with client_for(emu.url, key=key) as client:
                body = {
                    "data": {
                        "type": "rovo-mcp-domain",
                        "attributes": {"pattern": "https://x.example.com"},
                    }
                }
                await client.send_json(
                    method,
                    Endpoints(emu.url, ORG).control + path,
                    body if method == "POST" else None,
                )

        with pytest.raises(error) as info:
            asyncio.run(scenario())
        message = str(info.value)
        assert words in message
        assert key not in message


def test_dropped_write_is_reported_ambiguous_and_never_resent(tmp_path: Path) -> None:
    """The server applies a POST and cuts the connection: the client does not resend; a re-read finds it once."""
    with start_emulator(tmp_path, "--drop-rate", "1") as emu:
        urls = Endpoints(emu.url, ORG)

        async def scenario() -> list[str]:
            async with client_for(emu.url) as client:
                body = {
                    "data": {
                        "type": "rovo-mcp-domain",
                        "attributes": {"pattern": "https://x.example.com/**"},
                    }
                }
                with pytest.raises(AmbiguousWrite, match="may or may not have been applied"):
                    await client.send_json("POST", urls.mcp_domains, body)
                return [
                    d["attributes"]["pattern"] async for d in client.pages("GET", urls.mcp_domains)
                ]

        assert asyncio.run(scenario()) == ["https://x.example.com/**"]
        assert _stats(emu)["requests"]["POST"] == 1


def test_read_only_transport_refuses_writes_before_they_leave(emulator: Emulator) -> None:
    """In read-only mode a write raises in-process and the server never sees it; the workspaces search passes."""
    urls = Endpoints(emulator.url, ORG)

    async def scenario() -> None:
        async with client_for(emulator.url, read_only=True) as client:
            workspaces = [w async for w in client.pages("POST", urls.workspaces, json_body={})]
            assert workspaces
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                with pytest.raises(WriteRefused):
                    await client.send_json(method, urls.policies, {})

    httpx.post(f"{emulator.url}/_emulator/stats/reset")
    asyncio.run(scenario())
    requests = _stats(emulator)["requests"]
    assert set(requests) <= {"POST", "GET"}
    assert requests.get("POST", 0) == 3  # the workspaces search: 6 workspaces, 2 a page


def test_sandbox_and_emulator_read_the_same_state(emulator: Emulator, tmp_path: Path) -> None:
    """The same writes through the socket and through the in-process sandbox read back identically."""

    async def scenario() -> tuple[Any, Any]:
        async with client_for(emulator.url) as client:
            await _seed(client, emulator.url)
            over_socket = await read_org(client, emulator.url, ORG)
        app = create_app(tmp_path / "sandbox.db", EmulatorOptions(settle_ms=0, page_size=50))
        base = "http://sandbox.invalid"
        async with client_for(base, transport=httpx.ASGITransport(app=app)) as client:
            await _seed(client, base)
            in_process = await read_org(client, base, ORG)
        return over_socket, in_process

    over_socket, in_process = asyncio.run(scenario())
    assert state_value(over_socket.state) == state_value(in_process.state)
    assert over_socket.workspaces == in_process.workspaces
