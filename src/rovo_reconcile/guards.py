"""Safety guards on a plan, checked before any write. Pure: a plan and live state in, refusals out.

- deleting more than `maxDeletePercent` of a list of 10 or more entries (`--force` passes it)
- deleting or disabling an enabled allowlist (`--force` passes it)
- a result that leaves a `mustAllow` address outside the enabled allowlists of an
  app, or leaves an enabled allowlist empty: a lockout, which nothing passes
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from rovo_reconcile.model import APPS, IpAllowlist, OrgPolicy
from rovo_reconcile.plan import OrgPlan, allowlist_value, policy_from_state

__all__ = ["MIN_LIST_FOR_DELETE_GUARD", "Refusal", "check_guards"]

MIN_LIST_FOR_DELETE_GUARD = 10


@dataclass(frozen=True)
class Refusal:
    message: str
    forceable: bool


def check_guards(plan: OrgPlan, live: OrgPolicy) -> list[Refusal]:
    refusals = list(_delete_share(plan, live))
    refusals.extend(_enabled_allowlists(plan))
    if any(c.resource == "ip_allowlist" for c in plan.changes):
        refusals.extend(_lockout(plan, live))
    return refusals


def _delete_share(plan: OrgPlan, live: OrgPolicy) -> Iterable[Refusal]:
    limit = plan.guards.max_delete_percent

    def check(what: str, total: int, deleted: int) -> Iterable[Refusal]:
        if total >= MIN_LIST_FOR_DELETE_GUARD and deleted * 100 > limit * total:
            yield Refusal(
                f"the plan deletes {deleted} of {total} {what} ({deleted * 100 // total}%), more than "
                f"maxDeletePercent {limit}%",
                forceable=True,
            )

    deletes = [c for c in plan.changes if c.action == "delete"]
    live_domains = live.mcp.domains if live.mcp is not None and live.mcp.domains is not None else ()
    yield from check(
        "MCP domains", len(live_domains), sum(c.resource == "mcp.domain" for c in deletes)
    )
    yield from check(
        "IP allowlists",
        len(live.ip_allowlists or ()),
        sum(c.resource == "ip_allowlist" for c in deletes),
    )
    for change in plan.changes:
        if change.resource == "ip_allowlist" and change.action == "update":
            before, after = set(change.before["addresses"]), set(change.after["addresses"])
            yield from check(
                f"addresses of allowlist {change.before['name']!r}",
                len(before),
                len(before - after),
            )


def _enabled_allowlists(plan: OrgPlan) -> Iterable[Refusal]:
    for change in plan.changes:
        if (
            change.resource != "ip_allowlist"
            or change.before is None
            or not change.before["enabled"]
        ):
            continue
        if change.action == "delete":
            yield Refusal(
                f"the plan deletes the enabled allowlist {change.before['name']!r}", forceable=True
            )
        elif not change.after["enabled"]:
            yield Refusal(
                f"the plan disables the enabled allowlist {change.before['name']!r}", forceable=True
            )


def _result_allowlists(plan: OrgPlan, live: OrgPolicy) -> tuple[IpAllowlist, ...]:
    """The allowlists live will hold once the plan's changes are written: judged from the
    changes themselves, which are what apply sends, not from the desired state they came from."""
    by_name = {a.name: allowlist_value(a) for a in live.ip_allowlists or ()}
    for change in plan.changes:
        if change.resource != "ip_allowlist":
            continue
        if change.after is None:
            by_name.pop(change.before["name"], None)
        else:
            by_name[change.after["name"]] = change.after
    state = policy_from_state({"org": plan.org_id, "ipAllowlists": list(by_name.values())})
    return state.ip_allowlists or ()


def _lockout(plan: OrgPlan, live: OrgPolicy) -> Iterable[Refusal]:
    """Check the state the plan leads to; the safe write order keeps every step on the way no narrower."""
    result = _result_allowlists(plan, live)
    for allowlist in result:
        if allowlist.enabled and not allowlist.addresses:
            yield Refusal(
                f"allowlist {allowlist.name!r} would be enabled with no addresses, locking everyone out of "
                + ", ".join(allowlist.apps),
                forceable=False,
            )
    for text in plan.guards.must_allow:
        must = ipaddress.IPv4Network(text)
        locked = [app for app in APPS if not _admits(result, app, must)]
        if locked:
            yield Refusal(
                f"mustAllow address {text} would be locked out of {', '.join(locked)}: no enabled allowlist "
                "covering those apps would admit it",
                forceable=False,
            )


def _admits(allowlists: Iterable[IpAllowlist], app: str, address: ipaddress.IPv4Network) -> bool:
    covering = [
        ipaddress.IPv4Network(entry.address)
        for allowlist in allowlists
        if allowlist.enabled and app in allowlist.apps
        for entry in allowlist.addresses
        if "/" in entry.address and ":" not in entry.address
    ]
    has_enabled = any(a.enabled and app in a.apps for a in allowlists)
    return not has_enabled or any(
        address.subnet_of(net) for net in ipaddress.collapse_addresses(covering)
    )
