"""One organization's two controls as `answer` reads them, each value with where it is decided.

From a policy file, every setting, domain, allowlist and address carries its `file:line`
(an address expanded from `- tool: NAME` carries the line of that entry); entries whose
`expires` date has passed count as absent, as they do in a plan. From the live org, the
place is the live object itself. `None` on a section means it is not known: not managed by
the policy, or not readable on the live org (the Rovo MCP settings on a real org today).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rovo_reconcile.access import catalogue as _catalogue
from rovo_reconcile.policy.model import OrgPolicy
from rovo_reconcile.policy.normalize import DomainPattern, normalize_address, parse_domain
from rovo_reconcile.policy.ranges import span
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

__all__ = ["AddressRule", "DomainRule", "ListRule", "OrgView", "file_view", "live_view"]


@dataclass(frozen=True)
class DomainRule:
    pattern: DomainPattern
    where: str


@dataclass(frozen=True)
class AddressRule:
    address: str
    """Canonical `a.b.c.d/n`, or a live value that is not one (it admits nothing)."""
    where: str
    tool: str | None = None
    """The catalogue tool this address was expanded from (`- tool: NAME`)."""
    expired: date | None = None
    """When an expired entry stopped counting (it is kept only to explain a refusal)."""

    @property
    def shown(self) -> str:
        return f"{self.address} (tool: {self.tool})" if self.tool else self.address


@dataclass(frozen=True)
class ListRule:
    name: str
    enabled: bool
    apps: frozenset[str]
    addresses: tuple[AddressRule, ...]
    where: str


@dataclass(frozen=True)
class OrgView:
    org_id: str
    origin: str
    """What the answer is about: `policy FILE` or `live org on TARGET`."""
    supported: bool | None
    supported_where: str
    domains: tuple[DomainRule, ...] | None
    domains_where: str
    api_token: bool | None
    api_token_where: str
    allowlists: tuple[ListRule, ...] | None
    allowlists_where: str
    unknown_mcp: str
    """Why an unknown MCP setting is unknown."""
    unknown_allowlists: str


def file_view(doc: SourceDocument, policy: OrgPolicy, today: date) -> OrgView:
    """The controls a valid policy file sets, as of `today`, located in `doc`."""
    data: dict[str, Any] = doc.data

    def at(path: DataPath, *, key: bool = False) -> str:
        """`file:line` of the node at `path`; empty when the policy does not write it."""
        if path not in doc.values:
            return ""
        return f"{doc.file}:{doc.mark(path, key=key).line}"

    mcp = policy.mcp
    raw_mcp: dict[str, Any] = data.get("mcp", {})
    domains: tuple[DomainRule, ...] | None = None
    if "domains" in raw_mcp:
        found = []
        for index, item in enumerate(raw_mcp["domains"]):
            path: DataPath = ("mcp", "domains", index)
            text = item["pattern"] if isinstance(item, dict) else item
            expires = item.get("expires") if isinstance(item, dict) else None
            if expires is not None and date.fromisoformat(expires) < today:
                continue
            found.append(DomainRule(parse_domain(text), at(path)))
        domains = tuple(found)
    allowlists: tuple[ListRule, ...] | None = None
    if "ipAllowlists" in data and policy.ip_allowlists is not None:
        allowlists = tuple(
            ListRule(
                model.name,
                model.enabled,
                frozenset(model.apps),
                tuple(_file_addresses(raw["addresses"], ("ipAllowlists", index), at, today)),
                at(("ipAllowlists", index, "name")),
            )
            for index, (raw, model) in enumerate(
                zip(data["ipAllowlists"], policy.ip_allowlists, strict=True)
            )
        )
    api_token = mcp.authentication.api_token if mcp and mcp.authentication else None
    return OrgView(
        org_id=policy.org.id,
        origin=f"policy {doc.file}",
        supported=mcp.allow_atlassian_supported_domains if mcp else None,
        supported_where=at(("mcp", "allowAtlassianSupportedDomains")),
        domains=domains,
        domains_where=at(("mcp", "domains"), key=True),
        api_token=api_token,
        api_token_where=at(("mcp", "authentication", "apiToken")),
        allowlists=allowlists,
        allowlists_where=at(("ipAllowlists",), key=True),
        unknown_mcp=f"the policy {doc.file} does not manage it",
        unknown_allowlists=f"the policy {doc.file} does not manage IP allowlists",
    )


def _file_addresses(raw: list[Any], base: DataPath, at: Any, today: date) -> list[AddressRule]:
    out: list[AddressRule] = []
    for index, item in enumerate(raw):
        entry = item if isinstance(item, dict) else {}
        expires = date.fromisoformat(entry["expires"]) if "expires" in entry else None
        gone = expires if expires is not None and expires < today else None
        path: DataPath = (*base, "addresses", index)
        if "tool" in entry:
            tool = _catalogue.catalogue().get(entry["tool"])
            assert tool is not None  # a valid policy names only catalogue tools
            where = at((*path, "tool"))
            out.extend(AddressRule(cidr, where, tool.name, gone) for cidr in tool.egress)
            continue
        text = entry["address"] if entry else item
        out.append(AddressRule(normalize_address(text), at(path), None, gone))
    return out


def live_view(
    org_id: str,
    state: OrgPolicy,
    target: str,
    *,
    mcp_readable: bool = True,
    kept_apps: dict[str, tuple[str, ...]] | None = None,
) -> OrgView:
    """The controls of a live org as read; `kept_apps` as in `plan.admitted` (apps a list
    stays attached to beyond what its value says: it counts as covering them)."""
    here = f"live org {org_id} on {target}"
    mcp = state.mcp
    domains = None
    if mcp is not None and mcp.domains is not None:
        domains = tuple(
            DomainRule(parse_domain(d.pattern), f"{here}: domain {d.pattern}") for d in mcp.domains
        )
    kept = kept_apps or {}
    allowlists = None
    if state.ip_allowlists is not None:
        allowlists = tuple(
            ListRule(
                a.name,
                a.enabled,
                frozenset({*a.apps, *kept.get(a.name, ())}),
                tuple(
                    AddressRule(e.address, f"{here}: allowlist {a.name!r}")
                    for e in a.addresses
                    if span(e.address) is not None
                ),
                f"{here}: allowlist {a.name!r}",
            )
            for a in state.ip_allowlists
        )
    unreadable = (
        "the org's Rovo MCP settings are not readable through any API (the endpoints answer "
        "404); check them in Atlassian Administration > Apps > AI settings > Rovo MCP server"
    )
    return OrgView(
        org_id=org_id,
        origin=here,
        supported=mcp.allow_atlassian_supported_domains if mcp else None,
        supported_where=f"{here}: settings",
        domains=domains,
        domains_where=f"{here}: domains",
        api_token=mcp.authentication.api_token if mcp and mcp.authentication else None,
        api_token_where=f"{here}: settings",
        allowlists=allowlists,
        allowlists_where=f"{here}: IP allowlists",
        unknown_mcp=unreadable if not mcp_readable else f"{here} did not report it",
        unknown_allowlists=f"{here}: the IP allowlists could not be read",
    )
