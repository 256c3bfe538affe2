"""Read one organization's live state into the same model types as a policy.

Four reads, run concurrently: workspaces (apps -> resource ids), IP allowlist
policies, MCP settings and MCP domains. Every value goes through `normalize`, the
same functions the policy loader uses, so equal settings compare equal.

The Rovo MCP endpoints are this project's own contract (Atlassian publishes no
MCP admin API). Where an organization answers 404 on them, MCP is reported as
unavailable and the rest still works.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rovo_reconcile.api.client import AdminClient, Json
from rovo_reconcile.api.errors import ApiNotFound
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.model import (
    APPS,
    AddressEntry,
    App,
    Authentication,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)
from rovo_reconcile.normalize import normalize_address, normalize_domain

__all__ = [
    "APP_TYPE_KEYS",
    "Endpoints",
    "LiveAllowlist",
    "LiveOrg",
    "LiveResource",
    "Workspace",
    "allowlist_from_policy",
    "read_org",
]

APP_TYPE_KEYS: dict[App, str] = {
    "jira": "jira-software",
    "jsm": "jira-servicedesk",
    "confluence": "confluence",
    "compass": "compass",
    "rovo": "rovo",
}
_APP_BY_TYPE_KEY = {type_key: app for app, type_key in APP_TYPE_KEYS.items()}


@dataclass(frozen=True)
class Endpoints:
    """URLs of one organization's Admin API resources under an API base URL."""

    api_url: str
    org_id: str

    @property
    def control(self) -> str:
        return f"{self.api_url.rstrip('/')}/admin/control/v1/orgs/{self.org_id}"

    @property
    def workspaces(self) -> str:
        return f"{self.api_url.rstrip('/')}/admin/v2/orgs/{self.org_id}/workspaces"

    @property
    def policies(self) -> str:
        return f"{self.control}/policies"

    @property
    def mcp_settings(self) -> str:
        return f"{self.control}/rovo-mcp/settings"

    @property
    def mcp_domains(self) -> str:
        return f"{self.control}/rovo-mcp/domains"


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    type_key: str

    @property
    def app(self) -> App | None:
        return _APP_BY_TYPE_KEY.get(self.type_key)


@dataclass(frozen=True)
class LiveResource:
    id: str
    application_status: str | None
    app: App | None
    """None for a resource id that is not one of the org's known app workspaces: kept as is."""


@dataclass(frozen=True)
class LiveAllowlist:
    """A live ip-allowlist policy with what the model does not hold: ids and statuses."""

    id: str
    name: str
    resources: tuple[LiveResource, ...]
    partial_apps: tuple[App, ...]
    """Apps with some but not all of their workspaces attached (counted as not covered)."""


@dataclass(frozen=True)
class LiveOrg:
    org_id: str
    state: OrgPolicy
    workspaces: tuple[Workspace, ...]
    allowlists: dict[str, LiveAllowlist] = field(default_factory=dict)
    domain_ids: dict[str, str] = field(default_factory=dict)
    extra_domain_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Ids of further live spellings of one canonical pattern: removing it removes them all."""
    duplicate_names: tuple[str, ...] = ()
    """Names that more than one live allowlist carries: allowlists are managed by name."""
    mcp_available: bool = True
    notes: tuple[str, ...] = ()
    """Things the reader noticed and the user should hear about (on stderr)."""

    @property
    def kept_apps(self) -> dict[str, tuple[App, ...]]:
        """Apps each live list is partly attached to: apply leaves those attachments alone."""
        return {name: a.partial_apps for name, a in self.allowlists.items() if a.partial_apps}

    def ambiguity(self) -> str | None:
        """Why this org's allowlists cannot be managed (they are managed by name), or None."""
        if not self.duplicate_names:
            return None
        names = ", ".join(repr(n) for n in self.duplicate_names)
        return (
            f"more than one live allowlist is named {names}; rovo-reconcile manages allowlists "
            "by name, so rename or delete the extra one in Atlassian Administration"
        )


async def read_org(client: AdminClient, api_url: str, org_id: str) -> LiveOrg:
    urls = Endpoints(api_url, org_id)
    notes: list[str] = []
    workspaces, policies, mcp = await asyncio.gather(
        _workspaces(client, urls),
        _collect(client.pages("GET", urls.policies, params={"type": "ip-allowlist"})),
        _mcp(client, urls, notes),
    )
    allowlists, details, duplicates = _allowlists(policies, workspaces, notes)
    settings, domain_ids, extra_domain_ids = mcp if mcp is not None else (None, {}, {})
    if mcp is None:
        notes.append(
            f"org {org_id}: the Rovo MCP settings API answered 404; MCP settings are left alone "
            "and must be managed in Atlassian Administration"
        )
    return LiveOrg(
        org_id=org_id,
        state=OrgPolicy(org=Org(id=org_id), mcp=settings, ip_allowlists=allowlists),
        workspaces=workspaces,
        allowlists=details,
        domain_ids=domain_ids,
        extra_domain_ids=extra_domain_ids,
        duplicate_names=duplicates,
        mcp_available=mcp is not None,
        notes=tuple(notes),
    )


async def _collect(items: Any) -> list[Json]:
    return [item async for item in items]


async def _workspaces(client: AdminClient, urls: Endpoints) -> tuple[Workspace, ...]:
    found = []
    async for item in client.pages("POST", urls.workspaces, json_body={}):
        attributes = item.get("attributes") or {}
        found.append(
            Workspace(
                id=str(item.get("id")),
                name=str(attributes.get("name", "")),
                type_key=str(attributes.get("typeKey", "")),
            )
        )
    return tuple(sorted(found, key=lambda w: (w.type_key, w.name, w.id)))


def _allowlists(
    policies: list[Json], workspaces: tuple[Workspace, ...], notes: list[str]
) -> tuple[tuple[IpAllowlist, ...], dict[str, LiveAllowlist], tuple[str, ...]]:
    models: list[IpAllowlist] = []
    details: dict[str, LiveAllowlist] = {}
    duplicates: list[str] = []
    for policy in policies:
        if (policy.get("attributes") or {}).get("type") != "ip-allowlist":
            continue
        model, detail = allowlist_from_policy(policy, workspaces, notes)
        if model.name in details:
            duplicates.append(model.name)
            notes.append(
                f"more than one live allowlist is named {model.name!r}; plan, apply, drift and "
                "export refuse this org until the extra one is renamed or deleted"
            )
            continue
        models.append(model)
        details[model.name] = detail
    models.sort(key=lambda a: a.name)
    return tuple(models), details, tuple(sorted(set(duplicates)))


def allowlist_from_policy(
    policy: Json, workspaces: tuple[Workspace, ...], notes: list[str]
) -> tuple[IpAllowlist, LiveAllowlist]:
    """One ip-allowlist policy as the model sees it, and its ids and statuses.

    An app counts as covered only when every workspace of that app is attached.
    """
    by_id = {w.id: w for w in workspaces}
    per_app: dict[App, set[str]] = defaultdict(set)
    for w in workspaces:
        if w.app is not None:
            per_app[w.app].add(w.id)
    attributes = policy.get("attributes") or {}
    name = str(attributes.get("name", ""))
    rule = attributes.get("rule") or {}
    resources = tuple(
        LiveResource(
            id=str(r.get("id")),
            application_status=r.get("applicationStatus"),
            app=by_id[str(r.get("id"))].app if str(r.get("id")) in by_id else None,
        )
        for r in attributes.get("resources") or []
        if isinstance(r, dict)
    )
    attached = {r.id for r in resources}
    apps = tuple(app for app in APPS if per_app[app] and per_app[app] <= attached)
    partial = tuple(app for app in APPS if per_app[app] & attached and not per_app[app] <= attached)
    for app in partial:
        notes.append(
            f"allowlist {name!r} covers {len(per_app[app] & attached)} of {len(per_app[app])} "
            f"{app} workspaces; those attachments are left as they are (list {app} in its apps "
            "to cover them all)"
        )
    addresses = []
    for raw in rule.get("in") or []:
        try:
            addresses.append(normalize_address(raw))
        except NormalizeError:
            notes.append(
                f"allowlist {name!r}: live address {raw!r} is not IPv4 and is kept as it is"
            )
            addresses.append(str(raw))
    model = IpAllowlist(
        name=name,
        enabled=attributes.get("status") == "enabled",
        apps=apps,
        allow_mobile_bypass=bool(rule.get("allowMobileBypass", False)),
        addresses=tuple(AddressEntry(address=a) for a in dict.fromkeys(addresses)),
    )
    detail = LiveAllowlist(
        id=str(policy.get("id")), name=name, resources=resources, partial_apps=partial
    )
    return model, detail


async def _mcp(
    client: AdminClient, urls: Endpoints, notes: list[str]
) -> tuple[McpSettings, dict[str, str], dict[str, tuple[str, ...]]] | None:
    try:
        settings, domains = await asyncio.gather(
            client.get_json(urls.mcp_settings), _collect(client.pages("GET", urls.mcp_domains))
        )
    except ApiNotFound as e:
        if e.code == "ADMIN-404-2":  # the organization itself is unknown: not an MCP matter
            raise
        return None
    attributes = (settings.get("data") or {}).get("attributes") or {}
    auth = attributes.get("authentication") or {}
    ids: dict[str, str] = {}
    extra: dict[str, tuple[str, ...]] = {}
    for item in domains:
        pattern = domain_pattern((item.get("attributes") or {}).get("pattern"), notes)
        if pattern in ids:
            extra[pattern] = (*extra.get(pattern, ()), str(item.get("id")))
        else:
            ids[pattern] = str(item.get("id"))
    return (
        McpSettings(
            allow_atlassian_supported_domains=bool(
                attributes.get("allowAtlassianSupportedDomains", True)
            ),
            domains=tuple(DomainEntry(pattern=p) for p in sorted(ids)),
            authentication=Authentication(api_token=bool(auth.get("apiToken", False))),
        ),
        ids,
        extra,
    )


def domain_pattern(raw: object, notes: list[str] | None = None) -> str:
    """A live MCP domain's canonical pattern; one we cannot normalise is kept as it is."""
    try:
        return normalize_domain(raw)
    except NormalizeError as e:
        if notes is not None:
            notes.append(f"live MCP domain {raw!r} is kept as it is: {e.message}")
        return str(raw)
