"""Semantic checks of one schema-valid policy document, and the canonical model it yields.

Each rule of DESIGN.md section 3 lives here, reported at the node it is about.
The checker normalises every domain and address once, on the way to building the
model, so there is exactly one notion of "the same value" for checks and plans.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.model import (
    APPS,
    SETTING_API_TOKEN,
    SETTING_SUPPORTED_DOMAINS,
    AddressEntry,
    App,
    Authentication,
    DomainEntry,
    Guards,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
    allowlist_key,
    domain_key,
    setting_key,
)
from rovo_reconcile.policy.normalize import (
    DomainPattern,
    address_network,
    address_span,
    domain_warnings,
    find_shadowing,
    non_public_span,
    parse_domain,
)
from rovo_reconcile.policy.problems import ERROR, WARNING, Mark, Problem, Severity
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

__all__ = ["EXPIRY_WARNING_DAYS", "MAX_ENTRIES_PER_APP", "Checked", "check_policy"]

MAX_ENTRIES_PER_APP = 500


@dataclass(frozen=True, slots=True)
class _Address:
    first: int
    last: int
    text: str
    """The canonical spelling, `a.b.c.d/n`."""
    path: DataPath
    expired: bool


@dataclass(frozen=True)
class Checked:
    policy: OrgPolicy | None
    """The canonical model, or None when a rule found an error."""
    problems: list[Problem]
    sources: dict[str, Mark]
    """Where each change key (see model.setting_key and friends) is defined."""


EXPIRY_WARNING_DAYS = 14


def check_policy(doc: SourceDocument, today: date) -> Checked:
    """Run every semantic rule as of `today`; the model is returned only when no rule found an error."""
    checker = _Checker(doc, today)
    policy = checker.run()
    failed = any(p.severity == ERROR for p in checker.problems)
    return Checked(None if failed else policy, checker.problems, checker.sources)


class _Checker:
    def __init__(self, doc: SourceDocument, today: date) -> None:
        self.doc = doc
        self.today = today
        self.problems: list[Problem] = []
        self.sources: dict[str, Mark] = {}

    def define(self, key: str, path: DataPath, *, at_key: bool = False) -> None:
        self.sources[key] = self.doc.mark(path, key=at_key)

    def report(
        self,
        path: DataPath,
        severity: Severity,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> None:
        """Record a problem at the node of `path` (or at its key, with key=True)."""
        mark = self.doc.mark(path, key=key)
        self.problems.append(Problem.at(self.doc.file, mark, severity, code, message, hint))

    def line(self, path: DataPath) -> int:
        return self.doc.mark(path).line

    def run(self) -> OrgPolicy:
        data: dict[str, Any] = self.doc.data
        mcp = self.mcp(data["mcp"]) if "mcp" in data else None
        allowlists = None
        addresses: list[list[_Address]] = []
        if "ipAllowlists" in data:
            allowlists, addresses = self.allowlists(data["ipAllowlists"])
            self.define("ip_allowlist", ("ipAllowlists",), at_key=True)
        guards = self.guards(data.get("guards", {}), allowlists, addresses)
        return OrgPolicy(
            org=Org(id=data["org"]["id"], name=data["org"].get("name")),
            mcp=mcp,
            ip_allowlists=allowlists,
            guards=guards,
        )

    # ------------------------------------------------------------------ mcp

    def mcp(self, raw: dict[str, Any]) -> McpSettings:
        domains = self.domains(raw["domains"]) if "domains" in raw else None
        if domains is not None:  # deletes point at the list that no longer names them
            self.define("mcp.domain", ("mcp", "domains"), at_key=True)
        auth = raw.get("authentication")
        api_token = auth.get("apiToken") if auth is not None else None
        allow_supported = raw.get("allowAtlassianSupportedDomains")
        if allow_supported is not None:
            self.define(
                setting_key(SETTING_SUPPORTED_DOMAINS), ("mcp", "allowAtlassianSupportedDomains")
            )
        if api_token is not None:
            self.define(setting_key(SETTING_API_TOKEN), ("mcp", "authentication", "apiToken"))
        if api_token is True and (allow_supported is False or domains):
            blocked = (
                "the blocked supported list" if allow_supported is False else "your domain list"
            )
            self.report(
                ("mcp", "authentication", "apiToken"),
                WARNING,
                "mcp.api-token-bypass",
                f"apiToken: true lets API-token clients past {blocked}: domain rules bind only OAuth 2.1 clients",
                "turn apiToken off unless a service account really needs it",
            )
        return McpSettings(
            allow_atlassian_supported_domains=allow_supported,
            domains=domains,
            authentication=Authentication(api_token=api_token) if auth is not None else None,
        )

    def domains(self, raw: list[Any]) -> tuple[DomainEntry, ...]:
        entries: list[DomainEntry] = []
        parsed: list[tuple[DomainPattern, DataPath]] = []
        seen: dict[str, DataPath] = {}
        for index, item in enumerate(raw):
            path: DataPath = ("mcp", "domains", index)
            text = item
            if isinstance(item, dict):
                path, text = (*path, "pattern"), item["pattern"]
            try:
                pattern = parse_domain(text)
            except NormalizeError as e:
                self.report(path, ERROR, e.code, e.message, e.hint)
                continue
            canonical = str(pattern)
            for note in domain_warnings(pattern):
                self.report(path, WARNING, note.code, note.message, note.hint)
            if canonical in seen:
                self.report(
                    path,
                    ERROR,
                    "domain.duplicate",
                    f"{canonical} is listed twice (first at line {self.line(seen[canonical])})",
                    "remove one of them",
                )
                continue
            seen[canonical] = path
            self.define(domain_key(canonical), path)
            parsed.append((pattern, path))
            entry = item if isinstance(item, dict) else {}
            self.expired(
                _date(entry.get("expires")), ("mcp", "domains", index, "expires"), canonical
            )
            # model_construct: every field is already checked (schema, then the rules above),
            # and validating tens of thousands of entries again costs more than the rest.
            entries.append(
                _built(
                    DomainEntry,
                    {
                        "pattern": canonical,
                        "note": entry.get("note"),
                        "expires": _date(entry.get("expires")),
                        "written": None if text == canonical else text,
                    },
                )
            )
        shadowing = find_shadowing([pattern for pattern, _ in parsed])
        for narrow_at, broad_at in shadowing.covered_by.items():
            (narrow, narrow_path), (broad, broad_path) = parsed[narrow_at], parsed[broad_at]
            self.report(
                narrow_path,
                WARNING,
                "domain.shadowed",
                f"{narrow} is already allowed by {broad} (line {self.line(broad_path)})",
                "remove the narrower pattern, or keep it only for its note",
            )
        if not shadowing.complete:
            self.report(
                ("mcp", "domains"),
                WARNING,
                "domain.shadowing-unchecked",
                f"too many overlapping wildcard patterns ({len(parsed)}) to check each against "
                "the others; some patterns already allowed by a broader one may not be reported",
                "merge patterns that share a host into fewer, broader ones",
                key=True,
            )
        return tuple(entries)

    # ------------------------------------------------------------------ ip allowlists

    def allowlists(
        self, raw: list[dict[str, Any]]
    ) -> tuple[tuple[IpAllowlist, ...], list[list[_Address]]]:
        lists: list[IpAllowlist] = []
        all_addresses: list[list[_Address]] = []
        names: dict[str, DataPath] = {}
        per_app: dict[str, int] = defaultdict(int)
        for index, item in enumerate(raw):
            base: DataPath = ("ipAllowlists", index)
            folded = item["name"].casefold()
            if folded in names:
                self.report(
                    (*base, "name"),
                    ERROR,
                    "allowlist.duplicate-name",
                    f"allowlist name {item['name']!r} is used twice (first at line "
                    f"{self.line(names[folded])}); names are the key that matches live allowlists",
                    "give each allowlist its own name",
                )
            names.setdefault(folded, (*base, "name"))
            self.define(allowlist_key(item["name"]), base)
            apps = self.apps(item["apps"], (*base, "apps"))
            addresses, entries = self.addresses(item["addresses"], (*base, "addresses"))
            if (
                item["enabled"]
                and item["addresses"]
                and addresses
                and all(a.expired for a in addresses)
            ):
                self.report(
                    (*base, "addresses"),
                    ERROR,
                    "allowlist.enabled-expired",
                    f"every address of enabled allowlist {item['name']!r} has expired: the plan would "
                    "leave it empty and lock everyone out of " + ", ".join(apps),
                    "renew an expiry date, add addresses, or set enabled: false",
                    key=True,
                )
            if item["enabled"] and not item["addresses"]:
                self.report(
                    (*base, "addresses"),
                    ERROR,
                    "allowlist.enabled-empty",
                    f"allowlist {item['name']!r} is enabled with no addresses: it would lock everyone "
                    "out of " + ", ".join(apps),
                    "add addresses, or set enabled: false",
                    key=True,
                )
            for app in apps:
                for address in addresses:
                    per_app[app] += 1
                    if per_app[app] == MAX_ENTRIES_PER_APP + 1:
                        self.report(
                            address.path,
                            ERROR,
                            "allowlist.app-limit",
                            f"more than {MAX_ENTRIES_PER_APP} entries over the allowlists covering "
                            f"{app}; Atlassian accepts at most {MAX_ENTRIES_PER_APP} per app",
                            "merge addresses into wider CIDR blocks",
                        )
            all_addresses.append(addresses)
            lists.append(
                IpAllowlist(
                    name=item["name"],
                    enabled=item["enabled"],
                    apps=apps,
                    allow_mobile_bypass=item.get("allowMobileBypass", False),
                    addresses=entries,
                )
            )
        return tuple(lists), all_addresses

    def apps(self, raw: list[App], path: DataPath) -> tuple[App, ...]:
        for index, app in enumerate(raw):
            if app in raw[:index]:
                self.report(
                    (*path, index), WARNING, "allowlist.duplicate-app", f"{app} is listed twice"
                )
        return tuple(app for app in APPS if app in raw)

    def addresses(
        self, raw: list[Any], path: DataPath
    ) -> tuple[list[_Address], tuple[AddressEntry, ...]]:
        found: list[_Address] = []
        entries: list[AddressEntry] = []
        seen: dict[tuple[int, int], DataPath] = {}
        for index, item in enumerate(raw):
            item_path: DataPath = (*path, index)
            text = item
            if isinstance(item, dict):
                item_path, text = (*item_path, "address"), item["address"]
            try:
                first, last, net = address_span(text)
            except NormalizeError as e:
                self.report(item_path, ERROR, e.code, e.message, e.hint)
                continue
            if (first, last) in seen:
                self.report(
                    item_path,
                    ERROR,
                    "address.duplicate",
                    f"{net} is listed twice in this allowlist (first at line {self.line(seen[first, last])})",
                    "remove one of them",
                )
                continue
            seen[first, last] = item_path
            if (label := non_public_span(first, last)) is not None:
                self.report(
                    item_path,
                    WARNING,
                    "address.non-public",
                    f"{net} is {label}; Atlassian sees only public source addresses",
                    "list your public egress address instead",
                )
            entry = item if isinstance(item, dict) else {}
            expires = _date(entry.get("expires"))
            found.append(
                _Address(
                    first,
                    last,
                    net,
                    item_path,
                    self.expired(expires, (*path, index, "expires"), net),
                )
            )
            entries.append(  # already checked, as for domains
                _built(
                    AddressEntry, {"address": net, "note": entry.get("note"), "expires": expires}
                )
            )
        self.overlaps(found)
        return found, tuple(entries)

    def overlaps(self, addresses: list[_Address]) -> None:
        """Warn on entries inside or across another entry of the same list (a sort and a sweep)."""
        ordered = sorted(addresses, key=lambda a: (a.first, a.first - a.last))
        widest: _Address | None = None
        for current in ordered:
            if widest is not None and current.first <= widest.last:
                inside = current.last <= widest.last
                self.report(
                    current.path,
                    WARNING,
                    "address.overlap",
                    f"{current.text} {'is inside' if inside else 'overlaps'} {widest.text} "
                    f"(line {self.line(widest.path)})",
                    "remove the narrower entry" if inside else "merge the two into one block",
                )
                if inside:
                    continue
            if widest is None or current.last > widest.last:
                widest = current

    def expired(self, expires: date | None, path: DataPath, what: str) -> bool:
        """Warn about an entry that has expired or will within two weeks; True if expired."""
        if expires is None:
            return False
        days = (expires - self.today).days
        if days < 0:
            self.report(
                path,
                WARNING,
                "expiry.passed",
                f"{what} expired on {expires}: plans treat it as absent and remove it from live",
                "delete the entry, or move its expiry date",
            )
            return True
        if days <= EXPIRY_WARNING_DAYS:
            self.report(
                path,
                WARNING,
                "expiry.soon",
                f"{what} expires on {expires} (in {days} day{'' if days == 1 else 's'}); after that "
                "plans remove it",
                "renew it by moving the date, or let it lapse",
            )
        return False

    # ------------------------------------------------------------------ guards

    def guards(
        self,
        raw: dict[str, Any],
        allowlists: tuple[IpAllowlist, ...] | None,
        addresses: list[list[_Address]],
    ) -> Guards:
        must: list[tuple[ipaddress.IPv4Network, DataPath]] = []
        for index, text in enumerate(raw.get("mustAllow", [])):
            try:
                must.append((address_network(text), ("guards", "mustAllow", index)))
            except NormalizeError as e:
                self.report(("guards", "mustAllow", index), ERROR, e.code, e.message, e.hint)
        if allowlists is not None:
            self.lockout(must, allowlists, addresses)
        return Guards(
            must_allow=tuple(str(net) for net, _ in must),
            max_delete_percent=raw.get("maxDeletePercent", Guards().max_delete_percent),
        )

    def lockout(
        self,
        must: list[tuple[ipaddress.IPv4Network, DataPath]],
        allowlists: tuple[IpAllowlist, ...],
        addresses: list[list[_Address]],
    ) -> None:
        """An app with enabled allowlists admits a request if any of them does."""
        for net, path in must:
            locked_out: list[str] = []
            for app in APPS:
                covering = [
                    (a.first, a.last)
                    for allowlist, nets in zip(allowlists, addresses, strict=True)
                    if allowlist.enabled and app in allowlist.apps
                    for a in nets
                    if not a.expired
                ]
                if covering and not _covered(net, covering):
                    locked_out.append(app)
            if locked_out:
                apps = ", ".join(locked_out)
                self.report(
                    path,
                    ERROR,
                    "guard.lockout",
                    f"mustAllow address {net} is not admitted by any enabled allowlist covering {apps}",
                    f"add {net} to an enabled allowlist that covers {apps}",
                )


def _covered(net: ipaddress.IPv4Network, covering: list[tuple[int, int]]) -> bool:
    """Whether `net` lies inside the union of `covering`.

    The same answer as "a subnet of one of `collapse_addresses(covering)`": that union's
    largest aligned blocks, one of which holds any aligned block inside it. Merging the
    sorted ranges is cheaper than building the collapsed networks.
    """
    low = int(net.network_address)
    high = low | int(net.hostmask)
    ranges = sorted(covering)
    start, end = ranges[0]
    for first, last in ranges[1:]:
        if first > end + 1:
            if start <= low and high <= end:
                return True
            start, end = first, last
        else:
            end = max(end, last)
    return start <= low and high <= end


_E = TypeVar("_E", DomainEntry, AddressEntry)
_set_attribute = object.__setattr__


def _built(cls: type[_E], values: dict[str, Any]) -> _E:
    """`cls.model_construct(**values)` when `values` gives every field, in declaration order:
    the same object (tests/test_rules_fast_paths.py), without model_construct's per-field
    alias and default lookups, which cost more than the rest over 63,000 entries."""
    built = cls.__new__(cls)
    _set_attribute(built, "__dict__", values)
    _set_attribute(built, "__pydantic_fields_set__", set(values))
    _set_attribute(built, "__pydantic_extra__", None)
    _set_attribute(built, "__pydantic_private__", None)
    return built


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None
