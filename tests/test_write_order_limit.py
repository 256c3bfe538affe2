"""The write order near Atlassian's 500 entries per app: no intermediate state may pass it.

Pure, like tests/test_write_order.py: a plan in, steps out, and every state on the way
checked with the same count the emulator enforces (every allowlist covering the app,
disabled ones included).
"""

from __future__ import annotations

from typing import Any

import pytest

from rovo_reconcile.app_limit import MAX_ENTRIES_PER_APP, entries_per_app
from rovo_reconcile.guards import locked_out
from rovo_reconcile.plan import Change
from rovo_reconcile.write_order import NoSafeOrder, Step, allowlist_steps

from .test_write_order import _create, _described, _list, _trace, _update

M = "203.0.113.7/32"
"""A mustAllow address."""


def blocks(count: int, start: int = 0) -> list[str]:
    """`count` distinct public /24 blocks, from the `start`-th on."""
    return [f"52.{n // 256}.{n % 256}.0/24" for n in range(start, start + count)]


def _peak(steps: list[Step], live: dict[str, dict[str, Any]]) -> int:
    """The most entries any app held after any step."""
    return max(max(entries_per_app(s.values()).values(), default=0) for s in _trace(steps, live))


def _delete(value: dict[str, Any]) -> Change:
    return Change("delete", "ip_allowlist", f"ip_allowlist:{value['name']}", value, None, "widens")


def test_far_from_the_limit_the_order_is_still_widen_first() -> None:
    """A list of 10 swapping 5 entries: union first, then the removals, as before."""
    old = _list("Office", *blocks(10))
    new = _list("Office", *blocks(5), *blocks(5, 100))
    steps = allowlist_steps([_update(old, new)], {"Office": old}, [])
    assert [len(s.value["addresses"]) for s in steps if s.value] == [15, 10]


def test_widening_first_would_pass_the_limit_so_the_list_is_cut_first() -> None:
    """450 + 40 entries on Jira; Office swaps 60 of its 450. The union would hold 550
    (with Other, 550 + 40), so Office is first cut to the 390 it keeps, then written whole."""
    office = _list("Office", *blocks(450))
    other = _list("Other", *blocks(40, 1000))
    new = _list("Office", *blocks(390), *blocks(60, 2000))
    live = {"Office": office, "Other": other}
    steps = allowlist_steps([_update(office, new)], live, [])
    assert [len(s.value["addresses"]) for s in steps if s.value] == [390, 450]
    assert _peak(steps, live) == 490


def test_another_list_narrowing_first_makes_room_for_the_union() -> None:
    """Office swaps 60 entries while Other drops 60: the widen-first pass finds room by taking
    Other's removal first, so Office still gets its union (no user is refused on the way)."""
    office = _list("Office", *blocks(400))
    other = _list("Other", *blocks(90, 1000))
    changes = [
        _update(office, _list("Office", *blocks(340), *blocks(60, 2000))),
        _update(other, _list("Other", *blocks(30, 1000))),
    ]
    live = {"Office": office, "Other": other}
    steps = allowlist_steps(changes, live, [])
    assert [(s.change.key, len(s.value["addresses"])) for s in steps if s.value] == [
        ("ip_allowlist:Other", 30),
        ("ip_allowlist:Office", 460),
        ("ip_allowlist:Office", 400),
    ]
    assert _peak(steps, live) <= MAX_ENTRIES_PER_APP


def test_disabled_lists_count_toward_the_limit() -> None:
    """A disabled list of 300 on Jira leaves room for 200: creating 250 more cannot go first."""
    parked = _list("Parked", *blocks(300), enabled=False)
    new = _list("New", *blocks(250, 1000))
    changes = [_create(new), _update(parked, _list("Parked", *blocks(200), enabled=False))]
    live = {"Parked": parked}
    steps = allowlist_steps(changes, live, [])
    assert _described(steps) == ["put Parked off", "create New off", "put New on"]
    assert _peak(steps, live) == 450


def test_a_delete_goes_first_when_only_that_makes_room() -> None:
    """Old (enabled, 300) is replaced by New (300): with New's create first Jira would hold 600.
    Narrowing first deletes Old, then creates New."""
    old = _list("Old", *blocks(300))
    new = _list("New", *blocks(300, 1000))
    steps = allowlist_steps([_create(new), _delete(old)], {"Old": old}, [])
    assert _described(steps) == ["delete Old", "create New off", "put New on"]


def test_the_limit_counts_each_app_on_its_own() -> None:
    """Confluence has room, Jira has not: a list moving from Confluence to Jira widens Jira."""
    jira = _list("Jira", *blocks(400))
    wiki = _list("Wiki", *blocks(150, 1000), apps=("confluence",))
    moved = _list("Wiki", *blocks(150, 1000), apps=("jira",))
    with pytest.raises(NoSafeOrder):  # the final state itself is over: 550 on Jira
        allowlist_steps([_update(wiki, moved)], {"Jira": jira, "Wiki": wiki}, [])
    jira_cut = _list("Jira", *blocks(350))
    steps = allowlist_steps(
        [_update(wiki, moved), _update(jira, jira_cut)], {"Jira": jira, "Wiki": wiki}, []
    )
    assert _peak(steps, {"Jira": jira, "Wiki": wiki}) <= MAX_ENTRIES_PER_APP


def test_nothing_safe_is_refused_before_any_write_naming_the_limit() -> None:
    """Office holds 500 entries with the mustAllow address; the policy moves that address to a
    new list. Creating the new list first passes 500; cutting Office first shuts the address
    out. No order is safe: NoSafeOrder, which apply and plan report as a refusal."""
    office = _list("Office", M, *blocks(499))
    changes = [
        _update(office, _list("Office", *blocks(498))),
        _create(_list("Break glass", M, "198.51.100.0/24")),
    ]
    with pytest.raises(NoSafeOrder) as caught:
        allowlist_steps(changes, {"Office": office}, [M])
    message = str(caught.value)
    assert "within 500 entries" in message
    assert "disabled ones included" in message
    assert "ip_allowlist:Break glass" in message
    assert "ip_allowlist:Office" in message
    assert "first one that removes entries" in message


def test_narrowing_first_never_shuts_must_allow_out() -> None:
    """The cut keeps what both values hold, so a mustAllow address that stays is never dropped."""
    office = _list("Office", M, *blocks(480))
    new = _list("Office", M, *blocks(430), *blocks(50, 2000))
    steps = allowlist_steps([_update(office, new)], {"Office": office}, [M])
    for state in _trace(steps, {"Office": office}):
        assert locked_out(state.values(), [M]) == set()
    assert _peak(steps, {"Office": office}) <= MAX_ENTRIES_PER_APP


def test_an_enabled_list_is_never_cut_to_nothing() -> None:
    """Replacing every entry of an enabled list near the limit: one write, never an empty
    enabled list (it would lock everyone out), and within the limit."""
    office = _list("Office", *blocks(480))
    new = _list("Office", *blocks(480, 1000))
    steps = allowlist_steps([_update(office, new)], {"Office": office}, [])
    assert [len(s.value["addresses"]) for s in steps if s.value] == [480]
