"""Read the live state of several organizations concurrently, through one shared client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from rovo_reconcile.api.live import LiveOrg, read_org
from rovo_reconcile.targets import Target, open_client

__all__ = ["LiveRead", "read_live"]


@dataclass(frozen=True)
class LiveRead:
    orgs: tuple[LiveOrg, ...]
    requests: int
    """Requests sent for the whole read (all orgs), as counted at the transport."""


async def read_live(target: Target, org_ids: Sequence[str], *, concurrency: int = 8) -> LiveRead:
    """Read every org; read-only by construction (the transport refuses writes)."""
    async with open_client(target, read_only=True, concurrency=concurrency) as (client, counter):
        orgs = await asyncio.gather(
            *(read_org(client, target.api_url, org_id) for org_id in org_ids)
        )
        return LiveRead(tuple(orgs), counter.total)
