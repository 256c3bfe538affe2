"""Read the live state of several organizations concurrently, through one shared client.

One org's failure does not stop the others: each result is a LiveOrg or the
error that org's read ended with, even when that error is a bug of ours.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import LiveOrg, read_org
from rovo_reconcile.errors import RovoError
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.progress import OnOrgDone, OrgDone
from rovo_reconcile.targets import Target, open_client

__all__ = ["LiveRead", "read_live", "read_orgs"]


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


async def read_orgs(
    client: AdminClient,
    api_url: str,
    org_ids: Sequence[str],
    *,
    on_done: OnOrgDone | None = None,
    canonical: Mapping[str, Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> dict[str, LiveOrg | RovoError]:
    """Read every org concurrently; `on_done` hears of each org as its read ends.
    `canonical` gives, per org, domain patterns known to be in normal form (`read_org`)."""

    async def one(org_id: str) -> LiveOrg | RovoError:
        started = client.clock.monotonic()
        result: LiveOrg | RovoError
        try:
            result = await read_org(client, api_url, org_id, (canonical or {}).get(org_id, ()), mcp)
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
        return result

    results = await asyncio.gather(*(one(org_id) for org_id in org_ids))
    return dict(zip(org_ids, results, strict=True))


async def read_live(
    target: Target,
    org_ids: Sequence[str],
    *,
    concurrency: int = 8,
    on_done: OnOrgDone | None = None,
    canonical: Mapping[str, Collection[str]] | None = None,
    mcp: McpMode = "auto",
) -> LiveRead:
    """Read every org; read-only by construction (the transport refuses writes)."""
    async with open_client(target, read_only=True, concurrency=concurrency) as (client, counter):
        results = await read_orgs(
            client, target.api_url, org_ids, on_done=on_done, canonical=canonical, mcp=mcp
        )
        return LiveRead(results, counter.total)
