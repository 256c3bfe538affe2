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

from rovo_reconcile.access import catalogue as _catalogue
from rovo_reconcile.access.match import admits
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
from rovo_reconcile.policy.ranges import minus, ranges, within
from rovo_reconcile.policy.salvage import SKIPPED
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

__all__ = [
    "AI_TOOL_APPS",
    "EXPIRY_WARNING_DAYS",
    "MAX_ENTRIES_PER_APP",
    "Checked",
    "check_policy",
]

MAX_ENTRIES_PER_APP = 500
AI_TOOL_APPS: tuple[App, ...] = ("jira", "confluence", "compass", "rovo")
"""The apps the Rovo MCP server reaches for AI tools (the reference page names these four)."""


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


def check_policy(doc: SourceDocument, today: date, *, salvaged: bool = False) -> Checked:
    """Run every semantic rule as of `today`; the model is returned only when no rule found an error.

    A `salvaged` document (policy/salvage.py) had parts the schema refused cut out: its items
    marked SKIPPED are passed over, checks of the whole are not made, and no model comes back.
    A layer (a Baseline, or a file that extends one) is not the whole either: the checks of
    the whole are made on the merged policy (policy/layering.py).
    """
    checker = _Checker(doc, today, salvaged)
    policy = checker.run()
    failed = salvaged or any(p.severity == ERROR for p in checker.problems)
    return Checked(None if failed else policy, checker.problems, checker.sources)


class _Checker:
    def __init__(self, doc: SourceDocument, today: date, salvaged: bool = False) -> None:
        self.doc = doc
        self.today = today
        self.salvaged = salvaged
        data = doc.data if isinstance(doc.data, dict) else {}
        self.whole = not salvaged and data.get("kind") != "Baseline" and "extends" not in data
        """Whether this document is all there is: the lockout guard and the checks of an
        allowlist's addresses taken together are made only then."""
        self.problems: list[Problem] = []
        self.sources: dict[str, Mark] = {}
        self.allowed_domains: list[tuple[DomainPattern, DataPath]] = []
        """The policy's own domains that have not expired, for the AI-tool egress lint."""

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
            if "mcp" in data and self.whole:  # a layer's lists are not all there is
                self.ai_tool_egress(data["mcp"], allowlists, addresses)
        guards = self.guards(data.get("guards", {}), allowlists, addresses)
        org = data.get("org") or {}  # a Baseline has none
        return OrgPolicy(
            org=Org(id=org.get("id", ""), name=org.get("name")),
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
                f"apiToken: true may let API-token clients past {blocked}: Atlassian's page "
                "says domains can be blocked only for OAuth 2.1 clients, not API-token ones, but "
                'also that a tool must use an allowed domain "whether it connects via OAuth 2.1 '
                'or API token"; rovo-reconcile assumes the first, wider reading',
                "turn apiToken off unless a service account really needs it",
            )
        return McpSettings(
            allow_atlassian_supported_domains=allow_supported,
            domains=domains,
            authentication=Authentication(api_token=api_token) if auth is not None else None,
            ownership=raw.get("ownership"),
        )

    def domains(self, raw: list[Any]) -> tuple[DomainEntry, ...]:
        entries: list[DomainEntry] = []
        parsed: list[tuple[DomainPattern, DataPath]] = []
        seen: dict[str, DataPath] = {}
        for index, item in enumerate(raw):
            if item is SKIPPED:
                continue
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
            if not self.expired(
                _date(entry.get("expires")), ("mcp", "domains", index, "expires"), canonical
            ):
                self.allowed_domains.append((pattern, path))
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

    def allowlists(self, raw: list[Any]) -> tuple[tuple[IpAllowlist, ...], list[list[_Address]]]:
        lists: list[IpAllowlist] = []
        all_addresses: list[list[_Address]] = []
        names: dict[str, DataPath] = {}
        per_app: dict[str, int] = defaultdict(int)
        for index, item in enumerate(raw):
            if item is SKIPPED:
                continue
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
                and self.whole  # a cut-out or inherited address may be one not expired
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
            if item["enabled"] and self.whole and not item["addresses"]:
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
                    ownership=item.get("ownership"),
                )
            )
        return tuple(lists), all_addresses

    def apps(self, raw: list[Any], path: DataPath) -> tuple[App, ...]:
        for index, app in enumerate(raw):
            if app is not SKIPPED and app in raw[:index]:
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
            if item is SKIPPED:
                continue
            item_path: DataPath = (*path, index)
            texts = [item]
            tool: str | None = None
            if isinstance(item, dict) and "tool" in item:
                item_path = (*item_path, "tool")
                tool, texts = self.tool_addresses(item["tool"], item_path)
            elif isinstance(item, dict):
                item_path, texts = (*item_path, "address"), [item["address"]]
            entry = item if isinstance(item, dict) else {}
            expires = _date(entry.get("expires"))
            expired: bool | None = None  # judged once per entry, when its first value is valid
            for text in texts:
                try:
                    first, last, net = address_span(text)
                except NormalizeError as e:
                    self.report(item_path, ERROR, e.code, e.message, e.hint)
                    continue
                origin = f" (from tool: {tool})" if tool is not None else ""
                if (first, last) in seen:
                    self.report(
                        item_path,
                        ERROR,
                        "address.duplicate",
                        f"{net}{origin} is listed twice in this allowlist (first at line "
                        f"{self.line(seen[first, last])})",
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
                if expired is None:
                    what = net if tool is None else f"tool: {tool} ({', '.join(texts)})"
                    expired = self.expired(expires, (*path, index, "expires"), what)
                found.append(_Address(first, last, net, item_path, expired))
                entries.append(  # already checked, as for domains
                    _built(
                        AddressEntry,
                        {
                            "address": net,
                            "note": entry.get("note"),
                            "expires": expires,
                            "tool": tool,
                        },
                    )
                )
        self.overlaps(found)
        return found, tuple(entries)

    def tool_addresses(self, name: str, path: DataPath) -> tuple[str | None, list[str]]:
        """`- tool: NAME`: the catalogue's published egress ranges of that AI tool."""
        known = _catalogue.catalogue()
        tool = known.get(name)
        if tool is None:
            self.report(
                path,
                ERROR,
                "address.unknown-tool",
                f"{name!r} is not an AI tool of the catalogue",
                known.suggest(name),
            )
            return None, []
        if not tool.egress:
            self.report(
                path,
                ERROR,
                "address.tool-no-ranges",
                f"the catalogue holds no verified egress ranges for {tool.label}"
                + (
                    f": {tool.vendor} publishes them at {tool.egress_fact.source}, which the "
                    "catalogue has not verified"
                    if tool.egress_fact.source
                    else ""
                ),
                "list the tool's addresses yourself, or refresh the catalogue "
                "(scripts/refresh_catalogue.py)",
            )
            return None, []
        return tool.name, list(tool.egress)

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

    # ------------------------------------------------------------------ AI-tool egress

    def ai_tool_egress(
        self,
        mcp: dict[str, Any],
        allowlists: tuple[IpAllowlist, ...],
        addresses: list[list[_Address]],
    ) -> None:
        """Warn when a catalogue AI tool may sign in (the supported list, or one of the
        policy's domains) but the enabled allowlists of an app it calls admit none, or only
        part, of the egress ranges its vendor publishes: its calls come from there, not from
        the user's network, so Atlassian blocks them (the reference page's last note)."""
        known = _catalogue.catalogue()
        allowed = [(tool, why) for tool in known.tools if (why := self.allowed_in(tool, mcp))]
        unchecked = [tool.label for tool, _ in allowed if not tool.egress]
        for tool, why in allowed:
            if not tool.egress:
                continue
            egress = ranges(tool.egress)
            # Only addresses that touch the egress ranges can admit them (as guards._near).
            near = [
                [
                    a.text
                    for a in nets
                    if not a.expired and any(a.first <= b and f <= a.last for f, b in egress)
                ]
                for nets in addresses
            ]
            blocked: dict[App, bool] = {}  # app -> admitted in part
            for app in AI_TOOL_APPS:
                covering = [
                    index
                    for index, allowlist in enumerate(allowlists)
                    if allowlist.enabled and app in allowlist.apps
                ]
                if not covering:
                    continue  # no enabled allowlist: no IP restriction on this app
                admitted = ranges(text for index in covering for text in near[index])
                if not within(egress, admitted):
                    blocked[app] = minus(egress, admitted) != egress
            if blocked:
                self.report_blocked(tool, why, blocked, allowlists, unchecked)

    def allowed_in(self, tool: _catalogue.Tool, mcp: dict[str, Any]) -> str | None:
        """Why `tool` may sign in under this policy's domain rules, or None."""
        if mcp.get("allowAtlassianSupportedDomains") is True and tool.atlassian_supported:
            line = self.line(("mcp", "allowAtlassianSupportedDomains"))
            return f"the Atlassian-supported list is allowed at line {line}"
        for pattern, path in self.allowed_domains:
            for uri in tool.redirect_uris:
                if admits(pattern, parse_domain(uri)):
                    return f"{pattern} (line {self.line(path)}) admits its redirect URI {uri}"
        return None

    def report_blocked(
        self,
        tool: _catalogue.Tool,
        why: str,
        blocked: dict[App, bool],
        allowlists: tuple[IpAllowlist, ...],
        unchecked: list[str],
    ) -> None:
        apps = ", ".join(blocked)
        part = all(blocked.values())
        fix = _covering_lists(list(blocked), allowlists)
        where = next(i for i, a in enumerate(allowlists) if a.name == fix[0][0])
        targets = " and ".join(repr(name) for name, _ in fix)
        others = "".join(
            f" ({label} may sign in too; the catalogue holds no verified egress ranges for "
            "it, so it was not checked.)"
            for label in unchecked
        )
        self.report(
            ("ipAllowlists", where, "name"),
            WARNING,
            "access.ai-tool-egress",
            f"{tool.label} may sign in ({why}), but the enabled allowlists of {apps} admit "
            f"{'only part' if part else 'none'} of its egress range {', '.join(tool.egress)}: "
            f"it calls from {tool.vendor}'s cloud, not from your network, so its MCP calls to "
            f"{apps} will be blocked.{others}",
            f"add `- tool: {tool.name}` to allowlist {targets}, or stop allowing the tool in. "
            "IP allowlists apply to OAuth 2.1 and API-token calls alike; only for domains is "
            "Atlassian's page ambiguous: it says domains can be blocked only for OAuth 2.1 "
            'clients, and that a tool must use an allowed domain "whether it connects via '
            'OAuth 2.1 or API token"',
        )

    # ------------------------------------------------------------------ guards

    def guards(
        self,
        raw: dict[str, Any],
        allowlists: tuple[IpAllowlist, ...] | None,
        addresses: list[list[_Address]],
    ) -> Guards:
        must: list[tuple[ipaddress.IPv4Network, DataPath]] = []
        for index, text in enumerate(raw.get("mustAllow", [])):
            if text is SKIPPED:
                continue
            try:
                must.append((address_network(text), ("guards", "mustAllow", index)))
            except NormalizeError as e:
                self.report(("guards", "mustAllow", index), ERROR, e.code, e.message, e.hint)
        if allowlists is not None and self.whole:  # a cut-out or inherited part may admit it
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


def _covering_lists(
    apps: list[App], allowlists: tuple[IpAllowlist, ...]
) -> list[tuple[str, list[App]]]:
    """Enabled allowlists that together cover `apps`, the widest first: where a `- tool:`
    entry would admit the tool on all of them."""
    left = list(apps)
    chosen: list[tuple[str, list[App]]] = []
    enabled = [a for a in allowlists if a.enabled]
    while left:
        best = max(enabled, key=lambda a: sum(app in a.apps for app in left))
        covered = [app for app in left if app in best.apps]
        chosen.append((best.name, covered))
        left = [app for app in left if app not in covered]
    return chosen


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
