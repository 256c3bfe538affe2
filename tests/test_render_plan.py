"""The plan renderers: text (terraform-like), JSON and the Markdown PR comment.

The fixture plans are built with the real planner from hand-written desired and
live states, so the snapshots show what users will see for real changes.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from rovo_reconcile.mcp_state import McpState
from rovo_reconcile.plan import OrgPlan, Plan, fingerprint, make_plan
from rovo_reconcile.plan_json import dump_plan
from rovo_reconcile.policy.model import (
    AddressEntry,
    App,
    Authentication,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)
from rovo_reconcile.render.plan_markdown import MIN_LIMIT, render_plan_markdown
from rovo_reconcile.render.plan_text import render_plan_text

TARGET = "sandbox (.rovo-reconcile/sandbox.db)"
ACME = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"
GLOBEX = "a4e7d1c2-6b3f-4e8a-9d05-1c7b2f6e8a94"
INITECH = "0f2b9c4d-7e1a-4c3b-8d6e-5a4f3b2c1d0e"
UMBRELLA = "3c8e1f7a-2b4d-4e6f-9a1c-7d5b3e9f2a60"
HOOLI = "9d7c5b3a-1e2f-4a6b-8c0d-2e4f6a8b0c1d"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def allowlist(
    name: str,
    *addresses: str,
    enabled: bool = True,
    apps: tuple[App, ...] = ("jira",),
    bypass: bool = False,
) -> IpAllowlist:
    return IpAllowlist(
        name=name,
        enabled=enabled,
        apps=apps,
        allow_mobile_bypass=bypass,
        addresses=tuple(AddressEntry(address=a) for a in addresses),
    )


def mcp(supported: bool, *domains: str, api_token: bool = False) -> McpSettings:
    return McpSettings(
        allow_atlassian_supported_domains=supported,
        domains=tuple(DomainEntry(pattern=d) for d in domains),
        authentication=Authentication(api_token=api_token),
    )


def acme() -> OrgPlan:
    """MCP changes of every kind, an allowlist update, a create and a delete."""
    desired = OrgPolicy(
        org=Org(id=ACME),
        mcp=mcp(False, "https://app.example-corp.com/**", "https://pilot.example.com/**"),
        ip_allowlists=(
            allowlist(
                "Corporate egress",
                "198.51.100.7/32",
                "203.0.113.0/24",
                apps=("jira", "confluence", "rovo"),
                bypass=True,
            ),
            allowlist("Office", "192.0.2.0/28", apps=("jira", "confluence")),
        ),
    )
    live = OrgPolicy(
        org=Org(id=ACME),
        mcp=mcp(True, "https://app.example-corp.com/**", "https://old.example.com/**"),
        ip_allowlists=(
            allowlist(
                "Corporate egress",
                "192.0.2.99/32",
                "203.0.113.0/24",
                apps=("jira", "confluence", "compass"),
            ),
            allowlist("Legacy VPN", "198.18.0.0/15", "100.64.0.0/10"),
        ),
    )
    sources = {
        "mcp.settings:allowAtlassianSupportedDomains": "policies/acme.yaml:7",
        "mcp.domain:https://pilot.example.com/**": "policies/acme.yaml:10",
        "ip_allowlist:Corporate egress": "policies/acme.yaml:15",
        "ip_allowlist:Office": "policies/acme.yaml:24",
    }
    return make_plan(desired, live, sources, file="policies/acme.yaml")


def globex() -> OrgPlan:
    """Widening updates only: an allowlist disabled and API tokens turned on."""
    desired = OrgPolicy(
        org=Org(id=GLOBEX),
        mcp=McpSettings(authentication=Authentication(api_token=True)),
        ip_allowlists=(allowlist("Contractors", "192.0.2.128/25", enabled=False),),
    )
    live = OrgPolicy(
        org=Org(id=GLOBEX),
        mcp=mcp(True, api_token=False),
        ip_allowlists=(allowlist("Contractors", "192.0.2.128/25"),),
    )
    sources = {
        "mcp.settings:authentication.apiToken": "policies/globex.yaml:9",
        "ip_allowlist:Contractors": "policies/globex.yaml:12",
    }
    return make_plan(desired, live, sources, file="policies/globex.yaml")


def initech_failed() -> OrgPlan:
    return OrgPlan(
        org_id=INITECH,
        live_fingerprint="",
        changes=(),
        file="policies/initech.yaml",
        error="Admin API: 401 Unauthorized (check the API key's scopes)",
    )


def umbrella_notes() -> OrgPlan:
    """No changes the API can make, but the MCP settings must be set by hand (a 404)."""
    state = OrgPolicy(org=Org(id=UMBRELLA), ip_allowlists=(allowlist("HQ", "203.0.113.0/24"),))
    step = (
        "Atlassian Administration > Apps > AI settings > Rovo MCP server: "
        'deselect "Allow Atlassian supported domains"'
    )
    planned = make_plan(state, state, file="policies/umbrella.yaml")
    return replace(planned, mcp=McpState("manual", "unavailable", (step,)))


def hooli_unchanged() -> OrgPlan:
    state = OrgPolicy(org=Org(id=HOOLI), mcp=mcp(True, "https://ai.hooli.example/**"))
    return make_plan(state, state, file="policies/hooli.yaml")


def plan_of(*orgs: OrgPlan) -> Plan:
    return Plan(TARGET, fingerprint([o.desired for o in orgs]), orgs)


@pytest.fixture
def plan() -> Plan:
    return plan_of(acme(), globex(), initech_failed(), umbrella_notes(), hooli_unchanged())


def many_orgs(count: int) -> Plan:
    """`count` orgs, each adding a widening domain and replacing an address."""
    orgs = []
    for n in range(count):
        org_id = f"00000000-0000-4000-8000-{n:012d}"
        desired = OrgPolicy(
            org=Org(id=org_id),
            mcp=McpSettings(domains=(DomainEntry(pattern=f"https://mcp{n}.example.com/**"),)),
            ip_allowlists=(allowlist("Office", f"198.51.100.{n % 250}/32"),),
        )
        live = OrgPolicy(
            org=Org(id=org_id),
            mcp=McpSettings(domains=()),
            ip_allowlists=(allowlist("Office", "192.0.2.1/32"),),
        )
        sources = {f"mcp.domain:https://mcp{n}.example.com/**": f"policies/org-{n:03d}.yaml:8"}
        orgs.append(make_plan(desired, live, sources, file=f"policies/org-{n:03d}.yaml"))
    return plan_of(*orgs)


# ------------------------------------------------------------------ snapshots


def test_text_plan_snapshot(plan: Plan, snapshot: SnapshotAssertion) -> None:
    """The text plan, colour off, as a reviewer reads it."""
    assert render_plan_text(plan) == snapshot


def test_json_plan_snapshot(plan: Plan, snapshot: SnapshotAssertion) -> None:
    """The JSON plan file is byte-stable and carries every field of DESIGN.md section 7."""
    assert dump_plan(plan) == snapshot


def test_markdown_plan_snapshot(plan: Plan, snapshot: SnapshotAssertion) -> None:
    """The PR comment: summary, widening table, then one collapsed block per org."""
    assert render_plan_markdown(plan) == snapshot


def test_truncated_markdown_snapshot(snapshot: SnapshotAssertion) -> None:
    """Over the limit, per-org details are cut from the end, and the note says how many."""
    text = render_plan_markdown(many_orgs(8), limit=4_000)
    assert len(text) <= 4_000
    assert text.count("<details>") == 4
    assert "the details of 4 orgs were cut" in text
    assert text == snapshot


# ------------------------------------------------------------------ text plan


def test_text_plan_has_no_escape_codes_without_color(plan: Plan) -> None:
    """color=False output is plain text: not one ANSI escape sequence."""
    assert "\x1b" not in render_plan_text(plan, color=False)


def test_text_plan_colours_symbols_and_widening(plan: Plan) -> None:
    """color=True paints + green, ~ yellow, - red and WIDENS bold red, and nothing else differs."""
    coloured = render_plan_text(plan, color=True)
    assert "\x1b[32m+\x1b[0m mcp.domain https://pilot.example.com/**" in coloured
    assert "\x1b[33m~\x1b[0m ip_allowlist" in coloured
    assert "\x1b[31m-\x1b[0m mcp.domain https://old.example.com/**" in coloured
    assert "\x1b[1;31m[WIDENS]\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == render_plan_text(plan)


def test_text_plan_names_the_target_first(plan: Plan) -> None:
    """The first line says which target the plan is for."""
    assert render_plan_text(plan).splitlines()[0] == f"rovo-reconcile plan for target {TARGET}"


def test_text_plan_summary_counts(plan: Plan) -> None:
    """The last line counts creates, updates, deletes and widening changes."""
    last = render_plan_text(plan).splitlines()[-1]
    assert last == (
        "Plan: 2 to create, 4 to update, 2 to delete; 5 widen access. 1 org could not be planned."
        " MCP: 1 manual step pending in 1 org."
    )


def test_text_plan_without_changes() -> None:
    """A plan with nothing to do says so, per org and at the end."""
    text = render_plan_text(plan_of(hooli_unchanged()))
    assert "  no changes\n" in text
    assert text.endswith("No changes. Live matches the policies.\n")


def test_text_plan_escapes_terminal_control_characters() -> None:
    """A live allowlist name cannot clear the screen or reverse text in the reviewer's terminal."""
    name = "evil\x1b[2J\u202eName"
    live = OrgPolicy(org=Org(id=ACME), ip_allowlists=(allowlist(name, "192.0.2.1/32"),))
    org = make_plan(OrgPolicy(org=Org(id=ACME), ip_allowlists=()), live)
    text = render_plan_text(plan_of(org))
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert '- ip_allowlist "evil\\u001b[2J\\u202eName"' in text


def test_text_plan_update_lists_only_what_changed() -> None:
    """An allowlist update shows the changed fields, additions before removals."""
    desired = OrgPolicy(
        org=Org(id=ACME), ip_allowlists=(allowlist("Office", "192.0.2.0/28", "198.51.100.0/24"),)
    )
    live = OrgPolicy(
        org=Org(id=ACME), ip_allowlists=(allowlist("Office", "192.0.2.0/28", "203.0.113.9/32"),)
    )
    text = render_plan_text(plan_of(make_plan(desired, live)))
    assert "      addresses:\n        + 198.51.100.0/24\n        - 203.0.113.9/32\n" in text
    assert "enabled:" not in text
    assert "apps:" not in text


# ------------------------------------------------------------------ markdown


def test_markdown_starts_with_summary_and_target(plan: Plan) -> None:
    """The comment's first line counts the changes and names the target."""
    first = render_plan_markdown(plan).splitlines()[0]
    assert first.startswith(f"**rovo-reconcile plan** for target `{TARGET}`: 2 to create")
    assert "**5 widen access**" in first


def test_markdown_calls_out_widening_before_details(plan: Plan) -> None:
    """Every widening change is in the table above the first per-org block."""
    text = render_plan_markdown(plan)
    table, _, details = text.partition("### Changes by org")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 5  # the header and the widening changes
    assert "`+ mcp.domain https://pilot.example.com/**` | `policies/acme.yaml:10`" in table
    assert "<details>" in details


def test_markdown_escapes_a_malicious_name() -> None:
    """A name cannot close <details>, open a <script>, end a fence, split a table or run code."""
    name = "x</details><script>alert(1)</script>`|```"
    desired = OrgPolicy(org=Org(id=ACME), ip_allowlists=(allowlist(name, "192.0.2.1/32"),))
    live = OrgPolicy(
        org=Org(id=ACME), ip_allowlists=(allowlist(name, "192.0.2.1/32", "0.0.0.1/32"),)
    )
    text = render_plan_markdown(plan_of(make_plan(desired, live)))
    assert "<script>" not in text
    assert text.count("</details>") == text.count("<details>") == 1
    assert '"x\\u003c/details\\u003e\\u003cscript\\u003ealert(1)' in text
    assert "\\u0060\\u007c\\u0060\\u0060\\u0060" in text  # backticks and the pipe, escaped


def test_markdown_fence_outlasts_backticks_in_live_values() -> None:
    """A live domain full of backticks cannot close the ```diff fence early."""
    live = OrgPolicy(
        org=Org(id=ACME), mcp=McpSettings(domains=(DomainEntry(pattern="https://a/````"),))
    )
    desired = OrgPolicy(org=Org(id=ACME), mcp=McpSettings(domains=()))
    text = render_plan_markdown(plan_of(make_plan(desired, live)))
    assert "`````diff\n- mcp.domain https://a/````" in text


def test_markdown_without_changes() -> None:
    """An empty plan is one short line."""
    text = render_plan_markdown(plan_of(hooli_unchanged()))
    assert text == (
        f"**rovo-reconcile plan** for target `{TARGET}`: no changes, live matches the policies "
        "(1 org, 0 with changes).\n"
    )


def test_markdown_keeps_summary_and_clips_widening_when_it_alone_is_too_long() -> None:
    """With more widening rows than fit, the table is clipped with a note and details are all cut."""
    text = render_plan_markdown(many_orgs(60), limit=MIN_LIMIT)
    assert len(text) <= MIN_LIMIT
    assert text.startswith("**rovo-reconcile plan**")
    assert "more widening changes are not listed here" in text
    assert "the details of 60 orgs were cut" in text


def test_markdown_default_limit_holds_for_a_huge_plan() -> None:
    """Thousands of orgs still make a comment GitHub accepts."""
    text = render_plan_markdown(many_orgs(1_500))
    assert len(text) <= 65_000
    assert "were cut to stay under GitHub's comment size limit" in text


def test_markdown_refuses_a_limit_too_small_for_the_summary() -> None:
    """A limit below MIN_LIMIT is a programming error, not a silently broken comment."""
    with pytest.raises(ValueError, match="at least"):
        render_plan_markdown(many_orgs(1), limit=100)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 80), limit=st.integers(MIN_LIMIT, 20_000))
def test_markdown_never_exceeds_the_limit(count: int, limit: int) -> None:
    """Whatever the plan size and limit, the comment fits and every <details> is closed."""
    text = render_plan_markdown(many_orgs(count), limit=limit)
    assert len(text) <= limit
    assert text.count("<details>") == text.count("</details>")
    assert text.count("```diff") * 2 == text.count("```")
