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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rovo_reconcile.app_limit import (
    LIMIT_WORDS,
    MAX_ENTRIES_PER_APP,
    entries_per_app,
    grown_past_limit,
)
from rovo_reconcile.guards import locked_out
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


class _Order:
    """One greedy pass: each time, the first head in phase order whose result is safe."""

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        must_allow: Sequence[str],
        kept_apps: Mapping[str, Sequence[str]] | None,
    ) -> None:
        self.state = {name: dict(value) for name, value in live.items()}
        self.must_allow = must_allow
        self.kept_apps = kept_apps
        self.tolerated = locked_out(self.state.values(), must_allow, kept_apps)  # not ours
        self.limited = ""
        """The first write this pass passed over for the entry limit, described; "" if none."""
        self.waiting = ""
        """The changes left when the pass found no safe step."""

    def run(self, queues: list[list[Step]]) -> list[Step]:
        ordered: list[Step] = []
        counts = entries_per_app(self.state.values(), self.kept_apps)
        while any(queues):
            heads = sorted((queue[0].phase, index) for index, queue in enumerate(queues) if queue)
            for _, index in heads:
                step = queues[index][0]
                after = _apply(self.state, step)
                if (
                    not locked_out(after.values(), self.must_allow, self.kept_apps)
                    <= self.tolerated
                ):
                    continue
                after_counts = entries_per_app(after.values(), self.kept_apps)
                grown = grown_past_limit(counts, after_counts)
                if grown:
                    self.limited = self.limited or _limit_words(step, grown)
                    continue
                break
            else:
                self.waiting = ", ".join(sorted({q[0].change.key for q in queues if q}))
                raise NoSafeOrder(
                    f"no order of the writes to {self.waiting} keeps every mustAllow address "
                    "admitted at each step; apply the change in two smaller plans"
                )
            ordered.append(queues[index].pop(0))
            self.state, counts = after, after_counts
        return ordered


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


def _apply(state: Mapping[str, dict[str, Any]], step: Step) -> dict[str, dict[str, Any]]:
    name = (step.change.before or step.change.after)["name"]
    after = dict(state)
    if step.value is None:
        after.pop(name, None)
    else:
        after[name] = step.value
    return after


def same_value(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal allowlist values, whatever the order of their lists."""
    return {k: sorted(v) if isinstance(v, list) else v for k, v in a.items()} == {
        k: sorted(v) if isinstance(v, list) else v for k, v in b.items()
    }
