"""Transports that wrap the real one: a read-only guard and a request counter.

The guard is what makes `validate`, `plan`, `drift`, `show` and `export` safe by
construction: a write is refused inside the process, before a byte leaves it,
whatever code asked for it.
"""

from __future__ import annotations

import re
from collections import Counter

import httpx

from rovo_reconcile.api.errors import WriteRefused

__all__ = ["CountingTransport", "ReadOnlyTransport", "is_read_only_request"]

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
