"""Read one organization's live state into the same model types as a policy.

Four reads, run concurrently: workspaces (apps -> resource ids), IP allowlist
policies, MCP settings and MCP domains. Every value goes through `normalize`, the
same functions the policy loader uses, so equal settings compare equal.

Every answer is checked against its documented shape first (`shapes`): a malformed
answer is that org's error (`ApiMalformed`), never read as "empty", so no plan is
made from it and nothing is written.

The Rovo MCP endpoints are this project's own contract (Atlassian publishes no
MCP admin API). Where an organization answers 404 on them, MCP is reported as
unavailable and the rest still works; `--mcp` (`mcp_state.McpMode`) can make that
404 an error (`api`) or skip the endpoints altogether (`manual`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx

from rovo_reconcile.api.client import AdminClient, Json
from rovo_reconcile.api.errors import ApiNotFound
from rovo_reconcile.api.shapes import (
    IpAllowlistItem,
    McpDomainItem,
    McpSettingsAnswer,
    PolicyItem,
    WorkspaceItem,
    parse,
)
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.mcp_state import McpLive, McpMode, McpUnavailable, unavailable_note
from rovo_reconcile.policy.model import (
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
from rovo_reconcile.policy.normalize import normalize_address, normalize_domain
from rovo_reconcile.policy.ranges import canonical_span

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
    unmodelled: tuple[str, ...] = ()
    """Attachments the model cannot express (workspaces of a type it does not know, ids
    that are no workspace of the org), each named as the lockout guard names it: apply
    keeps them, and the guard counts them like apps."""


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
    mcp_live: McpLive = "read"
    """How the MCP settings read went: `read`, `unavailable` (a 404) or `not-read` (`--mcp
    manual`); unless `read`, `state.mcp` is None."""
    notes: tuple[str, ...] = ()
    """Things the reader noticed and the user should hear about (on stderr)."""

    @property
    def mcp_available(self) -> bool:
        return self.mcp_live == "read"

    @property
    def kept_apps(self) -> dict[str, tuple[str, ...]]:
        """What each live list stays attached to whatever apply writes: apps it is partly
        attached to, and attachments the model does not express (`LiveAllowlist.unmodelled`)."""
        return {
            name: (*a.partial_apps, *a.unmodelled)
            for name, a in self.allowlists.items()
            if a.partial_apps or a.unmodelled
        }

    def ambiguity(self) -> str | None:
        """Why this org's allowlists cannot be managed (they are managed by name), or None."""
        if not self.duplicate_names:
            return None
        names = ", ".join(repr(n) for n in self.duplicate_names)
        return (
            f"more than one live allowlist is named {names}; rovo-reconcile manages allowlists "
            "by name, so rename or delete the extra one in Atlassian Administration"
        )


async def read_org(
    client: AdminClient,
    api_url: str,
    org_id: str,
    canonical: Collection[str] = (),
    mcp_mode: McpMode = "auto",
) -> LiveOrg:
    """The org's live state. `canonical` holds domain patterns known to be in normal form
    (the policy's, as the loader normalised them): a live pattern equal to one of them is
    its own normal form (normalisation is idempotent), so it is not normalised again.
    `mcp_mode` is `--mcp`: `manual` never calls the MCP endpoints, `api` makes their 404
    this org's error (`McpUnavailable`)."""
    urls = Endpoints(api_url, org_id)
    notes: list[str] = []
    workspaces, policies, mcp = await asyncio.gather(
        _workspaces(client, urls),
        _collect(client.pages("GET", urls.policies, params={"type": "ip-allowlist"})),
        _mcp(client, urls, notes, canonical, mcp_mode),
    )
    where = f"GET {_path(urls.policies)}"
    allowlists, details, duplicates = _allowlists(policies, workspaces, notes, where)
    settings, domain_ids, extra_domain_ids = mcp if mcp is not None else (None, {}, {})
    mcp_live: McpLive = "read" if mcp is not None else "not-read"
    if mcp is None and mcp_mode != "manual":
        mcp_live = "unavailable"
        notes.append(unavailable_note(org_id))
    return LiveOrg(
        org_id=org_id,
        state=OrgPolicy(org=Org(id=org_id), mcp=settings, ip_allowlists=allowlists),
        workspaces=workspaces,
        allowlists=details,
        domain_ids=domain_ids,
        extra_domain_ids=extra_domain_ids,
        duplicate_names=duplicates,
        mcp_live=mcp_live,
        notes=tuple(notes),
    )


def _path(url: str) -> str:
    return httpx.URL(url).path


async def _collect(items: Any) -> list[Json]:
    return [item async for item in items]


async def _workspaces(client: AdminClient, urls: Endpoints) -> tuple[Workspace, ...]:
    where = f"POST {_path(urls.workspaces)}"
    found = []
    number = 0
    async for item in client.pages("POST", urls.workspaces, json_body={}):
        number += 1
        workspace = parse(WorkspaceItem, item, where, f"item {number}")
        found.append(
            Workspace(
                id=workspace.id,
                name=workspace.attributes.name,
                type_key=workspace.attributes.typeKey,
            )
        )
    return tuple(sorted(found, key=lambda w: (w.type_key, w.name, w.id)))


def _allowlists(
    policies: list[Json], workspaces: tuple[Workspace, ...], notes: list[str], where: str
) -> tuple[tuple[IpAllowlist, ...], dict[str, LiveAllowlist], tuple[str, ...]]:
    models: list[IpAllowlist] = []
    details: dict[str, LiveAllowlist] = {}
    duplicates: list[str] = []
    for number, policy in enumerate(policies, 1):
        item = f"item {number}"
        if parse(PolicyItem, policy, where, item).attributes.type != "ip-allowlist":
            continue
        model, detail = allowlist_from_policy(policy, workspaces, notes, where, item)
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
    policy: object,
    workspaces: tuple[Workspace, ...],
    notes: list[str],
    where: str = "policy",
    item: str = "",
) -> tuple[IpAllowlist, LiveAllowlist]:
    """One ip-allowlist policy as the model sees it, and its ids and statuses.

    `policy` is checked against its documented shape first (`where` and `item` name it in
    the error). An app counts as covered only when every workspace of that app is attached
    and no attachment of it settled to `failed`.
    """
    parsed = parse(IpAllowlistItem, policy, where, item)
    attributes = parsed.attributes
    name = attributes.name
    by_id = {w.id: w for w in workspaces}
    per_app: dict[App, set[str]] = defaultdict(set)
    for w in workspaces:
        if w.app is not None:
            per_app[w.app].add(w.id)
    resources = tuple(
        LiveResource(
            id=r.id,
            application_status=r.applicationStatus,
            app=by_id[r.id].app if r.id in by_id else None,
        )
        for r in attributes.resources
    )
    attached = {r.id for r in resources}
    working = {r.id for r in resources if r.application_status != "failed"}
    apps = tuple(app for app in APPS if per_app[app] and per_app[app] <= working)
    partial = tuple(app for app in APPS if per_app[app] & attached and not per_app[app] <= attached)
    failed = tuple(
        app
        for app in APPS
        if per_app[app] and per_app[app] <= attached and not per_app[app] <= working
    )
    for app in partial:
        notes.append(
            f"allowlist {name!r} covers {len(per_app[app] & attached)} of {len(per_app[app])} "
            f"{app} workspaces; those attachments are left as they are (list {app} in its apps "
            "to cover them all)"
        )
    for app in failed:
        notes.append(
            f"allowlist {name!r}: Atlassian reports applicationStatus 'failed' for "
            f"{len(per_app[app] - working)} of its {app} workspaces, so {app} counts as not "
            f"covered; a policy that lists {app} for it applies it again"
        )
    unmodelled = tuple(
        f"{by_id[r.id].type_key} workspace {r.id}" if r.id in by_id else f"resource {r.id}"
        for r in resources
        if r.app is None
    )
    if unmodelled:
        notes.append(
            f"allowlist {name!r} is also attached to {', '.join(unmodelled)}, which "
            "rovo-reconcile does not model; apply keeps those attachments and the lockout "
            "guard counts them"
        )
    addresses = []
    for raw in attributes.rule.addresses:
        if canonical_span(raw) is not None:  # as apply writes it: its own normal form
            addresses.append(raw)
            continue
        try:
            addresses.append(normalize_address(raw))
        except NormalizeError:
            notes.append(
                f"allowlist {name!r}: live address {raw!r} is not IPv4 and is kept as it is"
            )
            addresses.append(raw)
    model = IpAllowlist(
        name=name,
        enabled=attributes.status == "enabled",
        apps=apps,
        allow_mobile_bypass=attributes.rule.allowMobileBypass,
        addresses=tuple(AddressEntry(address=a) for a in dict.fromkeys(addresses)),
    )
    detail = LiveAllowlist(
        id=parsed.id,
        name=name,
        resources=resources,
        partial_apps=partial,
        unmodelled=unmodelled,
    )
    return model, detail


async def _mcp(
    client: AdminClient,
    urls: Endpoints,
    notes: list[str],
    canonical: Collection[str] = (),
    mode: McpMode = "auto",
) -> tuple[McpSettings, dict[str, str], dict[str, tuple[str, ...]]] | None:
    if mode == "manual":  # --mcp manual: the endpoints are never called
        return None
    try:
        settings, domains = await asyncio.gather(
            client.get_json(urls.mcp_settings), _collect(client.pages("GET", urls.mcp_domains))
        )
    except ApiNotFound as e:
        if e.code == "ADMIN-404-2":  # the organization itself is unknown: not an MCP matter
            raise
        if mode == "api":
            raise McpUnavailable(
                f"org {urls.org_id}: the Rovo MCP settings API answered 404 ({e}), and --mcp "
                "api says it must be there; use --mcp auto (or manual) to manage this org's "
                "MCP settings by hand in Atlassian Administration"
            ) from e
        return None
    attributes = parse(
        McpSettingsAnswer, settings, f"GET {_path(urls.mcp_settings)}"
    ).data.attributes
    ids: dict[str, str] = {}
    extra: dict[str, tuple[str, ...]] = {}
    where = f"GET {_path(urls.mcp_domains)}"
    for number, item in enumerate(domains, 1):
        domain = parse(McpDomainItem, item, where, f"item {number}")
        raw = domain.attributes.pattern
        pattern = raw if raw in canonical else domain_pattern(raw, notes)
        if pattern in ids:
            extra[pattern] = (*extra.get(pattern, ()), domain.id)
        else:
            ids[pattern] = domain.id
    return (
        McpSettings(
            allow_atlassian_supported_domains=attributes.allowAtlassianSupportedDomains,
            domains=tuple(DomainEntry(pattern=p) for p in sorted(ids)),
            authentication=Authentication(api_token=attributes.authentication.apiToken),
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
