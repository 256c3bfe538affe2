"""The organizations an API key can see: `GET /admin/v1/orgs`, paginated (read-only).

Atlassian documents the listing, but a real org-scoped key has been seen to answer it
with an empty `data` (reference/atlassian-admin-api.md 1.3): an empty answer means
"not discoverable with this key", which the caller says plainly.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.shapes import OrgItem, parse

__all__ = ["VisibleOrg", "list_orgs"]


@dataclass(frozen=True)
class VisibleOrg:
    id: str
    name: str


async def list_orgs(client: AdminClient, api_url: str) -> list[VisibleOrg]:
    """Every org of the listing, in the order the API gives them (one entry per id)."""
    url = f"{api_url.rstrip('/')}/admin/v1/orgs"
    where = f"GET {httpx.URL(url).path}"
    found: dict[str, VisibleOrg] = {}
    number = 0
    async for item in client.pages("GET", url):
        number += 1
        org = parse(OrgItem, item, where, f"item {number}")
        found.setdefault(org.id, VisibleOrg(org.id, org.attributes.name))
    return list(found.values())
