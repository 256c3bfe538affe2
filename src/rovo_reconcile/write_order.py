"""The order of allowlist writes: every state on the way admits every `mustAllow` address.

Pure: the plan's allowlist changes, the live values and the guard in; a list of
steps out, or `NoSafeOrder` before anything is written.

Each change becomes one to three steps, always in this order for one list:

- create: the list is created disabled with its final content (admits nothing
  new, shuts nobody out), then enabled if the policy says so;
- an enabled list that stays enabled: first the union of old and new addresses
  and apps, then the final content (the removals);
- a list going disabled: its final content and `disabled`, in one write;
- a disabled list going enabled: its final content and `enabled`;
- a delete: one step.

Steps are taken greedily, each time the first in phase order (create, widen,
enable, disable, narrow, delete) whose result keeps every `mustAllow` address
admitted wherever it was admitted at the start, and takes no app past Atlassian's
500 entries (`app_limit`: every allowlist covering the app, disabled ones too).
Widening first matters for ordinary addresses; the check matters when restricting
an app that had no enabled list, or swapping one list for another, where only one
order is safe.

Near the limit, widening first may not fit: a list of 450 entries that swaps 100
of them would hold 550 for a moment. When no widen-first order stays within the
limit, a second pass narrows first: deletes, then each changed list cut to the
entries it keeps (before ∩ after, never an enabled list left empty), then
creates, then the final values. A user whose address moves from one list to
another may then be refused for the moment between two writes; a `mustAllow`
address never is. When neither pass finds an order, `NoSafeOrder`: apply
refuses before its first write.

A candidate write is judged on the apps its list covers before or after it
(`guards.Lockouts`, and the entry counts of those apps), not on every list: the
other apps' lockouts and counts do not change. A head found unsafe is not judged
again until a write could change that: one to its own list, one that changes
the lockouts of an app it touches, or, if the limit refused it, one that makes
room on an app it would take past the limit; until then every round would
refuse it again. The steps, refusals and messages are those of judging every
head on the whole state in every round, which tests/test_write_order_reference.py
keeps as the reference: that took a second for a thousand lists, and a minute
when the limit held most of their unions back.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rovo_reconcile.app_limit import (
    LIMIT_WORDS,
    MAX_ENTRIES_PER_APP,
    counted_apps,
    entries_per_app,
    grown_past_limit,
)
from rovo_reconcile.guards import Lockouts
from rovo_reconcile.plan import Change
from rovo_reconcile.policy.model import APPS

__all__ = ["NoSafeOrder", "Step", "allowlist_steps", "same_value"]

Kind = Literal["create", "put", "delete"]

_CREATE, _WIDEN, _ENABLE, _DISABLE, _NARROW, _DELETE = range(6)


@dataclass(frozen=True)
class Step:
    """One write: `create` (disabled) or `put` the allowlist value, or `delete` the list."""

    change: Change
    kind: Kind
    value: dict[str, Any] | None
    phase: int


class NoSafeOrder(Exception):
    """Every remaining write would shut a `mustAllow` address out on the way, or take an
    app past the entry limit."""


def allowlist_steps(
    changes: Sequence[Change],
    live: Mapping[str, dict[str, Any]],
    must_allow: Sequence[str],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> list[Step]:
    """The allowlist writes for `changes`, ordered so no step shuts `must_allow` out or takes
    an app past the entry limit.

    `live` holds the current allowlist values by name; `kept_apps` the apps each
    live list stays attached to whatever is written (see `guards.locked_out`).
    """
    mine = [c for c in changes if c.resource == "ip_allowlist"]
    widen_first = _Order(live, must_allow, kept_apps)
    try:
        return widen_first.run([_steps(c) for c in mine])
    except NoSafeOrder:
        if not widen_first.limited:
            raise
    narrow_first = _Order(live, must_allow, kept_apps)
    try:
        return narrow_first.run([_narrowing_steps(c) for c in mine])
    except NoSafeOrder:
        shut_out = "a mustAllow address would be shut out on the way"
        raise NoSafeOrder(
            f"no order of the writes to {narrow_first.waiting} keeps every app within "
            f"{MAX_ENTRIES_PER_APP} entries and every mustAllow address admitted at each step "
            f"(widening first, {widen_first.limited}; narrowing first, "
            f"{narrow_first.limited or shut_out}; {LIMIT_WORDS}); apply it in two plans: "
            "first one that removes entries, then one that adds them"
        ) from None


_Wake = tuple[Literal["list", "lockout", "room"], str]
"""What a head judged unsafe waits for: a write to the list of that name, a change to the
lockouts of that app, or fewer entries on that app."""


class _Order:
    """One greedy pass: each time, the first head in phase order whose write is safe."""

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        must_allow: Sequence[str],
        kept_apps: Mapping[str, Sequence[str]] | None,
    ) -> None:
        self.state = {name: dict(value) for name, value in live.items()}
        self.kept_apps = kept_apps
        self.lockouts = Lockouts(self.state.values(), must_allow, kept_apps)
        self.tolerated = self.lockouts.locked()  # not ours
        self.counts = entries_per_app(self.state.values(), kept_apps)
        self.limited = ""
        """The first write this pass passed over for the entry limit, described; "" if none."""
        self.waiting = ""
        """The changes left when the pass found no safe step."""

    def run(self, queues: list[list[Step]]) -> list[Step]:
        ordered: list[Step] = []
        ready = [(queue[0].phase, index) for index, queue in enumerate(queues) if queue]
        heapq.heapify(ready)
        unsafe: set[int] = set()  # queues whose head was refused, nothing it needs written since
        waits: defaultdict[_Wake, list[int]] = defaultdict(list)  # the queues waiting for it
        while ready:
            _, index = heapq.heappop(ready)
            step = queues[index][0]
            name = _name(step)
            old = self.state.get(name)
            wake = self._unsafe(step, old)
            if wake:
                unsafe.add(index)
                for what in wake:
                    waits[what].append(index)
                continue
            ordered.append(queues[index].pop(0))
            for what in self._write(name, old, step.value):
                for woken in waits.pop(what, ()):
                    if woken in unsafe:
                        unsafe.remove(woken)
                        heapq.heappush(ready, (queues[woken][0].phase, woken))
            if queues[index]:
                heapq.heappush(ready, (queues[index][0].phase, index))
        if unsafe:
            self.waiting = ", ".join(sorted({q[0].change.key for q in queues if q}))
            raise NoSafeOrder(
                f"no order of the writes to {self.waiting} keeps every mustAllow address "
                "admitted at each step; apply the change in two smaller plans"
            )
        return ordered

    def _unsafe(self, step: Step, old: dict[str, Any] | None) -> list[_Wake]:
        """Nothing if `step` is safe now; else what must change before it may be."""
        if self.limited:  # described already: which check refuses no longer shows, and the
            # count is the cheaper one (near the limit, most heads wait for room)
            return self._too_big(step, old) or self._shuts_out(step, old)
        return self._shuts_out(step, old) or self._too_big(step, old)

    def _shuts_out(self, step: Step, old: dict[str, Any] | None) -> list[_Wake]:
        new = step.value
        if self.lockouts.locked_if(old, new) <= self.tolerated:
            return []
        apps = self.lockouts.restricts(old) | self.lockouts.restricts(new)
        return [("list", _name(step)), *(("lockout", app) for app in apps)]

    def _too_big(self, step: Step, old: dict[str, Any] | None) -> list[_Wake]:
        entries = self._entries(old, step.value)
        before = {app: self.counts.get(app, 0) for app in entries}
        grown = grown_past_limit(before, {app: before[app] + n for app, n in entries.items()})
        if not grown:
            return []
        self.limited = self.limited or _limit_words(step, grown)
        # Refused again until one of those apps holds fewer entries: the step adds the same
        # number to each as long as its list is not written.
        return [("list", _name(step)), *(("room", app) for app in grown)]

    def _write(
        self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> list[_Wake]:
        """Take the write into the state; what it changes, for the heads waiting on that."""
        changed: list[_Wake] = [("list", name)]
        changed += (("lockout", app) for app in self.lockouts.changed(old, new))
        self.lockouts.put(old, new)
        for app, n in self._entries(old, new).items():
            self.counts[app] = self.counts.get(app, 0) + n
            if n < 0:
                changed.append(("room", app))
        if new is None:
            self.state.pop(name, None)
        else:
            self.state[name] = new
        return changed

    def _entries(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, int]:
        """Per app the list covers before or after, the entries it gains (or loses)."""
        entries: dict[str, int] = defaultdict(int)
        for value, sign in ((old, -1), (new, 1)):
            if value is not None:
                for app in counted_apps(value, self.kept_apps):
                    entries[app] += sign * len(value["addresses"])
        return entries


def _name(step: Step) -> str:
    return str((step.change.before or step.change.after)["name"])


def _limit_words(step: Step, grown: Mapping[str, int]) -> str:
    apps = ", ".join(f"{app} {n}" for app, n in grown.items())
    return f"the {step.kind} of {step.change.key} would give {apps} entries"


def _steps(change: Change) -> list[Step]:
    before, after = change.before, change.after
    if change.action == "create":
        created = Step(change, "create", {**after, "enabled": False}, _CREATE)
        return [created, Step(change, "put", after, _ENABLE)] if after["enabled"] else [created]
    if change.action == "delete":
        return [Step(change, "delete", None, _DELETE)]
    if before["enabled"] and after["enabled"]:
        union = {
            **before,
            "addresses": sorted(set(before["addresses"]) | set(after["addresses"])),
            "apps": [app for app in APPS if app in before["apps"] or app in after["apps"]],
        }
        steps = [] if same_value(union, before) else [Step(change, "put", union, _WIDEN)]
        return steps if same_value(union, after) else [*steps, Step(change, "put", after, _NARROW)]
    if before["enabled"]:
        return [Step(change, "put", after, _DISABLE)]
    return [Step(change, "put", after, _ENABLE if after["enabled"] else _WIDEN)]


# The narrow-first pass: deletes, cuts, disables, creates, enables, the final values.
_N_DELETE, _N_CUT, _N_DISABLE, _N_CREATE, _N_ENABLE, _N_FINAL = range(6)


def _narrowing_steps(change: Change) -> list[Step]:
    """`_steps` for the narrow-first pass: a changed list is first cut to the entries it keeps
    (its apps and status as before), then written with its final value."""
    before, after = change.before, change.after
    if change.action == "create":
        created = Step(change, "create", {**after, "enabled": False}, _N_CREATE)
        return [created, Step(change, "put", after, _N_ENABLE)] if after["enabled"] else [created]
    if change.action == "delete":
        return [Step(change, "delete", None, _N_DELETE)]
    kept = sorted(set(before["addresses"]) & set(after["addresses"]))
    cut = {**before, "addresses": kept}
    if same_value(cut, after):  # the change only removes entries: one write, with the cuts
        return [Step(change, "put", after, _N_CUT)]
    steps = []
    if not same_value(cut, before) and (kept or not before["enabled"]):  # never enabled and empty
        steps.append(Step(change, "put", cut, _N_CUT))
    if before["enabled"] and not after["enabled"]:
        phase = _N_DISABLE
    elif after["enabled"] and not before["enabled"]:
        phase = _N_ENABLE
    else:
        phase = _N_FINAL
    return [*steps, Step(change, "put", after, phase)]


def same_value(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal allowlist values, whatever the order of their lists."""
    return {k: sorted(v) if isinstance(v, list) else v for k, v in a.items()} == {
        k: sorted(v) if isinstance(v, list) else v for k, v in b.items()
    }
