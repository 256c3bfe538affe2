"""Read the live state of several organizations concurrently, through one shared client.

One org's failure does not stop the others: each result is a LiveOrg or the
error that org's read ended with, even when that error is a bug of ours.
`stream_live` hands each org's result over as its read ends (plan, apply and drift
plan it there and drop it); `read_live` keeps them all, for a few orgs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import LiveOrg, read_org
from rovo_reconcile.errors import RovoError
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.progress import OnOrgDone, OrgDone
from rovo_reconcile.targets import Target, open_client

__all__ = ["LiveRead", "OnRead", "read_each", "read_live", "read_orgs", "stream_live"]


@dataclass(frozen=True, repr=False)
class LiveRead:
    results: dict[str, LiveOrg | RovoError]
    requests: int
    """Requests sent for the whole read (all orgs), as counted at the transport."""

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run (3.11) formats its finished main task, result included.
        return f"LiveRead({len(self.results)} orgs, {self.requests} requests)"

    def org(self, org_id: str) -> LiveOrg:
        """The org's live state, or raise the error its read ended with."""
        result = self.results[org_id]
        if isinstance(result, RovoError):
            raise result
        return result


OnRead = Callable[[str, LiveOrg | RovoError], None]
"""Hears of each org's read as it ends: the org id and its live state or its error."""


async def read_each(
    client: AdminClient,
    api_url: str,
    org_ids: Sequence[str],
    on_read: OnRead,
    *,
    window: int,
    on_done: OnOrgDone | None = None,
    canonical: Callable[[str], Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> None:
    """Read every org, at most `window` at a time, and hand each result to `on_read` as soon
    as its read ends, so the caller can plan the org and let its live state go: the live
    state of a thousand orgs is never held at once. `on_done` hears of each org first.
    `canonical` gives, per org, domain patterns known to be in normal form (`read_org`).

    An exception from `on_read` (a bug) stops the orgs not started yet; it is raised once
    the reads under way have ended, so no request is left running."""
    slots = asyncio.Semaphore(max(1, window))
    failed: list[Exception] = []

    async def one(org_id: str) -> None:
        async with slots:
            if failed:
                return
            started = client.clock.monotonic()
            result: LiveOrg | RovoError
            try:
                known = canonical(org_id) if canonical is not None else ()
                result = await read_org(client, api_url, org_id, known, mcp)
            except RovoError as e:
                result = e
            except Exception as e:  # a bug met in one org's answers must not stop the others
                if os.environ.get("ROVO_RECONCILE_DEBUG"):
                    raise
                result = RovoError(
                    f"internal error while reading org {org_id} ({type(e).__name__}: "
                    f"{str(e)[:200]}); the other orgs went on. This is a bug; set "
                    "ROVO_RECONCILE_DEBUG=1 to see the traceback and please report it"
                )
            if on_done is not None:
                what = "read failed" if isinstance(result, RovoError) else "read"
                seconds = client.clock.monotonic() - started
                on_done(OrgDone(org_id, what, seconds, len(org_ids)))
            try:
                on_read(org_id, result)
            except Exception as e:
                failed.append(e)

    await asyncio.gather(*(one(org_id) for org_id in org_ids))
    if failed:
        raise failed[0]


async def read_orgs(
    client: AdminClient,
    api_url: str,
    org_ids: Sequence[str],
    *,
    on_done: OnOrgDone | None = None,
    canonical: Mapping[str, Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> dict[str, LiveOrg | RovoError]:
    """Read every org concurrently and keep every result (a few orgs: `live`, `export`);
    `read_each` hands them over one by one instead."""
    results: dict[str, LiveOrg | RovoError] = {}
    known = canonical or {}
    await read_each(
        client,
        api_url,
        org_ids,
        results.__setitem__,
        window=len(org_ids),
        on_done=on_done,
        canonical=lambda org_id: known.get(org_id, ()),
        mcp=mcp,
    )
    return {org_id: results[org_id] for org_id in org_ids}


async def read_live(
    target: Target,
    org_ids: Sequence[str],
    *,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
    canonical: Mapping[str, Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> LiveRead:
    """Read every org and keep every result; read-only by construction (the transport
    refuses writes)."""
    async with open_client(target, read_only=True, concurrency=concurrency) as (client, counter):
        results = await read_orgs(
            client, target.api_url, org_ids, on_done=on_done, canonical=canonical, mcp=mcp
        )
        return LiveRead(results, counter.total)


async def stream_live(
    target: Target,
    org_ids: Sequence[str],
    on_read: OnRead,
    *,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
    canonical: Callable[[str], Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> int:
    """Read every org, `concurrency` orgs at a time, handing each result to `on_read` as its
    read ends (`read_each`); read-only by construction. Returns the requests sent."""
    async with open_client(target, read_only=True, concurrency=concurrency) as (client, counter):
        await read_each(
            client,
            target.api_url,
            org_ids,
            on_read,
            window=concurrency,
            on_done=on_done,
            canonical=canonical,
            mcp=mcp,
        )
        return counter.total
