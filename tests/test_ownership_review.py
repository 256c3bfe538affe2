"""Review of ownership per list (issue 8): additive lists everywhere a plan's live state is
reconstructed, so nothing reports another team's entries as a change."""

from __future__ import annotations

from rovo_reconcile.explain import explain_stale, live_as_planned
from rovo_reconcile.plan import make_plan, state_value

from .test_ownership import LIVE, _policy


def test_a_stale_additive_plan_does_not_report_its_unmanaged_entries_as_live_changes() -> None:
    """The stale-plan explanation rebuilds live as planned from the plan: the ownership
    markers are not live state, and the unmanaged entries were in live all along. With live
    unchanged, nothing is reported as changed."""
    desired = _policy(["https://a.example.com/**"], ["198.51.100.0/24"], "additive")
    plan = make_plan(desired, LIVE)
    assert plan.unmanaged  # the live entries it does not list
    planned, live = live_as_planned(plan), state_value(LIVE)
    for state in (planned, live):
        state["ipAllowlists"][0]["addresses"].sort()  # a set: its order is not state
    assert planned == live
    assert explain_stale(plan, LIVE) == ["live changed only in parts this policy does not manage"]
