"""The parts of the incremental write order: `guards.Lockouts` answers as `locked_out` does
through any sequence of writes, and a thousand lists cost lookups in proportion to the
writes, not to writes times lists. (That the order itself is the whole-state order is
tests/test_write_order_reference.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile import guards
from rovo_reconcile.guards import Lockouts, locked_out
from rovo_reconcile.plan import Change
from rovo_reconcile.policy.model import APPS
from rovo_reconcile.write_order import allowlist_steps

from .test_write_order_reference import _NAMES, _scenario, _value


def _touched(lockouts: Lockouts, *values: dict[str, Any] | None) -> set[str]:
    return {app for value in values for app in lockouts.restricts(value)}


@settings(max_examples=300, deadline=None)
@given(_scenario(), st.data())
def test_lockouts_follow_locked_out_through_any_sequence_of_writes(
    scenario: Any, data: st.DataObject
) -> None:
    _changes, live, must_allow, kept = scenario
    lockouts = Lockouts(live.values(), must_allow, kept)
    state = dict(live)
    assert lockouts.locked() == locked_out(state.values(), must_allow, kept)
    for _ in range(data.draw(st.integers(0, 6))):
        name = data.draw(st.sampled_from(_NAMES))
        old = state.get(name)
        new = None if data.draw(st.booleans()) else _value(data.draw, name)
        judged = lockouts.locked_if(old, new)
        changed = lockouts.changed(old, new)
        whole_before = locked_out(state.values(), must_allow, kept)
        assert lockouts.locked() == whole_before, "judging a write does not take it"
        after = {k: v for k, v in state.items() if k != name}
        if new is not None:
            after[name] = new
        whole = locked_out(after.values(), must_allow, kept)
        touched = _touched(lockouts, old, new)
        assert judged == {(text, app) for text, app in whole if app in touched}
        assert {pair for pair in whole if pair[1] not in changed} == {
            pair for pair in whole_before if pair[1] not in changed
        }, "an app `changed` leaves out keeps its pairs"
        lockouts.put(old, new)
        state = after
        assert lockouts.locked() == whole


def _plain(name: str, addresses: list[str], app: str = "jira") -> dict[str, Any]:
    return {
        "name": name,
        "enabled": True,
        "apps": [app],
        "allowMobileBypass": False,
        "addresses": addresses,
    }


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(1, id="far from the limit"),
        pytest.param(2, id="unions held back by the limit"),
    ],
)
def test_a_thousand_lists_are_judged_a_list_at_a_time(entries: int) -> None:
    """A thousand lists on five apps each swap their entries for as many new ones, beside a
    break-glass list admitting the mustAllow address. With two entries a list, each app
    holds 401 and the unions reach 500 half-way: from then on most unions wait for room.
    Lookups of near addresses grow with the writes (the whole-state check made one per
    enabled list per candidate write: millions); no clock."""
    must = "91.208.44.10/32"
    live = {"Break glass": {**_plain("Break glass", [must]), "apps": list(APPS)}}
    changes = []
    for i in range(1000):
        name = f"List {i:04d}"
        block = f"52.{i // 256}.{i % 256}"
        app = APPS[i % len(APPS)]
        live[name] = _plain(name, [f"{block}.{j}/32" for j in range(entries)], app)
        after = _plain(name, [f"{block}.{j + 1}/32" for j in range(entries)], app)
        changes.append(
            Change("update", "ip_allowlist", f"ip_allowlist:{name}", live[name], after, "neutral")
        )
    guards._near.cache_clear()
    steps = allowlist_steps(changes, live, [must])
    assert len(steps) == 2000
    lookups = guards._near.cache_info()
    assert lookups.hits + lookups.misses < 50 * len(steps), lookups
