"""Transports that wrap the real one: a read-only guard, a request counter and a deadline.

The guard is what makes `validate`, `plan`, `drift`, `show` and `export` safe by
construction: a write is refused inside the process, before a byte leaves it,
whatever code asked for it.

The deadline bounds each request as a whole, from sending it to the last byte of the
answer: httpx's timeouts bound each read, so a server that trickles a byte every few
seconds would otherwise hold a command forever.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx

from rovo_reconcile.api.errors import AmbiguousWrite, ApiConnectionError, ApiError, WriteRefused

__all__ = [
    "CountingTransport",
    "DeadlineTransport",
    "ReadOnlyTransport",
    "RequestTimedOut",
    "WriteTimedOut",
    "is_read_only_request",
]

# The one POST that only reads: the workspaces search of the Organizations API.
_WORKSPACE_SEARCH = re.compile(r"^(?:/[^/]+)*/admin/v2/orgs/[^/]+/workspaces$")


def is_read_only_request(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") or (method == "POST" and bool(_WORKSPACE_SEARCH.match(path)))


class ReadOnlyTransport(httpx.AsyncBaseTransport):
    """Refuses every request but GET, HEAD and the workspaces search."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_read_only_request(request.method, request.url.path):
            raise WriteRefused(
                f"refused {request.method} {request.url.path}: this command only reads, "
                "and the transport stops every write before it is sent"
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests by method, and writes, as they are sent (for stats and benchmarks).

    A write is what the read-only guard would refuse: the workspaces search is a POST
    that only reads, so it is not one.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.by_method: Counter[str] = Counter()
        self.writes = 0

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.by_method[request.method] += 1
        if not is_read_only_request(request.method, request.url.path):
            self.writes += 1
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RequestTimedOut(ApiConnectionError):
    """A read got no complete answer within its deadline (never retried: the server is stalled)."""


class WriteTimedOut(AmbiguousWrite):
    """A write got no complete answer within its deadline: it may or may not have been applied."""


class DeadlineTransport(httpx.AsyncBaseTransport):
    """Bounds every request, answer body included, by `seconds` in total (`--timeout`)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self._inner = inner
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + self.seconds

        def expired() -> ApiError:
            what = f"{request.method} {request.url.path}"
            message = (
                f"{what}: no complete answer within {self.seconds:g} s (--timeout); "
                "the server is not answering or answers too slowly"
            )
            if is_read_only_request(request.method, request.url.path):
                return RequestTimedOut(message)
            return WriteTimedOut(f"{message}; the write may or may not have been applied")

        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                response = await self._inner.handle_async_request(request)
        except TimeoutError:
            if not timeout.expired():
                raise
            raise expired() from None
        if not isinstance(response.stream, httpx.AsyncByteStream):
            return response  # only async transports are wrapped: nothing left to wait for
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_DeadlineStream(response.stream, deadline, expired),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _DeadlineStream(httpx.AsyncByteStream):
    """An answer body that must arrive whole before the request's deadline."""

    def __init__(
        self, inner: httpx.AsyncByteStream, deadline: float, expired: Callable[[], ApiError]
    ) -> None:
        self._inner = inner
        self._deadline = deadline
        self._expired = expired

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        while True:
            timeout = asyncio.timeout_at(self._deadline)
            try:
                async with timeout:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if not timeout.expired():
                    raise
                raise self._expired() from None
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
