"""explain: the difference between two change sets, or live as planned and live now, in words."""

from __future__ import annotations

from rovo_reconcile.apply import ApplyResult, OrgResult, Outcome
from rovo_reconcile.explain import explain_reviewed, explain_stale, live_as_planned
from rovo_reconcile.plan import Plan, make_plan, state_value
from rovo_reconcile.policy.model import IpAllowlist, Org, OrgPolicy
from rovo_reconcile.render.apply_report import render_apply

HOSTILE = "x\n::warning title=forged::from a live allowlist name"


def allowlist(name: str, *addresses: str) -> IpAllowlist:
    from rovo_reconcile.policy.model import AddressEntry

    return IpAllowlist(
        name=name,
        enabled=True,
        apps=("jira",),
        addresses=tuple(AddressEntry(address=a) for a in addresses),
    )


def policy(*lists: IpAllowlist) -> OrgPolicy:
    return OrgPolicy(org=Org(id="o1"), ip_allowlists=lists)


def test_a_new_change_and_its_cause_are_named() -> None:
    desired = policy(allowlist("Office", "10.0.0.0/8"))
    reviewed = Plan("t", "", (make_plan(desired, policy()),))
    live_now = policy(allowlist(HOSTILE, "10.0.0.0/8"))
    fresh = Plan("t", "", (make_plan(desired, live_now),))
    lines = explain_reviewed(reviewed, fresh)
    assert lines[0] == "org o1: live changed since review (someone changed the org outside Git)"
    assert any("new, not in the reviewed plan" in line for line in lines)
    assert not any(line.lstrip().startswith("::") for line in "\n".join(lines).splitlines())
    assert "frozenset" not in "\n".join(lines)


def test_live_as_planned_undoes_each_change() -> None:
    live = policy(allowlist("Office", "10.0.0.0/8"), allowlist("Old", "11.0.0.0/8"))
    desired = policy(allowlist("Office", "10.0.0.0/8", "12.0.0.0/8"))
    org = make_plan(desired, live)
    assert live_as_planned(org) == state_value(live)
    assert explain_stale(org, live) == ["live changed only in parts this policy does not manage"]
    moved = policy(allowlist("Office", "10.0.0.0/9"), allowlist("Old", "11.0.0.0/8"))
    assert explain_stale(org, moved) == [
        'ipAllowlists: Office.addresses no longer holds "10.0.0.0/8"',
        'ipAllowlists: Office.addresses now also holds "10.0.0.0/9"',
    ]


def test_the_apply_report_keeps_a_hostile_name_on_one_line() -> None:
    org = make_plan(policy(), policy(allowlist(HOSTILE, "10.0.0.0/8")))
    result = ApplyResult("t", [OrgResult("o1", None, [Outcome(org.changes[0], "applied")])])
    text = render_apply(result)
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
