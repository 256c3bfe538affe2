"""Issue 11 items 5 and 7: every request has an overall deadline (`--timeout`), and the API key
never goes in clear to a host that is not loopback.

The trickling server is a few lines of stdlib sockets: it answers every request one byte at a
time, a byte every 0.2 s, in the headers or in the body. httpx's timeouts bound each read, so
before the deadline existed a command waited on it for as long as it trickled.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rovo_reconcile.api.transport import (
    DeadlineTransport,
    RequestTimedOut,
    WriteTimedOut,
)
from rovo_reconcile.errors import UsageError
from rovo_reconcile.targets import DEFAULT_TIMEOUT, resolve_target

from .conftest import CliRunner

KEY = "test-key-0123456789"
TRICKLE_EVERY = 0.2
TRICKLE_FOR = 300.0
"""Seconds a connection trickles at most (the client hangs up long before)."""

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


def _serve_one(conn: socket.socket, where: str) -> None:
    with conn:
        conn.settimeout(5)
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            if where == "body":
                conn.sendall(HEAD)
            payload = (HEAD if where == "headers" else b"") + b"[" * 100_000
            stop = time.monotonic() + TRICKLE_FOR
            for byte in payload:
                if time.monotonic() > stop:
                    return
                conn.sendall(bytes([byte]))
                time.sleep(TRICKLE_EVERY)
        except OSError:
            return  # the client hung up: what a deadline does


@contextmanager
def trickling_server(where: str) -> Iterator[str]:
    """A loopback HTTP server that trickles its answer; yields its base URL."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(conn, where), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        server.close()


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("where", ["headers", "body"])
def test_trickling_server_ends_the_command_at_the_deadline(
    cli: CliRunner, tmp_path: Path, where: str
) -> None:
    """`show --timeout 1` against a server that trickles: exit 1 with a clear error, not a hang."""
    with trickling_server(where) as url:
        result = cli(
            "show", "--org", "org-1", "--api-url", url, "--timeout", "1",
            env={"ATLASSIAN_ADMIN_API_KEY": KEY},
        )  # fmt: skip
    assert result.code == 1, result.stderr
    assert "no complete answer within 1 s (--timeout)" in result.stderr
    assert "Traceback" not in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_timeout_comes_from_the_environment(cli: CliRunner, tmp_path: Path) -> None:
    """ROVO_RECONCILE_TIMEOUT sets the deadline when --timeout is not given (plan, here)."""
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n  id: org-1\n")
    with trickling_server("body") as url:
        result = cli(
            "plan", str(policy), "--api-url", url,
            env={"ATLASSIAN_ADMIN_API_KEY": KEY, "ROVO_RECONCILE_TIMEOUT": "0.5"},
        )  # fmt: skip
    assert result.code == 1, result.stderr
    # plan reports each org's error in the plan itself: that org could not be planned
    assert re.search(
        r"error: (GET|POST) /admin/\S+: no complete answer within 0\.5 s", result.stdout
    )
    assert "1 org could not be planned" in result.stdout


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_timeout_is_a_usage_error(cli: CliRunner, value: str) -> None:
    result = cli("show", "--org", "org-1", "--timeout", value)
    assert result.code == 64
    assert "--timeout" in result.stderr


# --------------------------------------------------------------------------- the transport


class _Stalled(httpx.AsyncBaseTransport):
    """Answers with headers at once and a body that sends one chunk, then nothing forever;
    or (headers=False) never answers at all."""

    def __init__(self, *, headers: bool) -> None:
        self.headers = headers
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.headers:
            await asyncio.Event().wait()
        transport = self

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield b"{"
                await asyncio.Event().wait()

            async def aclose(self) -> None:
                transport.closed = True

        return httpx.Response(200, stream=Body())


async def _send(inner: httpx.AsyncBaseTransport, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=DeadlineTransport(inner, 0.05), base_url="http://127.0.0.1"
    ) as client:
        return await client.request(method, path)


@pytest.mark.parametrize("headers", [True, False])
def test_stalled_read_raises_request_timed_out(headers: bool) -> None:
    inner = _Stalled(headers=headers)
    with pytest.raises(RequestTimedOut, match=r"GET /admin/x: no complete answer within 0\.05 s"):
        asyncio.run(_send(inner, "GET", "/admin/x"))
    assert inner.closed is headers  # a body that was started is closed


def test_stalled_write_is_ambiguous() -> None:
    """A write without a complete answer may have landed: it is an AmbiguousWrite, re-read."""
    with pytest.raises(WriteTimedOut, match="may or may not have been applied"):
        asyncio.run(_send(_Stalled(headers=True), "POST", "/admin/x"))


def test_prompt_answer_passes_through() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"ok": request.url.path}, headers={"X-Id": "7"})

    response = asyncio.run(_send(httpx.MockTransport(answer), "PUT", "/admin/y"))
    assert (response.status_code, response.headers["X-Id"]) == (201, "7")
    assert response.json() == {"ok": "/admin/y"}


def test_targets_default_to_sixty_seconds() -> None:
    assert DEFAULT_TIMEOUT == 60.0
    assert resolve_target(None, None, None, env={}).timeout == 60.0
    assert resolve_target("atlassian", None, None, env={}, timeout=5).timeout == 5


# --------------------------------------------------------------------------- item 7


@pytest.mark.parametrize(
    "url",
    [
        "http://admin.example.com",
        "http://api.atlassian.com",
        "http://127.0.0.1@admin.example.com",  # userinfo: the host is admin.example.com
        "http://localhost.example.com",
        "http://10.0.0.1:8080",
        "http://[2001:db8::1]",
    ],
)
def test_plain_http_to_a_host_that_is_not_loopback_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="the Admin API key would travel in clear") as info:
        resolve_target(None, url, None, env={})
    assert "plain http only to a loopback host (127.0.0.0/8, ::1, localhost)" in str(info.value)
    assert str(info.value).startswith("--api-url: refusing http://")


def test_plain_http_from_the_environment_names_the_variable() -> None:
    with pytest.raises(UsageError, match=r"^ROVO_RECONCILE_API_URL: refusing http://admin"):
        resolve_target(
            "atlassian", None, None, env={"ROVO_RECONCILE_API_URL": "http://admin.example.com"}
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.1.2.3",
        "http://localhost:9000",
        "http://LOCALHOST:9000",
        "http://[::1]:9000",
        "https://admin.example.com",
    ],
)
def test_loopback_http_and_any_https_are_allowed(url: str) -> None:
    assert resolve_target(None, url, None, env={}).api_url == url


def test_cli_refuses_before_connecting(cli: CliRunner) -> None:
    """Exit 64 naming the rule; the key is never read, so nothing could be sent."""
    result = cli(
        "show", "--org", "org-1", "--api-url", "http://admin.example.com",
        env={"ATLASSIAN_ADMIN_API_KEY": KEY},
    )  # fmt: skip
    assert result.code == 64
    assert "refusing http://admin.example.com" in result.stderr
    assert "plain http only to a loopback host" in result.stderr


@pytest.mark.parametrize("seconds", [1.0, 60.0, 600.0])
def test_httpx_phase_timeouts_never_cut_a_request_short_of_the_deadline(seconds: float) -> None:
    """A stalled read must end at --timeout, not at a shorter httpx read timeout that the
    client would then retry (60 s once meant four GETs and 124 s)."""
    import asyncio

    from rovo_reconcile.targets import open_client

    async def timeouts() -> httpx.Timeout:
        target = resolve_target("atlassian", "http://127.0.0.1:9", None, env={}, timeout=seconds)
        env = {"ATLASSIAN_ADMIN_API_KEY": KEY}
        async with open_client(target, read_only=True, env=env) as (client, _):
            return client.http.timeout

    timeout = asyncio.run(timeouts())
    assert timeout.read is not None
    assert timeout.read > seconds
    assert timeout.write is not None
    assert timeout.write > seconds
