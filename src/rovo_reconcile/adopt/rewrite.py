"""One policy file's text, rewritten so that it plans to no changes against live.

The plan of the file against live already says, key by key, where the two differ;
adopt reads each change backwards (its `before` is live) and edits only the nodes
that change names. Entries are matched in normal form, so an entry whose spelling
differs from live's but means the same is kept as written.

Decisions where the issue is silent:
- An entry the policy lists and live lacks is removed, with its note and comment lines.
- An entry whose `expires:` date has passed counts as absent (as plan counts it). If
  live lacks it too, it is left as it is; if live still has it, its `expires:` key is
  removed, since live keeps it past that date (the note stays).
- An app the org has no workspace of is left in `apps` (the planner ignores it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rovo_reconcile.adopt.yaml_text import Flow, Value, YamlText
from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.plan import Change, OrgPlan
from rovo_reconcile.policy.model import APPS, SETTING_API_TOKEN, setting_key
from rovo_reconcile.policy.normalize import normalize_address, normalize_domain

__all__ = ["rewrite_policy"]


@dataclass(frozen=True)
class _Entry:
    node: Node
    canonical: str | None
    expired: bool


def rewrite_policy(text: str, plan: OrgPlan, live: LiveOrg, today: date) -> tuple[str, list[str]]:
    """`text` with `plan`'s changes undone in the file (live accepted), and what changed, in words."""
    doc = YamlText(text)
    said: list[str] = []
    for change in plan.changes:
        if change.resource == "mcp.settings":
            path: tuple[str, ...] = ("mcp", "authentication", "apiToken")
            if change.key != setting_key(SETTING_API_TOKEN):
                path = ("mcp", "allowAtlassianSupportedDomains")
            found = doc.at(*path)
            assert found is not None, f"{'.'.join(path)} not in the file"
            doc.set_scalar(found[1], bool(change.before))
            said.append(f"{'.'.join(path)}: {_bool(change.after)} -> {_bool(change.before)}")
    domains = [c for c in plan.changes if c.resource == "mcp.domain"]
    if domains:
        _domains(doc, domains, today, said)
    allowlists = [c for c in plan.changes if c.resource == "ip_allowlist"]
    if allowlists:
        org_apps = {w.app for w in live.workspaces if w.app is not None}
        _allowlists(doc, allowlists, org_apps, today, said)
    return doc.result(), said


def _bool(value: Any) -> str:
    return "true" if value else "false"


# ------------------------------------------------------------------ list entries


def _entries(
    doc: YamlText, seq: Node, key: str, canonical: Callable[[str], str], today: date
) -> list[_Entry]:
    assert isinstance(seq, SequenceNode)
    found = []
    for item in seq.value:
        raw, _ = doc.entry_value(item, key)
        try:
            normal = canonical(raw) if raw is not None else None
        except NormalizeError:  # cannot happen in a valid file; then it matches nothing
            normal = None
        expiry = doc.get(item, "expires")
        expires = doc.scalar(expiry[1]) if expiry is not None else None
        expired = expires is not None and date.fromisoformat(expires) < today
        found.append(_Entry(item, normal, expired))
    return found


def _placement(
    entries: Sequence[_Entry],
    delete: set[int],
    new: Sequence[str],
    order: Callable[[str], Any],
) -> dict[int, list[str]]:
    """Where each new value goes: in sort order if the kept entries are sorted, else last."""
    kept = [i for i in range(len(entries)) if i not in delete]
    keys = [order(entries[i].canonical or "") for i in kept]
    is_sorted = all(a <= b for a, b in itertools.pairwise(keys))
    placed: dict[int, list[str]] = {}
    for value in sorted(new, key=order):
        if not entries:
            after = -1
        elif not kept:
            after = len(entries) - 1
        elif is_sorted:
            before = [i for i, k in zip(kept, keys, strict=True) if k <= order(value)]
            after = before[-1] if before else -1
        else:
            after = kept[-1]
        placed.setdefault(after, []).append(value)
    return placed


def _shaped(
    doc: YamlText, seq: Node, placed: dict[int, list[str]], key: str
) -> dict[int, list[Value]]:
    """Each new value as its neighbour is written: a plain string or a `key:` mapping."""
    assert isinstance(seq, SequenceNode)
    shaped: dict[int, list[Value]] = {}
    for after, values in placed.items():
        neighbour = seq.value[max(after, 0)] if seq.value else None
        mapping = isinstance(neighbour, MappingNode)
        shaped[after] = [{key: v} if mapping else v for v in values]
    return shaped


def _edit_entries(
    doc: YamlText,
    where: tuple[ScalarNode, Node],
    entry_key: str,
    canonical: Callable[[str], str],
    order: Callable[[str], Any],
    drop: set[str],
    add: set[str],
    today: date,
    said: list[str],
    label: str,
) -> None:
    """Remove the live entries `drop` and add `add` to one list of domains or addresses."""
    key, seq = where
    entries = _entries(doc, seq, entry_key, canonical, today)
    delete = {i for i, e in enumerate(entries) if e.canonical in drop and not e.expired}
    said.extend(f"{label}: - {entries[i].canonical}" for i in sorted(delete))
    new = []
    for value in sorted(add, key=order):
        old = next((e for e in entries if e.canonical == value), None)
        if old is not None and isinstance(old.node, MappingNode):  # expired, yet live has it
            doc.delete_key(old.node, "expires")
            said.append(f"{label}: {value}: expires removed (live still has it)")
        else:
            new.append(value)
            said.append(f"{label}: + {value}")
    placed = _placement(entries, delete, new, order)
    doc.edit_list(key, seq, delete, _shaped(doc, seq, placed, entry_key))


# ------------------------------------------------------------------ MCP domains


def _domains(doc: YamlText, changes: list[Change], today: date, said: list[str]) -> None:
    where = doc.at("mcp", "domains")
    assert where is not None, "mcp.domains not in the file"
    drop = {c.after for c in changes if c.action == "create"}  # listed, live lacks it
    add = {c.before for c in changes if c.action == "delete"}  # live has it, not listed
    _edit_entries(
        doc, where, "pattern", normalize_domain, str, drop, add, today, said, "mcp.domains"
    )


# ------------------------------------------------------------------ IP allowlists


def _address_order(address: str) -> tuple[int, ...]:
    host, _, prefix = address.partition("/")
    try:
        return (*(int(part) for part in host.split(".")), int(prefix or 32))
    except ValueError:
        return (256,)


def _allowlists(
    doc: YamlText, changes: list[Change], org_apps: set[Any], today: date, said: list[str]
) -> None:
    where = doc.at("ipAllowlists")
    assert where is not None, "ipAllowlists not in the file"
    key, seq = where
    assert isinstance(seq, SequenceNode)
    names = [doc.scalar(found[1]) if (found := doc.get(i, "name")) else None for i in seq.value]
    gone = {c.after["name"] for c in changes if c.action == "create"}  # live lacks it
    delete = {i for i, name in enumerate(names) if name in gone}
    said.extend(f"ipAllowlists: - {names[i]!r}" for i in sorted(delete))
    for change in changes:
        if change.action == "update":
            item = seq.value[names.index(change.before["name"])]
            _allowlist(doc, item, change.before, org_apps, today, said)
    new = {c.before["name"]: c.before for c in changes if c.action == "delete"}
    entries = [_Entry(item, name, False) for item, name in zip(seq.value, names, strict=True)]
    placed = _placement(entries, delete, list(new), str.casefold)
    said.extend(f"ipAllowlists: + {name!r}" for name in sorted(new))
    values: dict[int, list[Value]] = {}
    for after, added in placed.items():
        template = seq.value[max(after, 0)] if seq.value else None
        values[after] = [_new_allowlist(doc, new[name], template) for name in added]
    doc.edit_list(key, seq, delete, values)


def _allowlist(
    doc: YamlText,
    item: Node,
    live: dict[str, Any],
    org_apps: set[Any],
    today: date,
    said: list[str],
) -> None:
    """One allowlist made equal to its live value, field by field."""
    label = f"ipAllowlists {live['name']!r}"
    enabled = doc.get(item, "enabled")
    assert enabled is not None
    if (doc.scalar(enabled[1]) or "").lower() != _bool(live["enabled"]):
        doc.set_scalar(enabled[1], live["enabled"])
        said.append(f"{label}: enabled -> {_bool(live['enabled'])}")
    apps = doc.get(item, "apps")
    assert apps is not None
    assert isinstance(apps[1], SequenceNode)
    listed = [doc.scalar(node) for node in apps[1].value]
    # apps the org has no workspace of stay: the planner leaves them out anyway
    wanted = {*live["apps"], *(a for a in listed if a not in org_apps)}
    delete = {i for i, app in enumerate(listed) if app not in wanted}
    new = [app for app in APPS if app in wanted and app not in listed]
    if delete or new:
        said.extend(f"{label}: apps - {listed[i]}" for i in sorted(delete))
        said.extend(f"{label}: apps + {app}" for app in new)
        entries = [_Entry(node, doc.scalar(node), False) for node in apps[1].value]
        order = _app_order
        placed = _placement(entries, delete, new, order)
        doc.edit_list(apps[0], apps[1], delete, placed)
    bypass = doc.get(item, "allowMobileBypass")
    if bypass is not None:
        if (doc.scalar(bypass[1]) or "").lower() != _bool(live["allowMobileBypass"]):
            doc.set_scalar(bypass[1], live["allowMobileBypass"])
            said.append(f"{label}: allowMobileBypass -> {_bool(live['allowMobileBypass'])}")
    elif live["allowMobileBypass"]:
        doc.insert_key(item, "apps", "allowMobileBypass", True)  # after any new app
        said.append(f"{label}: allowMobileBypass -> true")
    addresses = doc.get(item, "addresses")
    assert addresses is not None
    entries = _entries(doc, addresses[1], "address", normalize_address, today)
    listed_now = {e.canonical for e in entries if not e.expired and e.canonical is not None}
    have = set(live["addresses"])
    _edit_entries(
        doc,
        addresses,
        "address",
        normalize_address,
        _address_order,
        listed_now - have,
        have - listed_now,
        today,
        said,
        label,
    )


def _app_order(app: str) -> int:
    return next((i for i, known in enumerate(APPS) if known == app), len(APPS))


def _new_allowlist(doc: YamlText, live: dict[str, Any], template: Node | None) -> Value:
    """A live allowlist as a new entry, written like the allowlist next to it."""
    order = ["name", "enabled", "apps", "allowMobileBypass", "addresses"]
    apps_flow, addresses_flow, mapping_entries, with_bypass = True, False, False, True
    if isinstance(template, MappingNode):
        keys = [doc.scalar(k) for k, _ in template.value]
        order = [k for k in keys if k in order] + [k for k in order if k not in keys]
        with_bypass = "allowMobileBypass" in keys
        if (apps := doc.get(template, "apps")) is not None:
            apps_flow = bool(getattr(apps[1], "flow_style", True))
        if (addresses := doc.get(template, "addresses")) is not None:
            addresses_flow = bool(getattr(addresses[1], "flow_style", False))
            listed = getattr(addresses[1], "value", [])
            mapping_entries = bool(listed) and isinstance(listed[0], MappingNode)
    entries: list[Value] = [{"address": a} if mapping_entries else a for a in live["addresses"]]
    values: dict[str, Value] = {
        "name": live["name"],
        "enabled": live["enabled"],
        "apps": Flow(live["apps"]) if apps_flow else list(live["apps"]),
        "allowMobileBypass": live["allowMobileBypass"],
        "addresses": Flow(entries) if addresses_flow else entries,
    }
    if not with_bypass and not live["allowMobileBypass"]:
        del values["allowMobileBypass"]
    return {k: values[k] for k in order if k in values}
