"""The MCP state of a planned org (`mcp_state`): how it is decided, and that it leaves the plan
file compatible (format_version 1, fields added) and the changes digest alone."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rovo_reconcile.clickpath import manual_steps
from rovo_reconcile.errors import UsageError
from rovo_reconcile.mcp_state import McpLive, McpState, manual_mcp, unavailable_note
from rovo_reconcile.plan import Plan, fingerprint, make_plan
from rovo_reconcile.plan_json import dump_plan, load_plan
from rovo_reconcile.policy.model import (
    AddressEntry,
    Authentication,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)

ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"
OFFICE = IpAllowlist(
    name="Office", enabled=True, apps=("jira",), addresses=(AddressEntry(address="52.14.0.0/16"),)
)
MCP = McpSettings(
    allow_atlassian_supported_domains=False,
    domains=(DomainEntry(pattern="https://app.example.com/**"),),
    authentication=Authentication(api_token=False),
)
DESIRED = OrgPolicy(org=Org(id=ORG), mcp=MCP, ip_allowlists=(OFFICE,))


def test_a_policy_without_mcp_is_unmanaged_whatever_the_read() -> None:
    desired = DESIRED.model_copy(update={"mcp": None})
    for live in ("read", "unavailable", "not-read"):
        state, planned, notes = manual_mcp(desired, live, ("n",), manual_steps)
        assert state == McpState("unmanaged", live)
        assert state.pending == 0
        assert state.headline is None
        assert planned == desired
        assert notes == ("n",)


def test_mcp_read_through_the_api_is_planned_as_before() -> None:
    state, planned, _ = manual_mcp(DESIRED, "read", (), manual_steps)
    assert state == McpState("api", "read")
    assert planned.mcp == MCP


@pytest.mark.parametrize(
    ("live", "headline"),
    [
        ("unavailable", "MCP settings: not readable through any API; 3 manual steps"),
        ("not-read", "MCP settings: not read (--mcp manual); 3 manual steps"),
    ],
)
def test_mcp_not_read_becomes_manual_steps_and_leaves_the_plan(
    live: McpLive, headline: str
) -> None:
    notes = (unavailable_note(ORG), "another note")
    state, planned, kept = manual_mcp(DESIRED, live, notes, manual_steps)
    assert state.status == "manual"
    assert state.pending == 3
    assert state.headline == headline
    assert planned.mcp is None  # nothing to compare or write
    assert planned.ip_allowlists == DESIRED.ip_allowlists
    assert kept == ("another note",)  # the 404 note is said by the state instead


def _plan(mcp: McpState | None) -> Plan:
    live = OrgPolicy(org=Org(id=ORG), ip_allowlists=())
    desired = DESIRED.model_copy(update={"mcp": None})
    org = replace(make_plan(desired, live, file="p.yaml"), mcp=mcp)
    return Plan("sandbox (x)", fingerprint([org.desired]), (org,))


def test_manual_steps_are_not_in_the_changes_digest() -> None:
    steps = tuple(manual_steps(MCP))
    assert _plan(McpState("manual", "unavailable", steps)).changes_digest == (
        _plan(None).changes_digest
    )


def test_the_plan_file_round_trips_the_state_and_reads_files_written_before_it() -> None:
    plan = _plan(McpState("manual", "not-read", tuple(manual_steps(MCP))))
    text = dump_plan(plan)
    assert json.loads(text)["format_version"] == "1"
    assert load_plan(text, "plan.json").orgs[0].mcp == plan.orgs[0].mcp
    old = json.loads(text)
    del old["orgs"][0]["mcp"]  # a file from before the field
    assert load_plan(json.dumps(old), "old.json").orgs[0].mcp is None


def test_a_damaged_state_in_a_plan_file_is_a_usage_error() -> None:
    data = json.loads(dump_plan(_plan(McpState("api", "read"))))
    data["orgs"][0]["mcp"] = {"status": "sometimes", "live": "read", "manual_steps": []}
    with pytest.raises(UsageError, match="unknown status 'sometimes'"):
        load_plan(json.dumps(data), "plan.json")
