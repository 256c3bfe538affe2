"""The allowlist write order: pure, so each case is a plan in and a list of steps out."""

from __future__ import annotations

from typing import Any

import pytest

from rovo_reconcile.guards import locked_out
from rovo_reconcile.plan import Change
from rovo_reconcile.write_order import NoSafeOrder, Step, allowlist_steps


def _list(
    name: str, *addresses: str, enabled: bool = True, apps: tuple[str, ...] = ("jira",)
) -> dict[str, Any]:
    return {
        "name": name,
        "enabled": enabled,
        "apps": list(apps),
        "allowMobileBypass": False,
        "addresses": list(addresses),
    }


def _create(value: dict[str, Any]) -> Change:
    return Change("create", "ip_allowlist", f"ip_allowlist:{value['name']}", None, value, "narrows")


def _update(before: dict[str, Any], after: dict[str, Any]) -> Change:
    return Change(
        "update", "ip_allowlist", f"ip_allowlist:{before['name']}", before, after, "neutral"
    )


def _trace(steps: list[Step], live: dict[str, dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """The allowlist values after each step."""
    state, states = dict(live), []
    for step in steps:
        name = (step.change.before or step.change.after)["name"]
        if step.value is None:
            state.pop(name)
        else:
            state[name] = step.value
        states.append(dict(state))
    return states


def _described(steps: list[Step]) -> list[str]:
    return [
        f"{s.kind} {(s.change.before or s.change.after)['name']}"
        + ("" if s.value is None else f" {'on' if s.value['enabled'] else 'off'}")
        for s in steps
    ]


def test_the_list_admitting_must_allow_restricts_an_open_app_first() -> None:
    """Jira had no list; Alpha [18/8] and Beta [52.14/16] arrive: Beta must be enabled first."""
    alpha, beta = _list("Alpha", "18.0.0.0/8"), _list("Beta", "52.14.0.0/16")
    steps = allowlist_steps([_create(alpha), _create(beta)], {}, ["52.14.1.1/32"])
    assert _described(steps) == [
        "create Alpha off",
        "create Beta off",
        "put Beta on",
        "put Alpha on",
    ]
    for state in _trace(steps, {}):
        assert locked_out(state.values(), ["52.14.1.1/32"]) == set()


def test_a_replacement_is_enabled_before_the_old_list_is_disabled() -> None:
    old, other = _list("Old", "52.14.0.0/16"), _list("Other", "18.0.0.0/8")
    new = _list("New", "52.14.0.0/16")
    changes = [_create(new), _update(old, {**old, "enabled": False})]
    steps = allowlist_steps(changes, {"Old": old, "Other": other}, ["52.14.1.1/32"])
    assert _described(steps) == ["create New off", "put New on", "put Old off"]


def test_an_enabled_list_is_widened_before_it_is_narrowed() -> None:
    """Old [A, B] -> Old [B] + New [A]: union first (no-op here), New on, then Old narrowed."""
    old = _list("Old", "1.2.3.0/24", "5.6.7.0/24")
    new = _list("New", "1.2.3.0/24")
    changes = [_create(new), _update(old, {**old, "addresses": ["5.6.7.0/24"]})]
    steps = allowlist_steps(changes, {"Old": old}, ["1.2.3.4/32"])
    assert _described(steps) == ["create New off", "put New on", "put Old on"]


def test_no_safe_order_is_refused_before_any_write() -> None:
    """Two mustAllow addresses, each admitted by one of two new lists on an open app: whichever
    list goes first shuts the other address out, so there is no safe order."""
    alpha, beta = _list("Alpha", "18.0.0.0/8"), _list("Beta", "52.14.0.0/16")
    with pytest.raises(NoSafeOrder, match="ip_allowlist:Alpha, ip_allowlist:Beta"):
        allowlist_steps([_create(alpha), _create(beta)], {}, ["18.1.1.1/32", "52.14.1.1/32"])


def test_an_address_already_shut_out_does_not_block_the_order() -> None:
    """Live already shuts 9.9.9.9 out of jira; that is not this run's doing, and writes go on."""
    live = {"Office": _list("Office", "18.0.0.0/8")}
    change = _update(live["Office"], _list("Office", "18.0.0.0/8", "52.14.0.0/16"))
    steps = allowlist_steps([change], live, ["9.9.9.9/32"])
    assert _described(steps) == ["put Office on"]


def test_kept_attachments_count_as_coverage() -> None:
    """A list partly attached to jira stays so: narrowing it is judged on jira too."""
    live = {"Office": _list("Office", "52.14.0.0/16", "18.0.0.0/8", apps=("confluence",))}
    narrowed = _list("Office", "18.0.0.0/8", apps=("confluence",))
    vpn = _list("VPN", "52.14.0.0/16", apps=("confluence",))
    changes = [_update(live["Office"], narrowed), _create(vpn)]
    with pytest.raises(NoSafeOrder):
        allowlist_steps(changes, live, ["52.14.1.1/32"], {"Office": ("jira",)})
    assert _described(allowlist_steps(changes, live, ["52.14.1.1/32"])) == [
        "create VPN off",
        "put VPN on",
        "put Office on",
    ]


def test_the_steps_end_in_the_planned_state() -> None:
    """Whatever the order, the last state is every change's `after`."""
    live = {
        "A": _list("A", "1.0.0.0/8"),
        "B": _list("B", "2.0.0.0/8", enabled=False),
        "C": _list("C", "3.0.0.0/8"),
    }
    changes = [
        _update(live["A"], _list("A", "1.0.0.0/8", "4.0.0.0/8", apps=("jira", "confluence"))),
        _update(live["B"], _list("B", "2.0.0.0/8")),
        Change("delete", "ip_allowlist", "ip_allowlist:C", live["C"], None, "widens"),
        _create(_list("D", "5.0.0.0/8", enabled=False)),
    ]
    final = _trace(allowlist_steps(changes, live, []), live)[-1]
    assert final == {
        "A": changes[0].after,
        "B": changes[1].after,
        "D": {**changes[3].after, "enabled": False},
    }
