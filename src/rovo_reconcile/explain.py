"""Why two plans differ, in words a reviewer can check.

- `explain_reviewed`: the change set reviewed in a pull request against the one a
  fresh plan makes at merge (`apply --reviewed`), with the cause per org: the
  policies changed since review, live changed since review, or both.
- `explain_stale`: live as a saved plan saw it against live now (`apply --plan`).

deepdiff does the structural diff; this module shapes the inputs so its paths
are meaningful (changes keyed by org and change key, allowlists by name, lists
of addresses and domains as sets) and turns each finding into one sentence.
Pure: plans and states in, lines out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rovo_reconcile.plan import OrgPlan, Plan, fingerprint, state_value
from rovo_reconcile.policy.model import OrgPolicy
from rovo_reconcile.render.plan_text import shown

__all__ = ["explain_reviewed", "explain_stale", "live_as_planned", "reviewed_difference"]

_SHOWN = 120
"""Longest value quoted in a sentence."""


def reviewed_difference(digest: str, reviewed: Plan | None, fresh: Plan) -> list[str] | None:
    """None when `fresh` makes exactly the reviewed changes (`digest`), else why not.

    `reviewed` is the reviewed plan itself when it is at hand; without it only the digest
    can be compared, and the fresh changes are listed for a reviewer to judge.
    """
    if fresh.changes_digest == digest:
        return None
    if reviewed is not None and reviewed.changes_digest == digest:
        return explain_reviewed(reviewed, fresh)
    lines = ["the reviewed plan itself is not at hand, only its digest; the changes now are:"]
    lines.extend(
        f"  org {shown(org.title)}: {change.action} {shown(change.key)} ({change.effect})"
        for org in fresh.orgs
        for change in org.changes
    )
    return lines


def explain_reviewed(reviewed: Plan, fresh: Plan) -> list[str]:
    """One line per difference between the reviewed and the fresh change sets, causes first."""
    before = {org.org_id: org for org in reviewed.orgs}
    after = {org.org_id: org for org in fresh.orgs}
    lines: list[str] = []
    for org_id in sorted(before.keys() | after.keys()):
        old, new = before.get(org_id), after.get(org_id)
        if _writes(old) == _writes(new):
            continue
        either = new if new is not None else old
        title = either.title if either is not None else org_id
        if old is None or new is None:
            where = "added to" if old is None else "removed from"
            lines.append(
                f"org {shown(title)}: its policy file was {where} the policies since review"
            )
        else:
            lines.append(f"org {shown(title)}: {_cause(old, new)}")
        lines.extend(
            f"  {line}" for line in _describe(_keyed(old), _keyed(new), "the reviewed plan")
        )
    return lines


def explain_stale(plan: OrgPlan, live_now: OrgPolicy) -> list[str]:
    """How live now differs from live as `plan` saw it, over the parts the policy manages."""
    planned = live_as_planned(plan)
    now = _managed(state_value(live_now), planned)
    lines = list(_describe(_keyed_state(planned), _keyed_state(now), "live as planned"))
    return lines or ["live changed only in parts this policy does not manage"]


def live_as_planned(plan: OrgPlan) -> dict[str, Any]:
    """The managed live state `plan` was computed from: its desired state with each change undone."""
    state = json.loads(json.dumps(plan.desired or {"org": plan.org_id}))
    mcp = state.get("mcp") or {}
    lists = {a["name"]: a for a in state.get("ipAllowlists") or ()}
    for change in plan.changes:
        if change.resource == "mcp.settings":
            field = (
                "apiToken" if change.key.endswith("apiToken") else "allowAtlassianSupportedDomains"
            )
            mcp[field] = change.before
        elif change.resource == "mcp.domain":
            domains = set(mcp.get("domains") or ())
            domains.discard(change.after)
            if change.before is not None:
                domains.add(change.before)
            mcp["domains"] = sorted(domains)
        elif change.before is None:
            lists.pop(change.after["name"], None)
        else:
            lists[change.before["name"]] = change.before
    # Ownership is the policy's, not live state; an additive list's unmanaged entries were
    # in live all along (its desired state leaves them out).
    state.pop("additiveAllowlists", None)
    mcp.pop("ownership", None)
    for entry in plan.unmanaged:
        if entry.key.startswith("mcp.domain:"):
            mcp["domains"] = sorted({*(mcp.get("domains") or ()), entry.value})
        elif (held := lists.get(entry.key.removeprefix("ip_allowlist:"))) is not None:
            lists[held["name"]] = {**held, "addresses": [*held["addresses"], entry.value]}
    if "ipAllowlists" in state:
        state["ipAllowlists"] = [lists[name] for name in sorted(lists)]
    return dict(state)


# ------------------------------------------------------------------ shaping the inputs


def _writes(org: OrgPlan | None) -> list[dict[str, Any]]:
    return [c.what() for c in org.changes] if org is not None else []


def _cause(old: OrgPlan, new: OrgPlan) -> str:
    causes = []
    if fingerprint(old.desired) != fingerprint(new.desired):
        causes.append("the policy changed since review (another change was merged after it)")
    if old.live_fingerprint != new.live_fingerprint:
        causes.append("live changed since review (someone changed the org outside Git)")
    return "; ".join(causes) or "the plan was computed differently (another tool version?)"


def _keyed(org: OrgPlan | None) -> dict[str, Any]:
    """Changes by key, lists as sets, so deepdiff speaks of entries, not list positions."""
    return {c.key: _sets(c.what()) for c in org.changes} if org is not None else {}


def _keyed_state(state: Mapping[str, Any]) -> dict[str, Any]:
    value = _sets({k: v for k, v in state.items() if k != "ipAllowlists"})
    if "ipAllowlists" in state:
        value["ipAllowlists"] = {a["name"]: _sets(a) for a in state["ipAllowlists"]}
    return dict(value)


def _sets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sets(v) for k, v in value.items()}
    if isinstance(value, list):
        return frozenset(value)
    return value


def _managed(now: dict[str, Any], planned: Mapping[str, Any]) -> dict[str, Any]:
    """`now` restricted to what `planned` manages: sections and settings it holds."""
    kept: dict[str, Any] = {"org": now["org"]}
    if "mcp" in planned:
        live_mcp = now.get("mcp") or {}
        kept["mcp"] = {
            k: (live_mcp.get(k) if v is not None else None) for k, v in planned["mcp"].items()
        }
    if "ipAllowlists" in planned:
        kept["ipAllowlists"] = now.get("ipAllowlists") or []
    return kept


# ------------------------------------------------------------------ deepdiff's findings as words


def _describe(old: Mapping[str, Any], new: Mapping[str, Any], then: str) -> Iterable[str]:
    # Imported here: deepdiff costs ~40 ms of start-up, and apply imports this module for
    # a stale saved plan, which most runs never have.
    from deepdiff import DeepDiff

    found = DeepDiff(old, new, view="tree")
    lines = []
    for kind, levels in found.items():
        for level in levels:
            path = [str(p) for p in level.path(output_format="list") if p is not None]
            lines.append(_sentence(kind, path, level.t1, level.t2, then))
    return sorted(lines)


def _sentence(kind: str, path: list[str], old: Any, new: Any, then: str) -> str:
    where, field = shown(path[0]), shown(".".join(path[1:]))
    if kind == "dictionary_item_added" and not field:
        return f"{where}: new, not in {then}: {_show(new)}"
    if kind == "dictionary_item_removed" and not field:
        return f"{where}: in {then}, gone now: {_show(old)}"
    if kind == "set_item_added":
        return f"{where}: {field} now also holds {_show(new)}"
    if kind == "set_item_removed":
        return f"{where}: {field} no longer holds {_show(old)}"
    if kind == "dictionary_item_added":
        return f"{where}: {field} is now {_show(new)}"
    if kind == "dictionary_item_removed":
        return f"{where}: {field} was {_show(old)}, now absent"
    return f"{where}: {field} was {_show(old)}, is now {_show(new)}"


def _show(value: Any) -> str:
    text = shown(json.dumps(_lists(value), ensure_ascii=False, sort_keys=True, default=str))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _lists(value: Any) -> Any:
    """`_sets` undone, at any depth, for showing."""
    if isinstance(value, frozenset):
        return sorted(value, key=str)
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value
