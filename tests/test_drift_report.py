"""The drift report: a plan told from the live side, honouring acknowledgements until they expire."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from syrupy.assertion import SnapshotAssertion

from rovo_reconcile.ack import Ack, AckSet
from rovo_reconcile.plan import OrgPlan, Plan, make_plan
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
from rovo_reconcile.render.drift import (
    FORMATS,
    DriftFormat,
    drift_items,
    drift_summary,
    render_drift,
    unmatched_acks,
    unused_acks,
)

TARGET = "atlassian (https://api.atlassian.com)"
TODAY = date(2026, 11, 26)
ACME = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"
GLOBEX = "a4e7d1c2-6b3f-4e8a-9d05-1c7b2f6e8a94"
INITECH = "0f2b9c4d-7e1a-4c3b-8d6e-5a4f3b2c1d0e"
PILOT = "mcp.domain:https://pilot.example.com/**"


def allowlist(
    name: str,
    *addresses: str,
    enabled: bool = True,
    apps: tuple[App, ...] = ("jira", "confluence"),
    bypass: bool = False,
) -> IpAllowlist:
    return IpAllowlist(
        name=name,
        enabled=enabled,
        apps=apps,
        allow_mobile_bypass=bypass,
        addresses=tuple(AddressEntry(address=a) for a in addresses),
    )


def mcp(supported: bool, *domains: str) -> McpSettings:
    return McpSettings(
        allow_atlassian_supported_domains=supported,
        domains=tuple(DomainEntry(pattern=d) for d in domains),
        authentication=Authentication(api_token=False),
    )


def acme() -> OrgPlan:
    """Somebody changed almost everything in Atlassian Administration."""
    policy = OrgPolicy(
        org=Org(id=ACME),
        mcp=mcp(False, "https://app.example-corp.com/**", "https://pilot.example.com/**"),
        ip_allowlists=(
            allowlist("Corporate egress", "198.51.100.7/32", "203.0.113.0/24"),
            allowlist("Office", "192.0.2.0/28"),
        ),
    )
    live = OrgPolicy(
        org=Org(id=ACME),
        mcp=mcp(True, "https://app.example-corp.com/**", "https://rogue.example.net/**"),
        ip_allowlists=(
            allowlist(
                "Corporate egress",
                "192.0.2.99/32",
                "203.0.113.0/24",
                enabled=False,
                apps=("jira", "confluence", "compass"),
            ),
            allowlist("Shadow IT", "100.64.0.0/10"),
        ),
    )
    return make_plan(policy, live, file="policies/acme.yaml")


def globex() -> OrgPlan:
    state = OrgPolicy(org=Org(id=GLOBEX), mcp=mcp(True))
    notes = ("two live allowlists are named 'VPN'; only the first is managed",)
    return make_plan(state, state, file="policies/globex.yaml", notes=notes)


def initech() -> OrgPlan:
    return OrgPlan(
        org_id=INITECH,
        live_fingerprint="",
        changes=(),
        file="policies/initech.yaml",
        error="Admin API: 503 Service Unavailable after 5 attempts",
    )


def ack(org: str, key: str, reason: str, expires: date, line: int) -> Ack:
    return Ack(org=org, key=key, reason=reason, expires=expires, line=line)


@pytest.fixture
def plan() -> Plan:
    return Plan(TARGET, "sha256:0", (acme(), globex(), initech()))


@pytest.fixture
def acks() -> AckSet:
    return AckSet(
        (
            ack(ACME, PILOT, "pilot approved in SEC-123", date(2027, 1, 31), 2),
            ack(ACME, "ip_allowlist:Office", "office move, SEC-99", date(2026, 10, 31), 6),
            ack(GLOBEX, "mcp.domain:https://gone.example.com/**", "trial", date(2027, 1, 1), 10),
            ack(INITECH, PILOT, "unknowable: the org could not be read", date(2027, 1, 1), 14),
            ack(ACME, "ip_allowlist:Corporate egres", "a typo", date(2027, 1, 1), 18),
        ),
        "drift-acks.yaml",
    )


# ------------------------------------------------------------------ snapshots


@pytest.mark.parametrize("fmt", FORMATS)
def test_drift_report_snapshot(
    plan: Plan, acks: AckSet, fmt: DriftFormat, snapshot: SnapshotAssertion
) -> None:
    """The drift report in each format, with drift, an active and an expired ack, and an error."""
    assert render_drift(plan, acks, TODAY, fmt) == snapshot


# ------------------------------------------------------------------ messages


def test_messages_speak_of_the_live_side(plan: Plan) -> None:
    """Each kind of difference is told as what live has or lacks, in the policy's terms."""
    messages = {i.key: i.message for i in drift_items(plan, AckSet(), TODAY)}
    assert messages == {
        "mcp.settings:allowAtlassianSupportedDomains": (
            "live allowAtlassianSupportedDomains is true; the policy says false"
        ),
        PILOT: "live lacks the domain https://pilot.example.com/** that the policy allows",
        "mcp.domain:https://rogue.example.net/**": (
            "live has a domain the policy does not: https://rogue.example.net/**"
        ),
        "ip_allowlist:Corporate egress": (
            'allowlist "Corporate egress" was disabled outside Git; '
            'live allowlist "Corporate egress" covers apps the policy does not: compass; '
            'live allowlist "Corporate egress" has addresses the policy does not: 192.0.2.99/32; '
            'live allowlist "Corporate egress" lacks addresses the policy lists: 198.51.100.7/32'
        ),
        "ip_allowlist:Office": 'the allowlist "Office" is missing from live',
        "ip_allowlist:Shadow IT": 'live has an allowlist the policy does not: "Shadow IT"',
    }


def test_drift_that_opens_access_is_marked_widening(plan: Plan) -> None:
    """Live differences that let more clients in than the policy are flagged, the others not."""
    widens = {i.key for i in drift_items(plan, AckSet(), TODAY) if i.widens}
    assert widens == {
        "mcp.settings:allowAtlassianSupportedDomains",
        "mcp.domain:https://rogue.example.net/**",
        "ip_allowlist:Corporate egress",
    }  # "Office" missing from live is not widening: "Corporate egress" covers its apps


def test_enabled_outside_git() -> None:
    """A live allowlist enabled while the policy keeps it disabled is told as 'enabled outside Git'."""
    policy = OrgPolicy(
        org=Org(id=ACME), ip_allowlists=(allowlist("Lab", "192.0.2.0/24", enabled=False),)
    )
    live = OrgPolicy(org=Org(id=ACME), ip_allowlists=(allowlist("Lab", "192.0.2.0/24"),))
    plan = Plan(TARGET, "sha256:0", (make_plan(policy, live),))
    [item] = drift_items(plan, AckSet(), TODAY)
    assert item.message == 'allowlist "Lab" was enabled outside Git'
    assert not item.widens


# ------------------------------------------------------------------ acknowledgements


def test_acknowledged_items_do_not_count_as_drift(plan: Plan, acks: AckSet) -> None:
    """An active ack moves its item from drifted to acknowledged; the others still count."""
    summary = drift_summary(plan, drift_items(plan, acks, TODAY))
    assert (summary.drifted, summary.acknowledged) == (5, 1)
    without = drift_summary(plan, drift_items(plan, AckSet(), TODAY))
    assert (without.drifted, without.acknowledged) == (6, 0)


def test_expired_ack_counts_again(plan: Plan, acks: AckSet) -> None:
    """After its expiry date an ack no longer applies, and the item says that it expired."""
    office = next(i for i in drift_items(plan, acks, TODAY) if i.key == "ip_allowlist:Office")
    assert office.drifted
    assert office.acknowledged is None
    assert office.expired_ack is not None
    assert office.expired_ack.reason == "office move, SEC-99"
    text = render_drift(plan, acks, TODAY, "text")
    assert "the acknowledgement at drift-acks.yaml:6 expired on 2026-10-31" in text


def test_a_pinned_ack_covers_only_the_live_value_it_names(plan: Plan) -> None:
    """`live` ties an ack to one drift: the same key drifting further counts again."""
    pilot = next(i for i in drift_items(plan, AckSet(), TODAY) if i.key == PILOT)
    assert len(pilot.live) == 12
    pinned = AckSet((Ack(ACME, PILOT, "SEC-123", date(2027, 1, 31), 2, pilot.live),), "a.yaml")
    assert not next(i for i in drift_items(plan, pinned, TODAY) if i.key == PILOT).drifted
    stale = AckSet((Ack(ACME, PILOT, "SEC-123", date(2027, 1, 31), 2, "v" + "0" * 11),), "a.yaml")
    item = next(i for i in drift_items(plan, stale, TODAY) if i.key == PILOT)
    assert item.drifted
    assert item.outgrown_ack is not None
    assert "the acknowledgement at a.yaml:2 was for live v00000000000" in render_drift(
        plan, stale, TODAY, "text"
    )
    assert unused_acks(plan, stale, drift_items(plan, stale, TODAY)) == []


def test_ack_applies_through_its_expiry_day(plan: Plan, acks: AckSet) -> None:
    """`expires` is the last day an ack applies; the next day the item counts as drift."""
    on_the_day = drift_summary(plan, drift_items(plan, acks, date(2027, 1, 31)))
    day_after = drift_summary(plan, drift_items(plan, acks, date(2027, 2, 1)))
    assert (on_the_day.acknowledged, day_after.acknowledged) == (1, 0)
    assert day_after.expired_acks == 2


def test_json_report_counts_and_acknowledgements(plan: Plan, acks: AckSet) -> None:
    """JSON items carry the ack (reason, expires) or null; the summary counts drifted and acknowledged."""
    data = json.loads(render_drift(plan, acks, TODAY, "json"))
    assert data["format_version"] == "1"
    assert data["target"] == TARGET
    pilot = next(i for i in data["items"] if i["key"] == PILOT)
    assert pilot["acknowledged"] == {
        "reason": "pilot approved in SEC-123",
        "expires": "2027-01-31",
        "live": None,
    }
    assert data["summary"]["drifted"] == 5
    assert data["summary"]["acknowledged"] == 1
    assert data["errors"] == [
        {
            "org": INITECH,
            "file": "policies/initech.yaml",
            "error": "Admin API: 503 Service Unavailable after 5 attempts",
        }
    ]


def test_unused_acks_are_reported_only_for_orgs_that_were_read(plan: Plan, acks: AckSet) -> None:
    """An ack whose drift is gone is listed for removal, unless its org could not be read."""
    data = json.loads(render_drift(plan, acks, TODAY, "json"))
    assert [(u["org"], u["line"]) for u in data["unused_acks"]] == [(GLOBEX, 10)]


# ------------------------------------------------------------------ every format


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_names_the_target(plan: Plan, acks: AckSet, fmt: DriftFormat) -> None:
    """Text, JSON and Markdown all say which target was read."""
    assert TARGET in render_drift(plan, acks, TODAY, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_errors_are_reported_as_errors(plan: Plan, fmt: DriftFormat) -> None:
    """An org whose live state could not be read shows its error, not 'no drift'."""
    report = render_drift(plan, AckSet(), TODAY, fmt)
    assert "503 Service Unavailable after 5 attempts" in report
    assert drift_summary(plan, []).errors == 1


def test_no_drift() -> None:
    """When live matches, the report says so and the summary is clean."""
    plan = Plan(TARGET, "sha256:0", (globex(),))
    assert render_drift(plan, AckSet(), TODAY, "text").endswith(
        "No drift. Live matches the policies.\n"
    )
    assert drift_summary(plan, drift_items(plan, AckSet(), TODAY)).clean


def test_markdown_escapes_live_names() -> None:
    """A live allowlist name cannot inject HTML or break the Markdown table."""
    live = OrgPolicy(
        org=Org(id=ACME), ip_allowlists=(allowlist("a|b</td><script>x", "192.0.2.1/32"),)
    )
    plan = Plan(
        TARGET, "sha256:0", (make_plan(OrgPolicy(org=Org(id=ACME), ip_allowlists=()), live),)
    )
    text = render_drift(plan, AckSet(), TODAY, "markdown")
    assert "<script>" not in text
    assert "a&#124;b&#60;/td&#62;&#60;script&#62;x" in text


def test_long_markdown_is_cut_with_a_note(acks: AckSet) -> None:
    """A Markdown report over the limit keeps its summary and whole lines, and says it was cut."""
    orgs = []
    for n in range(200):
        org = Org(id=f"00000000-0000-4000-8000-{n:012d}")
        live = OrgPolicy(
            org=org, mcp=McpSettings(domains=(DomainEntry(pattern=f"https://x{n}.example/**"),))
        )
        orgs.append(make_plan(OrgPolicy(org=org, mcp=McpSettings(domains=())), live))
    plan = Plan(TARGET, "sha256:0", tuple(orgs))
    text = render_drift(plan, acks, TODAY, "markdown", limit=3_000)
    assert len(text) <= 3_000
    assert text.startswith("**rovo-reconcile drift** for target")
    assert text.endswith("the full report is in the job log.\n")
    assert all(line.count("|") in (0, 4) for line in text.splitlines())


def test_unknown_format_is_refused(plan: Plan) -> None:
    """A format outside FORMATS is a programming error, not a silent text report."""
    with pytest.raises(ValueError, match="unknown drift format 'yaml'"):
        render_drift(plan, AckSet(), TODAY, "yaml")


# ------------------------------------------------------------------ acks that match nothing


def test_ack_in_a_section_the_policy_does_not_manage_is_unmatched() -> None:
    """An ack for allowlists in an org whose policy manages none silences nothing: a typo."""
    state = OrgPolicy(org=Org(id=GLOBEX), mcp=mcp(True))
    plan = Plan(TARGET, "sha256:0", (make_plan(state, state),))
    acks = AckSet((ack(GLOBEX, "ip_allowlist:Office", "x", date(2027, 1, 1), 3),), "a.yaml")
    items = drift_items(plan, acks, TODAY)
    [found] = unmatched_acks(plan, acks, items)
    assert found.why == f"the policy of org {GLOBEX} does not manage IP allowlists"
    assert unused_acks(plan, acks, items) == []
    assert "unmatched acknowledgement at a.yaml:3" in render_drift(plan, acks, TODAY, "text")


def test_ack_for_an_org_without_a_policy_is_unmatched_unless_sharded(plan: Plan) -> None:
    """An org no policy names is a typo in a full run; in a shard, another shard may hold it."""
    stray = "00000000-0000-4000-8000-000000000000"
    acks = AckSet((ack(stray, PILOT, "x", date(2027, 1, 1), 3),), "a.yaml")
    items = drift_items(plan, acks, TODAY)
    [found] = unmatched_acks(plan, acks, items)
    assert found.why == f"no policy file is for org {stray}"
    assert unmatched_acks(plan, acks, items, sharded=True) == []
    data = json.loads(render_drift(plan, acks, TODAY, "json", sharded=True))
    assert data["unmatched_acks"] == []
    assert data["unused_acks"] == []


def test_gone_drift_is_unused_not_unmatched(plan: Plan, acks: AckSet) -> None:
    """An ack whose drift has gone is 'unused' (delete it), never reported as a typo."""
    items = drift_items(plan, acks, TODAY)
    assert [a.line for a in unused_acks(plan, acks, items)] == [10]
    assert [u.ack.line for u in unmatched_acks(plan, acks, items)] == [18]


# ------------------------------------------------------------------ autolinks and colour


def test_markdown_shows_domains_and_addresses_in_code_spans(plan: Plan, acks: AckSet) -> None:
    """GitHub autolinks a bare https:// URL; patterns and addresses are code, never &#42; text."""
    text = render_drift(plan, acks, TODAY, "markdown")
    assert "&#42;" not in text
    assert "`https://rogue.example.net/**`" in text
    assert "`192.0.2.99/32`" in text


def test_colour_changes_nothing_but_the_escapes(plan: Plan, acks: AckSet) -> None:
    """The coloured text report, with its ANSI escapes removed, is the plain report."""
    plain = render_drift(plan, acks, TODAY, "text")
    coloured = render_drift(plan, acks, TODAY, "text", color=True)
    assert coloured != plain
    assert "\x1b[31mdrift\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_typo_of_a_key_that_does_not_drift_is_unmatched_with_a_did_you_mean() -> None:
    """A misspelt key of an allowlist the policy has, with no drift anywhere, is a typo, not
    'no longer drifts': it never matched anything."""
    state = OrgPolicy(org=Org(id=GLOBEX), ip_allowlists=(allowlist("Office", "192.0.2.0/28"),))
    plan = Plan(TARGET, "sha256:0", (make_plan(state, state),))
    acks = AckSet((ack(GLOBEX, "ip_allowlist:Ofice", "x", date(2027, 1, 1), 3),), "a.yaml")
    items = drift_items(plan, acks, TODAY)
    [found] = unmatched_acks(plan, acks, items)
    assert (
        found.why == "it is in neither the policy nor the drift; did you mean ip_allowlist:Office?"
    )
    assert unused_acks(plan, acks, items) == []
