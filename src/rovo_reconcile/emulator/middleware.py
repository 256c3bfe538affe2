"""What happens to a request before the API handlers see it: counting, auth, faults.

A plain ASGI middleware, because two of its jobs need the raw protocol: the
stats counter must record the status before the client can see the response
(so "request, then read stats" never races), and a dropped connection must be
a response cut off mid-body, which no Response object can express.

Order, per request (the `/_emulator/` endpoints skip all of it):

    read the whole request -> count -> latency -> rate limit (429) -> fail_rate (503) -> auth (401/403)
          -> handler -> drop (writes only: the write is done, the answer is cut)

The rate limit comes first so that, as documented, every response - a 401
too - carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`.

Every random decision comes from one `random.Random(seed)`, drawn only when its
rate is above zero, so a seeded emulator misbehaves the same way on every run.
"""

from __future__ import annotations

import hmac
import math
import random
import re
import time
from collections.abc import Mapping
from typing import Literal

import anyio
import httpx
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rovo_reconcile.emulator.responses import (
    application_error,
    no_perms_error,
    proxy_error,
)
from rovo_reconcile.emulator.store import Store

__all__ = [
    "DroppedConnection",
    "EmulatorMiddleware",
    "Faults",
    "RateWindow",
    "is_write",
]

STATS_PREFIX = "/_emulator/"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The one POST that only reads (DESIGN.md section 5): a read key may use it and it is no write.
_WORKSPACE_SEARCH = re.compile(r"/admin/v2/orgs/[^/]+/workspaces/?")


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised after a partial response, so the server cuts the connection mid-body.

    It is an httpx transport error on purpose: through `httpx.ASGITransport` (the
    in-process sandbox) the exception reaches the client unchanged, so the client
    sees exactly the failure it sees over a real socket, where uvicorn closes the
    connection instead.
    """

    def __init__(self) -> None:
        super().__init__("the emulator dropped the connection after applying the write (drop_rate)")


def is_write(method: str, path: str) -> bool:
    if method in _READ_METHODS:
        return False
    return not (method == "POST" and _WORKSPACE_SEARCH.fullmatch(path))


class Faults:
    """The seeded dice for every injected fault."""

    def __init__(
        self, *, seed: int | None, fail_rate: float, drop_rate: float, apply_fail_rate: float
    ) -> None:
        self._rng = random.Random(seed)
        self.fail_rate = fail_rate
        self.drop_rate = drop_rate
        self.apply_fail_rate = apply_fail_rate

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def fail(self) -> bool:
        return self._roll(self.fail_rate)

    def drop(self) -> bool:
        return self._roll(self.drop_rate)

    def proxy_shaped(self) -> bool:
        """Which of the two documented bodies a 503 gets; clients must read both."""
        return self._rng.random() < 0.5

    def apply_outcome(self) -> Literal["applied", "failed"]:
        return "failed" if self._roll(self.apply_fail_rate) else "applied"


class RateWindow:
    """A fixed one-second window over all keys: at most `limit` requests admitted per second."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._window = -1
        self._count = 0

    def admit(self, now: float) -> tuple[bool, dict[str, str]]:
        """(admitted?, the X-RateLimit-* headers to send)."""
        window = int(now)
        if window != self._window:
            self._window, self._count = window, 0
        admitted = self._count < self.limit
        if admitted:
            self._count += 1
        # The documented format has minute precision; round up so it is never early.
        reset_at = math.ceil((window + 1) / 60) * 60
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self._count),
            "X-RateLimit-Reset": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(reset_at)),
        }
        return admitted, headers


class EmulatorMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store,
        faults: Faults,
        api_keys: Mapping[str, Literal["read", "write"]],
        latency_ms: int,
        rate_limit: int | None,
        retry_after_s: int,
    ) -> None:
        self.app = app
        self.store = store
        self.faults = faults
        # Keys are held as bytes only to compare them; they are never logged or echoed.
        self._keys = [(key.encode("utf-8"), role) for key, role in api_keys.items()]
        self.latency_s = latency_ms / 1000
        self.rate = RateWindow(rate_limit) if rate_limit is not None else None
        self.retry_after = str(retry_after_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STATS_PREFIX):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        write = is_write(method, path)
        started = False

        async def counted_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                self.store.count_request(method, path, message["status"], write=write)
            await send(message)

        whole = await _read_whole(receive)
        if whole is None:  # the client went away before its request arrived whole
            self.store.count_request(method, path, _CLIENT_CLOSED, write=write)
            return
        try:
            await self._handle(scope, whole, counted_send, path, write)
        except Exception:
            if not started:  # the server will answer 500; count it as such
                self.store.count_request(method, path, 500, write=write)
            raise

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, write: bool
    ) -> None:
        if self.latency_s > 0:
            await anyio.sleep(self.latency_s)
        if self.rate is not None:
            admitted, rate_headers = self.rate.admit(time.time())
            if not admitted:
                headers = {**rate_headers, "Retry-After": self.retry_after}
                response = proxy_error(429, "Too Many Requests: rate limit exceeded", headers)
                await response(scope, receive, send)
                return
            send = _with_headers(send, rate_headers)
        if self.faults.fail():
            await self._unavailable()(scope, receive, send)
            return
        denied = self._authorize(scope, path, write)
        if denied is not None:
            await denied(scope, receive, send)
            return
        if write and self.faults.drop():
            send = _dropping(send)
        await self.app(scope, receive, send)

    def _unavailable(self) -> Response:
        headers = {"Retry-After": self.retry_after}
        if self.faults.proxy_shaped():
            return proxy_error(503, "Service Unavailable", headers)
        return application_error(
            503,
            "ADMIN-503-1",
            "Service unavailable",
            "The service is temporarily unavailable (the emulator's fail_rate); retry later.",
            headers,
        )

    def _authorize(self, scope: Scope, path: str, write: bool) -> Response | None:
        if not self._keys:
            return None
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        offered = token.strip().encode("utf-8")
        role: str | None = None
        if scheme.lower() == "bearer" and offered:
            for key, key_role in self._keys:  # compare with every key: no early exit
                if hmac.compare_digest(offered, key):
                    role = key_role
        if role is None:
            return proxy_error(
                401, "Unauthorized: send a valid API key as 'Authorization: Bearer <key>'"
            )
        if role == "read" and write:
            return no_perms_error(
                path, "This API key has read access only; writes need a key with write access."
            )
        return None


_CLIENT_CLOSED = 499
"""Counted for a request whose client disconnected before sending all of it (nginx's code)."""


async def _read_whole(receive: Receive) -> Receive | None:
    """Read the request body before anything else, as a server that has received a request
    does; then a client that dies during `latency_ms` cannot stop its write from landing.
    None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    return replay


def _with_headers(send: Send, headers: Mapping[str, str]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            target = MutableHeaders(scope=message)
            for name, value in headers.items():
                target[name] = value
        await send(message)

    return wrapped


def _dropping(send: Send) -> Send:
    """Hold back a successful answer, then send its head and half its body and fail."""
    start: Message | None = None
    body = bytearray()

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            if message["status"] >= 300:  # only a write that took effect is dropped
                start = None
                await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        # A 204 cannot carry a body, so the cut answer claims 200: the client never gets
        # a complete response either way.
        status = 200 if start["status"] in (204, 304) else start["status"]
        declared = max(len(body), 2)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(declared).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": bytes(body[: declared // 2]), "more_body": True}
        )
        raise DroppedConnection

    return wrapped
