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
admitted wherever it was admitted at the start. Widening first matters for
ordinary addresses; the check matters when restricting an app that had no
enabled list, or swapping one list for another, where only one order is safe.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
    """Every remaining write would shut a `mustAllow` address out on the way."""


def allowlist_steps(
    changes: Sequence[Change],
    live: Mapping[str, dict[str, Any]],
    must_allow: Sequence[str],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> list[Step]:
    """The allowlist writes for `changes`, ordered so no step shuts `must_allow` out.

    `live` holds the current allowlist values by name; `kept_apps` the apps each
    live list stays attached to whatever is written (see `guards.locked_out`).
    """
    queues = [_steps(c) for c in changes if c.resource == "ip_allowlist"]
    lockouts = Lockouts({name: dict(value) for name, value in live.items()}, must_allow, kept_apps)
    tolerated = lockouts.locked()  # already shut out: not ours
    # Each round takes the first head, in (phase, queue) order, whose write keeps `tolerated`
    # a bound: the apps it does not touch keep their pairs, which are within it already.
    heads = [(queue[0].phase, index) for index, queue in enumerate(queues) if queue]
    heapq.heapify(heads)
    ordered: list[Step] = []
    while heads:
        tried: list[tuple[int, int]] = []
        while heads:
            head = heapq.heappop(heads)
            step = queues[head[1]][0]
            if lockouts.locked_if(_name(step), step.value) <= tolerated:
                break
            tried.append(head)
        else:
            waiting = ", ".join(sorted({queues[index][0].change.key for _, index in tried}))
            raise NoSafeOrder(
                f"no order of the writes to {waiting} keeps every mustAllow address admitted "
                "at each step; apply the change in two smaller plans"
            )
        for other in tried:
            heapq.heappush(heads, other)
        queue = queues[head[1]]
        ordered.append(queue.pop(0))
        lockouts.put(_name(step), step.value)
        if queue:
            heapq.heappush(heads, (queue[0].phase, head[1]))
    return ordered


def _name(step: Step) -> str:
    return str((step.change.before or step.change.after)["name"])


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


def same_value(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal allowlist values, whatever the order of their lists."""
    return {k: sorted(v) if isinstance(v, list) else v for k, v in a.items()} == {
        k: sorted(v) if isinstance(v, list) else v for k, v in b.items()
    }
