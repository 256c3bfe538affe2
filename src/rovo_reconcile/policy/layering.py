"""Shared baselines (DESIGN §3): `kind: Baseline` files, `extends:` chains and `locked:` keys.

Each file is checked on its own first (policy/rules.py); a layer leaves the checks of the
whole to this module. Here an org file's chain is resolved (relative paths, cycles refused),
the models are merged base first, and then:

- every key a baseline locks is checked against what the files above it say: a locked
  setting may not turn false into true, a locked domain or address may not be given an
  earlier expiry, a locked allowlist may not be disabled, gain mobile bypass or become
  additive, and a locked list may not become additive (it would keep what the base removes).
  Each error is reported in the file that weakens, naming the baseline file and line that locks;
- the checks of the whole are made on the merged policy: the `mustAllow` lockout guard, an
  enabled allowlist left empty or with every address expired, 500 entries per app.

Merging (lists by key, as DESIGN §3 says): a setting the upper file sets wins; domains merge by
pattern and allowlists by name (the upper file's entry replaces the base's, note and expiry
included); an allowlist in both takes the upper file's enabled, mobile bypass and ownership,
the union of both files' apps, and the union of their addresses by CIDR. So a file that extends
a baseline can add to it and change what is not locked, but never remove a baseline's entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.files import real_path
from rovo_reconcile.policy.model import (
    APPS,
    AddressEntry,
    Authentication,
    DomainEntry,
    Guards,
    IpAllowlist,
    McpSettings,
    OrgPolicy,
)
from rovo_reconcile.policy.normalize import normalize_address, normalize_domain
from rovo_reconcile.policy.problems import ERROR, Mark, Problem
from rovo_reconcile.policy.ranges import ranges, span, within
from rovo_reconcile.policy.rules import MAX_ENTRIES_PER_APP
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

__all__ = ["Layer", "LayerLoader", "Layered", "baseline_problems", "resolve"]

MAX_DEPTH = 16
_SUFFIXES = (".yaml", ".yml")

_SETTINGS: dict[str, DataPath] = {
    "mcp.allowAtlassianSupportedDomains": ("mcp", "allowAtlassianSupportedDomains"),
    "mcp.authentication.apiToken": ("mcp", "authentication", "apiToken"),
}


@dataclass(frozen=True)
class Layer:
    """One checked file of a chain: its own model, document and where its keys are."""

    file: str
    path: Path
    policy: OrgPolicy
    doc: SourceDocument
    sources: Mapping[str, Mark]

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data if isinstance(self.doc.data, dict) else {}

    @property
    def is_baseline(self) -> bool:
        return self.data.get("kind") == "Baseline"

    @property
    def extends(self) -> str | None:
        value = self.data.get("extends")
        return value if isinstance(value, str) else None

    def mark(self, path: DataPath, *, key: bool = False) -> Mark:
        return self.doc.mark(path, key=key)

    def where(self, path: DataPath, *, key: bool = False) -> str:
        return f"{self.file}:{self.mark(path, key=key).line}"


LayerLoader = Callable[[Path], "tuple[Layer | None, bool]"]
"""Checks the file at a path (once): its layer, or None; and whether it could be read at all."""


@dataclass(frozen=True)
class _Lock:
    key: str
    layer: Layer
    index: int
    """Position in that baseline's `locked:` list."""

    @property
    def where(self) -> str:
        return self.layer.where(("locked", self.index))


@dataclass
class Layered:
    """An org file with its chain merged: the policy to plan, where each key came from."""

    policy: OrgPolicy
    sources: dict[str, Mark]
    origins: dict[str, str] = field(default_factory=dict)
    """Change key -> the file that defines it, where that is not the org file."""
    problems: list[Problem] = field(default_factory=list)


def baseline_problems(doc: SourceDocument) -> list[Problem]:
    """A baseline's own `locked:` list: each key must name something the baseline sets.

    Judged on the file as written, so it runs beside the schema's errors in one round: a
    part the schema refused still counts as set (its own error says what is wrong there)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    locked = data.get("locked")
    if data.get("kind") != "Baseline" or not isinstance(locked, list):
        return []
    problems = []
    for index, key in enumerate(locked):
        if not isinstance(key, str) or not key:  # the schema's error
            continue
        why = _lock_target_missing(key, data)
        if why is not None:
            problems.append(
                Problem.at(
                    doc.file,
                    doc.mark(("locked", index)),
                    ERROR,
                    "baseline.locked-unknown",
                    why,
                    "lock mcp.allowAtlassianSupportedDomains, mcp.authentication.apiToken, "
                    "mcp.domains or ipAllowlists.<name> of an allowlist this baseline defines",
                )
            )
    return problems


def _lock_target_missing(key: str, data: Mapping[str, Any]) -> str | None:
    if key.startswith("ipAllowlists."):
        name = key.removeprefix("ipAllowlists.")
        lists = data.get("ipAllowlists", [])
        ok = not isinstance(lists, list) or any(
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or item["name"] == name
            for item in lists
        )
    elif key in _SETTINGS or key == "mcp.domains":
        ok = _sets(data, _SETTINGS.get(key, ("mcp", "domains")))
    else:
        return f"unknown locked key {key!r}"
    return None if ok else f"locked key {key!r} names nothing this baseline sets"


def _sets(data: Any, path: DataPath) -> bool:
    """Whether `data` holds a value at `path`; where the way there is not a mapping, the
    schema's error is about that, so nothing is claimed missing."""
    for step in path:
        if not isinstance(data, dict):
            return True
        if step not in data:
            return False
        data = data[step]
    return True


def resolve(org: Layer, load: LayerLoader, today: date) -> Layered:
    """The org file (or a baseline) merged over its chain of baselines, with every problem
    of the chain."""
    chain = [org]
    problems: list[Problem] = []
    while (extends := chain[-1].extends) is not None:
        upper = chain[-1]
        at = upper.mark(("extends",))
        target = real_path(upper.path.parent / extends)

        def problem(
            message: str, hint: str | None = None, *, at: Mark = at, file: str = upper.file
        ) -> Problem:
            return Problem.at(file, at, ERROR, "baseline.extends", message, hint)

        if Path(extends).is_absolute() or not extends.endswith(_SUFFIXES):
            # Any other file the runner can read would be parsed and its text shown in the
            # errors: `extends: ../.env` in a pull request would print a secret.
            problems.append(
                problem(
                    f"extends names {extends}, which is not a relative path to a .yaml or "
                    ".yml file",
                    "name the baseline relative to this file, e.g. ../baselines/corp.yaml",
                )
            )
            break
        if any(layer.path == target for layer in chain):
            cycle = " -> ".join([*(layer.file for layer in reversed(chain)), extends])
            problems.append(problem(f"extends makes a cycle: {cycle}", "break the cycle"))
            break
        if len(chain) > MAX_DEPTH:
            problems.append(problem(f"more than {MAX_DEPTH} baselines in one chain"))
            break
        base, readable = load(target)
        if not readable:
            problems.append(
                problem(
                    f"extends names {extends}, which cannot be read",
                    "the path is relative to this file",
                )
            )
            break
        if base is None:
            problems.append(problem(f"the baseline {extends} has errors (reported there)"))
            break
        if not base.is_baseline:
            problems.append(
                problem(
                    f"extends names {extends}, which is not a kind: Baseline file",
                    "an org file may extend a baseline only, never another org file",
                )
            )
            break
        chain.append(base)
    layered = _merge_chain(list(reversed(chain)))
    layered.problems[:0] = problems
    if not problems and not org.is_baseline:  # a baseline is not the whole
        layered.problems.extend(_whole(layered.policy, chain, today))
    return layered


def _merge_chain(chain: list[Layer]) -> Layered:
    """Base first; each file over what is below it, with the locks that file must respect."""
    base = chain[0]
    policy = base.policy
    sources = dict(base.sources)
    origins = dict.fromkeys(base.sources, base.file)
    locks = _locks(base)
    problems: list[Problem] = []
    for at, upper in enumerate(chain[1:], start=1):
        problems.extend(_respelled(policy, upper, chain[at - 1 :: -1]))
        problems.extend(_weakened(policy, upper, locks))
        policy = _merge(policy, upper.policy, upper)
        sources.update(upper.sources)
        origins.update(dict.fromkeys(upper.sources, upper.file))
        locks.update(_locks(upper))
    top = chain[-1].file
    return Layered(
        policy,
        sources,
        {key: file for key, file in origins.items() if file != top},
        problems,
    )


def _locks(layer: Layer) -> dict[str, _Lock]:
    return {
        key: _Lock(key, layer, index)
        for index, key in enumerate(layer.data.get("locked") or ())
        if isinstance(key, str)
    }


# ------------------------------------------------------------------ merging


def _merge(base: OrgPolicy, upper: OrgPolicy, layer: Layer) -> OrgPolicy:
    guards = layer.data.get("guards") or {}
    return OrgPolicy(
        org=upper.org,
        mcp=_merge_mcp(base.mcp, upper.mcp),
        ip_allowlists=_merge_allowlists(base.ip_allowlists, upper.ip_allowlists),
        guards=Guards(
            must_allow=tuple(dict.fromkeys([*base.guards.must_allow, *upper.guards.must_allow])),
            max_delete_percent=upper.guards.max_delete_percent
            if "maxDeletePercent" in guards
            else base.guards.max_delete_percent,
        ),
    )


def _merge_mcp(base: McpSettings | None, upper: McpSettings | None) -> McpSettings | None:
    if base is None or upper is None:
        return upper or base
    token = upper.authentication.api_token if upper.authentication else None
    if token is None and base.authentication is not None:
        token = base.authentication.api_token
    has_auth = upper.authentication is not None or base.authentication is not None
    return McpSettings(
        allow_atlassian_supported_domains=_first(
            upper.allow_atlassian_supported_domains, base.allow_atlassian_supported_domains
        ),
        domains=_by_key(base.domains, upper.domains, lambda d: d.pattern),
        authentication=Authentication(api_token=token) if has_auth else None,
        ownership=upper.ownership or base.ownership,
    )


def _merge_allowlists(
    base: tuple[IpAllowlist, ...] | None, upper: tuple[IpAllowlist, ...] | None
) -> tuple[IpAllowlist, ...] | None:
    if base is None or upper is None:
        return upper if upper is not None else base
    merged = {a.name: a for a in base}
    for allowlist in upper:
        below = merged.get(allowlist.name)
        if below is not None:
            apps = {*below.apps, *allowlist.apps}
            allowlist = allowlist.model_copy(
                update={
                    "apps": tuple(app for app in APPS if app in apps),
                    "addresses": _by_key(below.addresses, allowlist.addresses, _address_of),
                    "ownership": allowlist.ownership or below.ownership,
                }
            )
        merged[allowlist.name] = allowlist
    return tuple(merged.values())


def _address_of(entry: AddressEntry) -> str:
    return entry.address


_E = TypeVar("_E", DomainEntry, AddressEntry)


def _by_key(
    base: tuple[_E, ...] | None, upper: tuple[_E, ...] | None, key: Callable[[_E], str]
) -> tuple[_E, ...] | None:
    if base is None or upper is None:
        return upper if upper is not None else base
    merged = {key(entry): entry for entry in base}
    merged.update((key(entry), entry) for entry in upper)
    return tuple(merged.values())


def _first(upper: bool | None, base: bool | None) -> bool | None:
    return upper if upper is not None else base


def _respelled(base: OrgPolicy, upper: Layer, below: list[Layer]) -> Iterable[Problem]:
    """Where `upper` names an allowlist of the layers below in another case. One file may
    not (rules.py), and merged by exact name both lists would be planned, the upper one
    escaping what the base locks."""
    names = {a.name.casefold(): a.name for a in base.ip_allowlists or ()}
    for index, allowlist in _indexed(upper):
        name = names.get(allowlist.name.casefold(), allowlist.name)
        if name == allowlist.name:
            continue
        layer, path = _allowlist_at(below, name)
        yield Problem.at(
            upper.file,
            upper.mark(("ipAllowlists", index, "name")),
            ERROR,
            "allowlist.duplicate-name",
            f"allowlist name {allowlist.name!r} is the baseline allowlist {name!r} "
            f"({layer.where((*path, 'name'))}) spelt another way; names are the key that "
            "matches live allowlists",
            f"write {name!r} to add to the baseline's allowlist, or give this one its own name",
        )


# ------------------------------------------------------------------ locks


def _weakened(base: OrgPolicy, upper: Layer, locks: Mapping[str, _Lock]) -> Iterable[Problem]:
    """Where `upper` weakens a key a baseline below it locks."""

    def problem(path: DataPath, lock: _Lock, what: str, hint: str) -> Problem:
        return Problem.at(
            upper.file,
            upper.mark(path),
            ERROR,
            "baseline.locked",
            f"{what}: {lock.key} is locked by {lock.where}",
            hint,
        )

    mcp, up = base.mcp, upper.policy.mcp
    for key, path in _SETTINGS.items():
        lock = locks.get(key)
        if lock is None or mcp is None or up is None:
            continue
        if _setting(mcp, key) is False and _setting(up, key) is True:
            yield problem(path, lock, "turns a locked false into true", "remove the line")
    lock = locks.get("mcp.domains")
    if lock is not None and mcp is not None and up is not None:
        if up.ownership == "additive" and mcp.ownership != "additive":
            yield problem(
                ("mcp", "ownership"),
                lock,
                "makes the locked domain list additive, which would keep live domains the "
                "baseline removes",
                "remove ownership: additive",
            )
        domains = {d.pattern: d for d in mcp.domains or ()}
        for entry in up.domains or ():
            if _sooner(entry.expires, domains.get(entry.pattern)):
                yield problem(
                    _entry_path(upper, ("mcp", "domains"), "pattern", entry.pattern),
                    lock,
                    f"gives the locked domain {entry.pattern} an earlier expiry",
                    "remove the expires date, or the entry (the baseline's stays)",
                )
    lists = {a.name: a for a in base.ip_allowlists or ()}
    for index, allowlist in _indexed(upper):
        lock = locks.get(f"ipAllowlists.{allowlist.name}")
        below_list = lists.get(allowlist.name)
        if lock is None or below_list is None:
            continue
        item: DataPath = ("ipAllowlists", index)
        if below_list.enabled and not allowlist.enabled:
            yield problem((*item, "enabled"), lock, "disables a locked allowlist", "enable it")
        if allowlist.allow_mobile_bypass and not below_list.allow_mobile_bypass:
            yield problem(
                (*item, "allowMobileBypass"),
                lock,
                "gives a locked allowlist mobile bypass",
                "set allowMobileBypass: false",
            )
        if allowlist.ownership == "additive" and below_list.ownership != "additive":
            yield problem(
                (*item, "ownership"),
                lock,
                "makes a locked allowlist additive, which would keep live addresses the "
                "baseline removes",
                "remove ownership: additive",
            )
        addresses = {a.address: a for a in below_list.addresses}
        for address in allowlist.addresses:
            if _sooner(address.expires, addresses.get(address.address)):
                yield problem(
                    _entry_path(upper, (*item, "addresses"), "address", address.address),
                    lock,
                    f"gives the locked address {address.address} an earlier expiry",
                    "remove the expires date, or the entry (the baseline's stays)",
                )


def _setting(mcp: McpSettings, key: str) -> bool | None:
    """The value of one of the `_SETTINGS` keys."""
    if key == "mcp.allowAtlassianSupportedDomains":
        return mcp.allow_atlassian_supported_domains
    return mcp.authentication.api_token if mcp.authentication else None


def _sooner(expires: date | None, below: DomainEntry | AddressEntry | None) -> bool:
    """Would this entry lapse before the base's entry does?"""
    if below is None or expires is None:
        return False
    return below.expires is None or expires < below.expires


def _indexed(layer: Layer) -> Iterable[tuple[int, IpAllowlist]]:
    """Each allowlist of the layer's model with its index in the file."""
    raw = layer.data.get("ipAllowlists") or []
    index = {
        item.get("name"): i for i, item in enumerate(raw) if isinstance(item, dict)
    }  # names are unique: rules refuse duplicates
    for allowlist in layer.policy.ip_allowlists or ():
        yield index.get(allowlist.name, 0), allowlist


def _entry_path(layer: Layer, at: DataPath, field: str, canonical: str) -> DataPath:
    """The path of the list entry at `at` whose canonical value is `canonical` (for its line)."""
    node: Any = layer.data
    for step in at:
        node = node.get(step) if isinstance(node, dict) else node[step]
    for index, item in enumerate(node or ()):
        text = item.get(field) if isinstance(item, dict) else item
        if isinstance(text, str) and _canonical(field, text) == canonical:
            return (*at, index)
    return at  # pragma: no cover - the entry came from this file


def _canonical(field: str, text: str) -> str | None:
    try:
        return normalize_address(text) if field == "address" else normalize_domain(text)
    except NormalizeError:
        return None


# ------------------------------------------------------------------ the whole


def _whole(policy: OrgPolicy, chain: list[Layer], today: date) -> Iterable[Problem]:
    """The checks a single layer leaves to the merged policy."""
    org = chain[0]

    def live(expires: date | None) -> bool:
        return expires is None or today <= expires

    per_app: dict[str, int] = dict.fromkeys(APPS, 0)
    for allowlist in policy.ip_allowlists or ():
        for app in allowlist.apps:
            per_app[app] += len(allowlist.addresses)
        if not allowlist.enabled:
            continue
        layer, path = _allowlist_at(chain, allowlist.name)
        if not allowlist.addresses:
            yield Problem.at(
                layer.file,
                layer.mark((*path, "addresses"), key=True),
                ERROR,
                "allowlist.enabled-empty",
                f"allowlist {allowlist.name!r} is enabled with no addresses, with its "
                "baselines: it would lock everyone out of " + ", ".join(allowlist.apps),
                "add addresses, or set enabled: false",
            )
        elif not any(live(a.expires) for a in allowlist.addresses):
            yield Problem.at(
                layer.file,
                layer.mark((*path, "addresses"), key=True),
                ERROR,
                "allowlist.enabled-expired",
                f"every address of enabled allowlist {allowlist.name!r} has expired, with its "
                "baselines: the plan would leave it empty and lock everyone out of "
                + ", ".join(allowlist.apps),
                "renew an expiry date, add addresses, or set enabled: false",
            )
    for name, count in per_app.items():
        if count > MAX_ENTRIES_PER_APP:
            yield Problem.at(
                org.file,
                org.mark(("extends",)),
                ERROR,
                "allowlist.app-limit",
                f"with its baselines, more than {MAX_ENTRIES_PER_APP} entries over the "
                f"allowlists covering {name} ({count}); Atlassian accepts at most "
                f"{MAX_ENTRIES_PER_APP} per app",
                "merge addresses into wider CIDR blocks",
            )
    if policy.ip_allowlists is not None:
        yield from _lockout(policy, chain, live)


def _allowlist_at(chain: list[Layer], name: str) -> tuple[Layer, DataPath]:
    """The uppermost layer of `chain` (upper first) that defines allowlist `name`, and where."""
    for layer in chain:
        for index, allowlist in _indexed(layer):
            if allowlist.name == name:
                return layer, ("ipAllowlists", index)
    return chain[0], ("ipAllowlists",)  # pragma: no cover - every merged list is in a file


def _lockout(
    policy: OrgPolicy, chain: list[Layer], live: Callable[[date | None], bool]
) -> Iterable[Problem]:
    """A mustAllow address outside the enabled allowlists of an app, merged."""
    for text in policy.guards.must_allow:
        wanted = span(text)
        if wanted is None:
            continue
        shut = [
            app
            for app in APPS
            if (
                covering := ranges(
                    a.address
                    for allowlist in policy.ip_allowlists or ()
                    if allowlist.enabled and app in allowlist.apps
                    for a in allowlist.addresses
                    if live(a.expires)
                )
            )
            and not within([wanted], covering)
        ]
        if not shut:
            continue
        layer, path = _must_allow_at(chain, text)
        apps = ", ".join(shut)
        yield Problem.at(
            layer.file,
            layer.mark(path),
            ERROR,
            "guard.lockout",
            f"mustAllow address {text} is not admitted by any enabled allowlist covering {apps}, "
            "with its baselines",
            f"add {text} to an enabled allowlist that covers {apps}",
        )


def _must_allow_at(chain: list[Layer], text: str) -> tuple[Layer, DataPath]:
    for layer in chain:
        for index, item in enumerate((layer.data.get("guards") or {}).get("mustAllow") or ()):
            if isinstance(item, str) and span(item) == span(text):
                return layer, ("guards", "mustAllow", index)
    return chain[0], ("guards",)  # pragma: no cover - every mustAllow is in a file
