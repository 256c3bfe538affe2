"""Safety guards on a plan, checked before any write. Pure: a plan and live state in, refusals out.

- deleting more than `maxDeletePercent` of a list of 10 or more entries (`--force` passes it)
- deleting or disabling an enabled allowlist (`--force` passes it)
- a result that leaves a `mustAllow` address outside the enabled allowlists of an
  app, or leaves an enabled allowlist empty: a lockout, which nothing passes
- the same for attachments the model does not express (a workspace of a type it does
  not know, which apply keeps attached): a lockout there that live does not already
  have, which nothing passes either
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from rovo_reconcile.plan import OrgPlan, Refusal, allowlist_value
from rovo_reconcile.policy.model import APPS, OrgPolicy
from rovo_reconcile.policy.ranges import ranges, span, within

__all__ = ["MIN_LIST_FOR_DELETE_GUARD", "Lockouts", "Refusal", "check_guards", "locked_out"]

MIN_LIST_FOR_DELETE_GUARD = 10


def check_guards(
    plan: OrgPlan, live: OrgPolicy, kept_apps: Mapping[str, Sequence[str]] | None = None
) -> list[Refusal]:
    """Every refusal for applying `plan` to `live`; `kept_apps` as in `locked_out`."""
    refusals = list(_delete_share(plan, live))
    refusals.extend(_enabled_allowlists(plan))
    if any(c.resource == "ip_allowlist" for c in plan.changes):
        refusals.extend(_lockout(plan, live, kept_apps or {}))
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


def _result_allowlists(plan: OrgPlan, live: OrgPolicy) -> list[dict[str, Any]]:
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
    return list(by_name.values())


def _lockout(
    plan: OrgPlan, live: OrgPolicy, kept_apps: Mapping[str, Sequence[str]]
) -> Iterable[Refusal]:
    """Check the state the plan leads to; `write_order` keeps every step on the way safe too."""
    result = _result_allowlists(plan, live)
    for allowlist in result:
        if allowlist["enabled"] and not allowlist["addresses"]:
            yield Refusal(
                f"allowlist {allowlist['name']!r} would be enabled with no addresses, locking "
                "everyone out of " + ", ".join(allowlist["apps"]),
                forceable=False,
            )
    locked = locked_out(result, plan.guards.must_allow, kept_apps)
    for text in plan.guards.must_allow:
        apps = [app for app in APPS if (text, app) in locked]
        if apps:
            yield Refusal(
                f"mustAllow address {text} would be locked out of {', '.join(apps)}: no enabled "
                "allowlist covering those apps would admit it",
                forceable=False,
            )
    unmodelled = {(text, where) for text, where in locked if where not in APPS}
    if unmodelled:  # a lockout live already has there is not this plan's doing
        live_values = [allowlist_value(a) for a in live.ip_allowlists or ()]
        unmodelled -= locked_out(live_values, plan.guards.must_allow, kept_apps)
    for text, where in sorted(unmodelled):
        lists = ", ".join(repr(name) for name, kept in kept_apps.items() if where in kept)
        yield Refusal(
            f"mustAllow address {text} would be locked out of {where}, which allowlist "
            f"{lists} stays attached to: rovo-reconcile does not model that workspace type and "
            f"keeps the attachment, so keep {text} admitted there, or detach it in Atlassian "
            "Administration first",
            forceable=False,
        )


def locked_out(
    allowlists: Iterable[Mapping[str, Any]],
    must_allow: Iterable[str],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> set[tuple[str, str]]:
    """The (mustAllow address, app) pairs these allowlist values shut out.

    An app with no enabled allowlist admits everyone; otherwise an address passes if the
    enabled allowlists covering the app admit it, together (as `plan.admitted` says, which
    also explains `kept_apps`). Works on integer ranges and looks only at the blocks that
    touch a mustAllow address; `Lockouts` keeps the same answer up to date write by write.
    """
    wanted = tuple(sorted({text for text in must_allow if span(text) is not None}))
    if not wanted:
        return set()
    kept = kept_apps or {}
    near: dict[str, list[str]] = {}  # per restricted app: its addresses near a mustAllow one
    for allowlist in allowlists:
        if not allowlist["enabled"]:
            continue
        close = _near(tuple(allowlist["addresses"]), wanted)
        for app in {*allowlist["apps"], *kept.get(allowlist["name"], ())}:
            near.setdefault(app, []).extend(close)
    return {
        (text, app)
        for app, addresses in near.items()
        for text in wanted
        if not within([_span(text)], ranges(addresses))
    }


class Lockouts:
    """`locked_out` of a set of allowlist values, kept up to date as one value at a time is
    replaced, so that `write_order` judges each write it considers on the apps the write
    touches rather than on every list (a thousand lists took a minute that way).

    Per app that some enabled list covers: how many do, the addresses near a mustAllow one
    they hold (a multiset: two lists may hold the same block) and the pairs those shut out.
    """

    def __init__(
        self,
        allowlists: Iterable[Mapping[str, Any]],
        must_allow: Iterable[str],
        kept_apps: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.wanted = tuple(sorted({text for text in must_allow if span(text) is not None}))
        self._kept = kept_apps or {}
        self._lists: dict[str, int] = {}
        self._near: dict[str, dict[str, int]] = {}
        self._locked: dict[str, set[tuple[str, str]]] = {}
        if not self.wanted:  # nothing to shut out, whatever is written
            return
        for allowlist in allowlists:
            restricts = self.restricts(allowlist)
            close = self._close(allowlist, restricts)
            for app in restricts:
                self._lists[app] = self._lists.get(app, 0) + 1
                near = self._near.setdefault(app, {})
                for address in close:
                    near[address] = near.get(address, 0) + 1
        for app, lists in self._lists.items():
            self._locked[app] = self._shut_out(app, lists, self._near[app])

    def locked(self) -> set[tuple[str, str]]:
        """`locked_out` of the values as they are now."""
        return {pair for pairs in self._locked.values() for pair in pairs}

    def restricts(self, allowlist: Mapping[str, Any] | None) -> set[str]:
        """The apps an allowlist value (None: no list) restricts: if enabled, those it covers
        and those it stays attached to."""
        if allowlist is None or not allowlist["enabled"]:
            return set()
        return {*allowlist["apps"], *self._kept.get(allowlist["name"], ())}

    def changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> set[str]:
        """The apps whose count of enabled lists or near addresses changes when one list's
        value `old` is replaced by `new` (None: no list)."""
        before, after = self.restricts(old), self.restricts(new)
        if not self.wanted or not before | after:
            return set()
        if sorted(self._close(old, before)) == sorted(self._close(new, after)):
            return before ^ after
        return before | after

    def locked_if(
        self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> set[tuple[str, str]]:
        """What `locked` would hold, for the apps `old` or `new` restricts, were one list's
        value `old` replaced by `new`; the pairs of other apps do not change."""
        changed = self.changed(old, new)
        pairs: set[tuple[str, str]] = set()
        for app in self.restricts(old) | self.restricts(new):
            if app in changed:
                pairs |= self._shut_out(app, *self._after(app, old, new))
            else:
                pairs |= self._locked.get(app, set())
        return pairs

    def put(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        """Replace one list's value `old` by `new` (None: no list)."""
        for app in self.changed(old, new):
            lists, near = self._after(app, old, new)
            if lists:
                self._lists[app], self._near[app] = lists, near
                self._locked[app] = self._shut_out(app, lists, near)
            else:
                del self._lists[app], self._near[app], self._locked[app]

    def _after(
        self, app: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> tuple[int, dict[str, int]]:
        lists, near = self._lists.get(app, 0), dict(self._near.get(app, {}))
        for value, sign in ((old, -1), (new, 1)):
            restricts = self.restricts(value)
            if app in restricts:
                lists += sign
                for address in self._close(value, restricts):
                    near[address] = near.get(address, 0) + sign
        return lists, {address: n for address, n in near.items() if n}

    def _close(self, allowlist: Mapping[str, Any] | None, restricts: set[str]) -> tuple[str, ...]:
        if allowlist is None or not restricts or not self.wanted:
            return ()
        return _near(tuple(allowlist["addresses"]), self.wanted)

    def _shut_out(self, app: str, lists: int, near: Mapping[str, int]) -> set[tuple[str, str]]:
        if not lists:
            return set()
        held = ranges(near)
        return {(text, app) for text in self.wanted if not within([_span(text)], held)}


@lru_cache(maxsize=1 << 12)
def _near(addresses: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses that overlap one of `wanted`: only those can admit it."""
    spans = [_span(text) for text in wanted]
    return tuple(
        address
        for address in addresses
        if (found := span(address)) is not None
        and any(found[0] <= last and first <= found[1] for first, last in spans)
    )


def _span(text: str) -> tuple[int, int]:
    found = span(text)
    assert found is not None
    return found
