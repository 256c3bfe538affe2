"""The write order (with its 500-entry limit pass) gives the same steps, in the same order,
with the same refusals, as the plain whole-state greedy order (kept here as the reference)
on generated plans within the limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.guards import locked_out
from rovo_reconcile.plan import Change
from rovo_reconcile.policy.model import APPS
from rovo_reconcile.write_order import NoSafeOrder, Step, _steps, allowlist_steps


def _reference(
    changes: Sequence[Change],
    live: Mapping[str, dict[str, Any]],
    must_allow: Sequence[str],
    kept_apps: Mapping[str, Sequence[str]] | None = None,
) -> list[Step]:
    """`allowlist_steps` as it was: every candidate write judged on the whole state."""
    queues = [_steps(c) for c in changes if c.resource == "ip_allowlist"]
    state = {name: dict(value) for name, value in live.items()}
    tolerated = locked_out(state.values(), must_allow, kept_apps)
    ordered: list[Step] = []
    while any(queues):
        heads = sorted((queue[0].phase, index) for index, queue in enumerate(queues) if queue)
        for _, index in heads:
            step = queues[index][0]
            name = (step.change.before or step.change.after)["name"]
            after = dict(state)
            if step.value is None:
                after.pop(name, None)
            else:
                after[name] = step.value
            if locked_out(after.values(), must_allow, kept_apps) <= tolerated:
                break
        else:
            waiting = ", ".join(sorted({q[0].change.key for q in queues if q}))
            raise NoSafeOrder(
                f"no order of the writes to {waiting} keeps every mustAllow address admitted "
                "at each step; apply the change in two smaller plans"
            )
        ordered.append(queues[index].pop(0))
        state = after
    return ordered


_ADDRESSES = [
    "10.0.0.0/8",
    "10.1.0.0/24",
    "10.1.1.0/24",
    "10.1.2.3/32",
    "52.0.0.0/8",
    "52.1.1.1/32",
    "192.0.2.0/24",
    "not-an-address",
]
_MUST_ALLOW = ["10.1.2.3", "52.1.1.1/32", "10.1.0.0/23", "198.51.100.7", "nonsense"]
_NAMES = ["A", "B", "C", "D", "E", "F"]


# Built once: constructing and validating strategies inside each draw was most of this
# test's CPU (the code under test a few per cent); the drawn values are the same.
_NAME_SETS = st.sets(st.sampled_from(_NAMES))
_APP_SETS = st.lists(st.booleans(), min_size=len(APPS), max_size=len(APPS)).map(
    lambda bits: [app for app, bit in zip(APPS, bits, strict=True) if bit]
)
_FIELDS = st.tuples(
    st.booleans(), _APP_SETS, st.booleans(), st.sets(st.sampled_from(_ADDRESSES), max_size=4)
)
_MUST_ALLOWS = st.lists(st.sampled_from(_MUST_ALLOW), min_size=1, max_size=3, unique=True)
_KEPT = (
    st.dictionaries(
        st.sampled_from(_NAMES),
        st.lists(st.sampled_from([*APPS, "resource r-1"]), min_size=1, max_size=2),
        max_size=2,
    )
    | st.none()
)


def _value(draw: st.DrawFn, name: str) -> dict[str, Any]:
    enabled, apps, bypass, addresses = draw(_FIELDS)
    return {
        "name": name,
        "enabled": enabled,
        "apps": apps,
        "allowMobileBypass": bypass,
        "addresses": sorted(addresses),
    }


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[Change], dict[str, dict[str, Any]], list[str], Any]:
    live_names = draw(_NAME_SETS)
    wanted_names = draw(_NAME_SETS)
    live = {name: _value(draw, name) for name in sorted(live_names)}
    wanted = {name: _value(draw, name) for name in sorted(wanted_names)}
    changes = []
    for name in sorted(live_names | wanted_names):
        before, after = live.get(name), wanted.get(name)
        if before == after:
            continue
        action = "create" if before is None else "delete" if after is None else "update"
        changes.append(
            Change(action, "ip_allowlist", f"ip_allowlist:{name}", before, after, "neutral")
        )
    changes = draw(st.permutations(changes))
    return changes, live, draw(_MUST_ALLOWS), draw(_KEPT)


def _outcome(function: Any, *args: Any) -> Any:
    try:
        return [(s.change.key, s.kind, s.value, s.phase) for s in function(*args)]
    except NoSafeOrder as e:
        return str(e)


@settings(max_examples=600, deadline=None)
@given(_scenario())
def test_the_incremental_order_is_the_whole_state_order(scenario: Any) -> None:
    changes, live, must_allow, kept = scenario
    assert _outcome(allowlist_steps, changes, live, must_allow, kept) == _outcome(
        _reference, changes, live, must_allow, kept
    )
