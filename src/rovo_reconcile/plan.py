"""The planner: pure keyed set algebra over canonical values. No I/O, no clock.

`make_plan(desired, live)` compares two `OrgPolicy` values of the same types:
domains by canonical pattern, allowlists by name, addresses by canonical CIDR.
A section or setting that is None in `desired` is not managed and yields no
change. Changes are immutable values in one deterministic order, so the same
inputs give byte-identical JSON.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from rovo_reconcile.mcp_state import McpState
from rovo_reconcile.policy.model import (
    APPS,
    SETTING_API_TOKEN,
    SETTING_SUPPORTED_DOMAINS,
    AddressEntry,
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
from rovo_reconcile.policy.ranges import Ranges, minus, ranges, sweep, within

__all__ = [
    "Action",
    "Change",
    "Effect",
    "OrgPlan",
    "Plan",
    "Refusal",
    "Resource",
    "Unmanaged",
    "admitted",
    "allowlist_effect",
    "allowlist_value",
    "annotate",
    "effective_policy",
    "fingerprint",
    "make_plan",
    "policy_from_state",
    "state_value",
]

Action = Literal["create", "update", "delete"]
Resource = Literal["mcp.settings", "mcp.domain", "ip_allowlist"]
Effect = Literal["widens", "narrows", "neutral"]

_RESOURCE_ORDER: dict[str, int] = {"mcp.settings": 0, "mcp.domain": 1, "ip_allowlist": 2}
_ACTION_ORDER: dict[str, int] = {"create": 0, "update": 1, "delete": 2}


@dataclass(frozen=True)
class Change:
    action: Action
    resource: Resource
    key: str
    before: Any
    after: Any
    effect: Effect
    source: str | None = None
    """`file:line` of the desired value, when there is one."""
    notes: tuple[str, ...] = ()
    """The policy's `note:` and `expires:` of the entries this change adds, for reviewers."""
    written: str | None = None
    """For an MCP domain to add: the pattern as the policy file spells it, when that is not
    the canonical `after` that apply sends; the manual step shows it, as an admin types it."""

    def sort_key(self) -> tuple[int, str, int]:
        return (_RESOURCE_ORDER[self.resource], self.key, _ACTION_ORDER[self.action])

    def what(self) -> dict[str, Any]:
        """What the change writes: no source line or notes, which a moved file or a reworded
        note may change harmlessly. Digests and plan comparisons use this."""
        return {
            "action": self.action,
            "resource": self.resource,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "effect": self.effect,
        }

    def to_json(self) -> dict[str, Any]:
        spelling = {"written": self.written} if self.written is not None else {}
        return {**self.what(), "source": self.source, "notes": list(self.notes), **spelling}


@dataclass(frozen=True)
class Unmanaged:
    """A live entry of an additive list that the policy does not list: left alone, reported."""

    key: str
    """The change key of the list: `mcp.domain:<pattern>` or `ip_allowlist:<name>`."""
    value: str
    """The pattern or address."""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class Refusal:
    """A safety guard's no: apply refuses the org unless `forceable` and `--force`."""

    message: str
    forceable: bool

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "forceable": self.forceable}


@dataclass(frozen=True)
class OrgPlan:
    org_id: str
    live_fingerprint: str
    changes: tuple[Change, ...]
    file: str | None = None
    guards: Guards = field(default_factory=Guards)
    notes: tuple[str, ...] = ()
    desired: dict[str, Any] | None = field(default=None, compare=False)
    """`state_value` of the desired policy: lets `apply --plan` re-plan and verify convergence."""
    error: str | None = None
    """Why this org could not be planned (its live state could not be read)."""
    org_name: str | None = None
    """The policy's informational `org.name`, shown beside the id."""
    refusals: tuple[Refusal, ...] = ()
    """What the safety guards say about applying these changes to the live state planned from."""
    unmanaged: tuple[Unmanaged, ...] = ()
    """Live entries of additive lists that the policy does not list (never deleted)."""
    mcp: McpState | None = None
    """What could be checked of the org's MCP settings (`mcp_state`); None when the org could
    not be read, or for a plan file written before this was recorded."""

    @property
    def empty(self) -> bool:
        """Nothing to do through the API: no change and no error (manual MCP steps aside)."""
        return not self.changes and self.error is None

    @property
    def manual_steps(self) -> tuple[str, ...]:
        """MCP settings to set by hand, pending because nothing could read them."""
        return self.mcp.manual_steps if self.mcp is not None and self.mcp.pending else ()

    @property
    def title(self) -> str:
        """`Acme Corp (6b1f...)`, or the id alone when the policy names no org."""
        return f"{self.org_name} ({self.org_id})" if self.org_name else self.org_id

    def summary(self) -> dict[str, int]:
        """Changes counted by action and by effect."""
        counts = dict.fromkeys(("create", "update", "delete", "widens", "narrows", "neutral"), 0)
        for change in self.changes:
            counts[change.action] += 1
            counts[change.effect] += 1
        return counts


@dataclass(frozen=True)
class Plan:
    target: str
    desired_hash: str
    orgs: tuple[OrgPlan, ...]

    @property
    def empty(self) -> bool:
        return all(org.empty for org in self.orgs)

    @property
    def changes_digest(self) -> str:
        """A hash of what every org's changes write, independent of live fingerprints, sources
        and notes: equal digests mean the same writes (`apply --reviewed`)."""
        return fingerprint(
            [
                {"org": org.org_id, "changes": [c.what() for c in org.changes]}
                for org in sorted(self.orgs, key=lambda o: o.org_id)
                if org.changes
            ]
        )

    @property
    def manual(self) -> tuple[int, int]:
        """(manual MCP steps pending, orgs they are in)."""
        steps = [len(org.manual_steps) for org in self.orgs if org.manual_steps]
        return sum(steps), len(steps)

    def summary(self) -> dict[str, int]:
        """Changes of every org counted by action and by effect."""
        counts = dict.fromkeys(("create", "update", "delete", "widens", "narrows", "neutral"), 0)
        for org in self.orgs:
            for name, count in org.summary().items():
                counts[name] += count
        return counts


# ------------------------------------------------------------------ canonical values


def allowlist_value(allowlist: IpAllowlist) -> dict[str, Any]:
    """What an allowlist is, as compared and shown: notes and expiries are not live state."""
    return {
        "name": allowlist.name,
        "enabled": allowlist.enabled,
        "apps": list(allowlist.apps),
        "allowMobileBypass": allowlist.allow_mobile_bypass,
        "addresses": sorted({a.address for a in allowlist.addresses}, key=_address_order),
    }


@lru_cache(maxsize=1 << 13)
def _address_order(address: str) -> tuple[int, ...]:
    host, _, prefix = address.partition("/")
    try:
        return (*(int(part) for part in host.split(".")), int(prefix or 32))
    except ValueError:  # a live value we could not normalise sorts last, stably
        return (256,)


def state_value(policy: OrgPolicy) -> dict[str, Any]:
    """The managed state as canonical JSON-able data (what fingerprints hash)."""
    value: dict[str, Any] = {"org": policy.org.id}
    if policy.mcp is not None:
        mcp = policy.mcp
        value["mcp"] = {
            "allowAtlassianSupportedDomains": mcp.allow_atlassian_supported_domains,
            "apiToken": mcp.authentication.api_token if mcp.authentication else None,
            "domains": sorted({d.pattern for d in mcp.domains})
            if mcp.domains is not None
            else None,
        }
        if mcp.ownership == "additive":
            value["mcp"]["ownership"] = "additive"
    if policy.ip_allowlists is not None:
        value["ipAllowlists"] = sorted(
            (allowlist_value(a) for a in policy.ip_allowlists), key=lambda a: str(a["name"])
        )
        if additive := sorted(a.name for a in policy.ip_allowlists if a.ownership == "additive"):
            value["additiveAllowlists"] = additive
    return value


def policy_from_state(value: Mapping[str, Any], guards: Guards | None = None) -> OrgPolicy:
    """The inverse of `state_value` (notes and expiries are not part of it)."""
    mcp = value.get("mcp")
    lists = value.get("ipAllowlists")
    additive = set(value.get("additiveAllowlists", ()))
    return OrgPolicy(
        org=Org(id=value["org"]),
        mcp=None
        if mcp is None
        else McpSettings(
            allow_atlassian_supported_domains=mcp["allowAtlassianSupportedDomains"],
            authentication=Authentication(api_token=mcp["apiToken"]),
            domains=None
            if mcp["domains"] is None
            else tuple(DomainEntry(pattern=d) for d in mcp["domains"]),
            ownership=mcp.get("ownership"),
        ),
        ip_allowlists=None
        if lists is None
        else tuple(
            IpAllowlist(
                name=a["name"],
                enabled=a["enabled"],
                apps=tuple(a["apps"]),
                allow_mobile_bypass=a["allowMobileBypass"],
                addresses=tuple(AddressEntry(address=x) for x in a["addresses"]),
                ownership="additive" if a["name"] in additive else None,
            )
            for a in lists
        ),
        guards=guards or Guards(),
    )


def fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def effective_policy(policy: OrgPolicy, today: date) -> OrgPolicy:
    """The policy as of `today`: entries whose `expires` date has passed count as absent."""

    def live_on(expires: date | None) -> bool:
        return expires is None or today <= expires

    mcp = policy.mcp
    if mcp is not None and mcp.domains is not None:
        mcp = mcp.model_copy(
            update={"domains": tuple(d for d in mcp.domains if live_on(d.expires))}
        )
    allowlists = policy.ip_allowlists
    if allowlists is not None:
        allowlists = tuple(
            a.model_copy(update={"addresses": tuple(e for e in a.addresses if live_on(e.expires))})
            for a in allowlists
        )
    return policy.model_copy(update={"mcp": mcp, "ip_allowlists": allowlists})


def annotate(plan: OrgPlan, policy: OrgPolicy) -> OrgPlan:
    """`plan` with each change carrying the `note:`/`expires:` of the policy entries it adds,
    and a domain to add its pattern as the policy spells it."""
    said: dict[tuple[str, str], str] = {}  # (change key, entry value) -> what the policy says
    spelt: dict[str, str] = {}  # change key -> the pattern as written, where not canonical
    for domain in policy.mcp.domains or () if policy.mcp is not None else ():
        _say(said, domain_key(domain.pattern), domain.pattern, domain)
        if domain.written is not None:
            spelt[domain_key(domain.pattern)] = domain.written
    for allowlist in policy.ip_allowlists or ():
        for entry in allowlist.addresses:
            _say(said, allowlist_key(allowlist.name), entry.address, entry)

    def added(change: Change) -> list[str]:
        if change.resource == "mcp.domain":
            return [change.after] if change.action == "create" else []
        if change.resource != "ip_allowlist" or change.after is None:
            return []
        old = set((change.before or {}).get("addresses", ()))
        return [a for a in change.after["addresses"] if a not in old]

    changes = []
    for change in plan.changes:
        notes = tuple(
            f"{value}: {said[change.key, value]}"
            for value in added(change)
            if (change.key, value) in said
        )
        written = spelt.get(change.key) if change.action == "create" else None
        if notes or written is not None:
            change = replace(change, notes=notes or change.notes, written=written)
        changes.append(change)
    return replace(plan, changes=tuple(changes))


def _say(
    said: dict[tuple[str, str], str], key: str, value: str, entry: DomainEntry | AddressEntry
) -> None:
    parts = [entry.note] if entry.note else []
    if isinstance(entry, AddressEntry) and entry.tool is not None:
        from rovo_reconcile.access.catalogue import catalogue

        tool = catalogue().get(entry.tool)
        parts.append(tool.origin() if tool is not None else f"from catalogue: {entry.tool}")
    if entry.expires is not None:
        parts.append(f"expires {entry.expires.isoformat()}")
    if parts:
        said[key, value] = "; ".join(parts)


# ------------------------------------------------------------------ the planner


def make_plan(
    desired: OrgPolicy,
    live: OrgPolicy,
    sources: Mapping[str, str] | None = None,
    *,
    file: str | None = None,
    notes: tuple[str, ...] = (),
) -> OrgPlan:
    """Every change that turns `live` into `desired`, in one fixed order.

    `sources` maps change keys to the `file:line` of their desired value. An additive list
    keeps the live entries the policy does not list: they become `unmanaged`, never deletes.
    """
    where = sources or {}
    changes: list[Change] = []
    unmanaged: list[Unmanaged] = []
    if desired.mcp is not None:
        changes.extend(_mcp_changes(desired.mcp, live.mcp or McpSettings(), where, unmanaged))
    if desired.ip_allowlists is not None:
        changes.extend(
            _allowlist_changes(desired.ip_allowlists, live.ip_allowlists or (), where, unmanaged)
        )
    return OrgPlan(
        org_id=desired.org.id,
        live_fingerprint=fingerprint(state_value(live)),
        changes=tuple(sorted(changes, key=Change.sort_key)),
        file=file,
        guards=desired.guards,
        notes=notes,
        desired=state_value(desired),
        unmanaged=tuple(sorted(unmanaged, key=lambda u: (u.key, u.value))),
    )


def _mcp_changes(
    desired: McpSettings, live: McpSettings, where: Mapping[str, str], unmanaged: list[Unmanaged]
) -> Iterable[Change]:
    want = desired.allow_atlassian_supported_domains
    have = live.allow_atlassian_supported_domains
    if want is not None and want != have:
        key = setting_key(SETTING_SUPPORTED_DOMAINS)
        yield Change(
            "update",
            "mcp.settings",
            key,
            have,
            want,
            "widens" if want else "narrows",
            where.get(key),
        )
    want_token = desired.authentication.api_token if desired.authentication else None
    have_token = live.authentication.api_token if live.authentication else None
    if want_token is not None and want_token != have_token:
        key = setting_key(SETTING_API_TOKEN)
        effect: Effect = "widens" if want_token else "narrows"
        yield Change("update", "mcp.settings", key, have_token, want_token, effect, where.get(key))
    if desired.domains is not None:
        wanted = {d.pattern for d in desired.domains}
        present = {d.pattern for d in live.domains or ()}
        for pattern in sorted(wanted - present):
            key = domain_key(pattern)
            yield Change("create", "mcp.domain", key, None, pattern, "widens", where.get(key))
        if desired.ownership == "additive":
            unmanaged.extend(Unmanaged(domain_key(p), p) for p in present - wanted)
            return
        for pattern in sorted(present - wanted):
            source = where.get("mcp.domain")
            yield Change(
                "delete", "mcp.domain", domain_key(pattern), pattern, None, "narrows", source
            )


def _allowlist_changes(
    desired: tuple[IpAllowlist, ...],
    live: tuple[IpAllowlist, ...],
    where: Mapping[str, str],
    unmanaged: list[Unmanaged],
) -> Iterable[Change]:
    wanted = {a.name: allowlist_value(a) for a in desired}
    present = {a.name: allowlist_value(a) for a in live}
    for allowlist in desired:
        if allowlist.ownership == "additive" and allowlist.name in present:
            want, have = wanted[allowlist.name], present[allowlist.name]["addresses"]
            extra = set(have) - set(want["addresses"])
            key = allowlist_key(allowlist.name)
            unmanaged.extend(Unmanaged(key, address) for address in extra)
            want["addresses"] = sorted({*want["addresses"], *extra}, key=_address_order)
    coverage = _Coverage(present.values())  # once for all changes: each `before` is in it
    for name in sorted(wanted.keys() | present.keys()):
        key = allowlist_key(name)
        after, before = wanted.get(name), present.get(name)
        if after == before:
            continue
        action: Action = "create" if before is None else "delete" if after is None else "update"
        source = where.get(key) if after is not None else where.get("ip_allowlist")
        yield Change(
            action,
            "ip_allowlist",
            key,
            before,
            after,
            _effect(before, after, coverage),
            source,
        )


def allowlist_effect(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    live: Mapping[str, Mapping[str, Any]],
) -> Effect:
    """Does this one change, made to `live`, let more clients in, or fewer?

    A request to an app passes if any enabled allowlist covering the app admits
    it, and an app with no enabled allowlist admits everyone. So the effect is
    judged per app on the union of its enabled allowlists, before and after the
    change: deleting one of two lists on an app narrows, a second list widens.
    Mobile bypass switched on widens, for apps that were restricted before (an app
    that admitted everyone cannot admit more). Any widening part makes the change widen.
    """
    name = (before or after or {}).get("name")
    others = [value for key, value in live.items() if key != name]
    return _effect(before, after, _Coverage([*others, *([before] if before else [])]))


class _Coverage:
    """Per app, what a set of allowlist values admits: the number of enabled lists covering
    it, the addresses at least one admits and those at least two admit. Built once, it
    answers the effect of each change to one of those lists without recomputing any union:
    a change widens an app if the new list admits something outside the union, and narrows
    it if the old list alone admitted something the new one drops."""

    def __init__(self, allowlists: Iterable[Mapping[str, Any]]) -> None:
        spans: dict[str, list[Ranges]] = defaultdict(list)
        for allowlist in allowlists:
            if allowlist["enabled"]:
                held = ranges(allowlist["addresses"])
                for app in set(allowlist["apps"]):
                    spans[app].append(held)
        self.lists = {app: len(found) for app, found in spans.items()}
        self.once: dict[str, Ranges] = {}
        self.twice: dict[str, Ranges] = {}
        for app, found in spans.items():
            self.once[app], self.twice[app] = sweep(found)


def _effect(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, base: _Coverage
) -> Effect:
    """`allowlist_effect`, with `base` the coverage of live as it is (with `before` in it)."""
    old = set(before["apps"]) if before and before["enabled"] else set()
    new = set(after["apps"]) if after and after["enabled"] else set()
    old_ranges = ranges(before["addresses"]) if before and old else []
    new_ranges = ranges(after["addresses"]) if after and new else []
    widens = narrows = False
    for app in APPS:
        then = base.lists.get(app, 0) > 0
        now = base.lists.get(app, 0) - (app in old) > 0 or app in new
        if then and not now:
            widens = True
        elif now and not then:
            narrows = True
        elif then and now:
            mine_now = new_ranges if app in new else []
            mine_then = old_ranges if app in old else []
            widens |= not within(mine_now, base.once[app])
            # what only this list admitted, and admits no longer
            narrows |= not within(minus(mine_then, mine_now), base.twice[app])
    bypass = bool(after and after["enabled"] and after["allowMobileBypass"])
    restricted = after is not None and any(base.lists.get(app, 0) > 0 for app in after["apps"])
    if bypass and restricted and not (before and before["enabled"] and before["allowMobileBypass"]):
        widens = True
    if widens:
        return "widens"
    return "narrows" if narrows else "neutral"


def admitted(
    allowlists: Iterable[Mapping[str, Any]],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[ipaddress.IPv4Network] | None]:
    """Per app, the blocks its enabled allowlists admit together; None means everyone.

    `kept_apps` names, per list, apps it stays attached to whatever its value says (apps
    only partly attached, which apply leaves alone): the list counts as covering them.
    """
    kept = kept_apps or {}
    admitted: dict[str, list[ipaddress.IPv4Network] | None] = dict.fromkeys(APPS)
    for allowlist in allowlists:
        if not allowlist["enabled"]:
            continue
        nets = [n for n in map(_network, allowlist["addresses"]) if n is not None]
        for app in {*allowlist["apps"], *kept.get(allowlist["name"], ())}:
            blocks = admitted.get(app)
            if blocks is None:
                admitted[app] = blocks = []
            blocks.extend(nets)
    return {
        app: None if blocks is None else list(ipaddress.collapse_addresses(blocks))
        for app, blocks in admitted.items()
    }


def _network(address: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(address)
    except ValueError:  # a live value we could not normalise: it admits nothing we can reason about
        return None


def _more(a: list[ipaddress.IPv4Network] | None, b: list[ipaddress.IPv4Network] | None) -> bool:
    """Does `a` admit some address that `b` does not?"""
    if a is None:
        return b is not None
    if b is None:
        return False
    return any(not any(block.subnet_of(other) for other in b) for block in a)
