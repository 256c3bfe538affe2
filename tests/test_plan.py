"""The pure planner: examples for each effect, then properties over generated states."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.plan import Change, effective_policy, make_plan, policy_from_state, state_value
from rovo_reconcile.policy.model import (
    APPS,
    AddressEntry,
    Authentication,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)

ORG = Org(id="org-1")


def _allowlist(
    name: str,
    *addresses: str,
    enabled: bool = True,
    apps: tuple[str, ...] = ("jira",),
    bypass: bool = False,
) -> IpAllowlist:
    return IpAllowlist(
        name=name,
        enabled=enabled,
        apps=apps,  # type: ignore[arg-type]
        allow_mobile_bypass=bypass,
        addresses=tuple(AddressEntry(address=a) for a in addresses),
    )


def _policy(
    *allowlists: IpAllowlist, mcp: McpSettings | None = None, manage_lists: bool = True
) -> OrgPolicy:
    return OrgPolicy(org=ORG, mcp=mcp, ip_allowlists=allowlists if manage_lists else None)


def _effects(desired: OrgPolicy, live: OrgPolicy) -> list[tuple[str, str, str]]:
    return [(c.action, c.key, c.effect) for c in make_plan(desired, live).changes]


def test_identical_states_plan_nothing() -> None:
    """plan(d, d) is empty."""
    state = _policy(
        _allowlist("Office", "1.2.3.0/24"), mcp=McpSettings(allow_atlassian_supported_domains=True)
    )
    assert make_plan(state, state).changes == ()


def test_absent_sections_are_not_managed() -> None:
    """A policy without mcp or ipAllowlists never touches them, whatever live holds."""
    live = _policy(
        _allowlist("Office", "1.2.3.0/24"), mcp=McpSettings(allow_atlassian_supported_domains=True)
    )
    assert make_plan(OrgPolicy(org=ORG), live).changes == ()


def test_mcp_effects() -> None:
    """Allowing the supported list, enabling API tokens and adding a domain widen; the opposites narrow."""
    live = _policy(
        mcp=McpSettings(
            allow_atlassian_supported_domains=False,
            domains=(DomainEntry(pattern="https://old.example.com/**"),),
            authentication=Authentication(api_token=False),
        ),
        manage_lists=False,
    )
    desired = _policy(
        mcp=McpSettings(
            allow_atlassian_supported_domains=True,
            domains=(DomainEntry(pattern="https://new.example.com/**"),),
            authentication=Authentication(api_token=True),
        ),
        manage_lists=False,
    )
    assert _effects(desired, live) == [
        ("update", "mcp.settings:allowAtlassianSupportedDomains", "widens"),
        ("update", "mcp.settings:authentication.apiToken", "widens"),
        ("create", "mcp.domain:https://new.example.com/**", "widens"),
        ("delete", "mcp.domain:https://old.example.com/**", "narrows"),
    ]
    assert [e for _, _, e in _effects(live, desired)] == ["narrows", "narrows", "narrows", "widens"]


def test_allowlist_effects() -> None:
    """Adding an address, removing an app, mobile bypass, disabling and deleting widen."""
    base = _allowlist("A", "1.2.3.4/32")
    cases = {
        "widens": [
            _allowlist("A", "1.2.3.4/32", "5.6.7.8/32"),
            _allowlist("A", "1.2.3.4/32", apps=()),
            _allowlist("A", "1.2.3.4/32", bypass=True),
            _allowlist("A", "1.2.3.4/32", enabled=False),
        ],
        "narrows": [_allowlist("A"), _allowlist("A", "1.2.3.4/32", apps=("jira", "confluence"))],
    }
    for effect, variants in cases.items():
        for variant in variants:
            assert _effects(_policy(variant), _policy(base)) == [
                ("update", "ip_allowlist:A", effect)
            ]
    assert _effects(_policy(), _policy(base)) == [("delete", "ip_allowlist:A", "widens")]
    assert _effects(_policy(base), _policy()) == [("create", "ip_allowlist:A", "narrows")]
    first_with_bypass = _allowlist("A", "1.2.3.4/32", bypass=True)  # nothing was restricted before
    assert _effects(_policy(first_with_bypass), _policy()) == [
        ("create", "ip_allowlist:A", "narrows")
    ]
    disabled = _allowlist("B", "1.2.3.4/32", enabled=False)
    assert _effects(_policy(disabled), _policy()) == [("create", "ip_allowlist:B", "neutral")]
    assert _effects(_policy(), _policy(disabled)) == [("delete", "ip_allowlist:B", "neutral")]


def test_notes_and_expiry_do_not_count_as_differences() -> None:
    """Only live-visible values are compared: a note on an address is not a change."""
    noted = IpAllowlist(
        name="A",
        enabled=True,
        apps=("jira",),
        addresses=(AddressEntry(address="1.2.3.4/32", note="office", expires=date(2099, 1, 1)),),
    )
    assert make_plan(_policy(noted), _policy(_allowlist("A", "1.2.3.4/32"))).changes == ()


def test_expired_entries_count_as_absent() -> None:
    """After its expires date an entry drops out of the desired state; on the date it still counts."""
    entry = AddressEntry(address="1.2.3.4/32", expires=date(2027, 3, 31))
    policy = _policy(IpAllowlist(name="A", enabled=False, apps=("jira",), addresses=(entry,)))
    on_the_day = effective_policy(policy, date(2027, 3, 31))
    after = effective_policy(policy, date(2027, 4, 1))
    assert on_the_day.ip_allowlists is not None
    assert on_the_day.ip_allowlists[0].addresses == (entry,)
    assert after.ip_allowlists is not None
    assert after.ip_allowlists[0].addresses == ()


def test_sources_are_attached_to_changes() -> None:
    """Each change of a desired value names the file:line it came from."""
    plan = make_plan(
        _policy(_allowlist("A", "1.2.3.4/32")), _policy(), {"ip_allowlist:A": "p.yaml:12"}
    )
    assert plan.changes[0].source == "p.yaml:12"


# ----------------------------------------------------------------------------- properties

_addresses = st.lists(
    st.builds(
        lambda a, p: str(ipaddress.IPv4Network((a, p), strict=False)),
        st.integers(0, 2**32 - 1),
        st.sampled_from([8, 16, 24, 28, 32]),
    ),
    max_size=6,
    unique=True,
)
_allowlists = st.lists(
    st.builds(
        lambda name, enabled, apps, bypass, addresses: IpAllowlist(
            name=name,
            enabled=enabled,
            apps=tuple(a for a in APPS if a in apps),
            allow_mobile_bypass=bypass,
            addresses=tuple(AddressEntry(address=x) for x in addresses),
        ),
        st.sampled_from(["Office", "VPN", "CI", "Partners", "Lab"]),
        st.booleans(),
        st.sets(st.sampled_from(APPS)),
        st.booleans(),
        _addresses,
    ),
    max_size=4,
    unique_by=lambda a: a.name,
)
_domains = st.lists(
    st.sampled_from([f"https://{h}.example.com/**" for h in "abcdefg"]), unique=True, max_size=5
)
_mcp = st.builds(
    lambda allow, token, domains: McpSettings(
        allow_atlassian_supported_domains=allow,
        authentication=Authentication(api_token=token),
        domains=tuple(DomainEntry(pattern=d) for d in domains),
    ),
    st.booleans(),
    st.booleans(),
    _domains,
)
_states = st.builds(
    lambda mcp, lists: OrgPolicy(org=ORG, mcp=mcp, ip_allowlists=tuple(lists)), _mcp, _allowlists
)


def apply_in_memory(live: OrgPolicy, changes: tuple[Change, ...]) -> OrgPolicy:
    """A fake of the real apply: executes changes on a model value."""
    mcp = live.mcp or McpSettings()
    allow, token = (
        mcp.allow_atlassian_supported_domains,
        mcp.authentication.api_token if mcp.authentication else None,
    )
    domains = [d.pattern for d in mcp.domains or ()]
    lists = {a.name: a for a in live.ip_allowlists or ()}
    for change in changes:
        if change.key == "mcp.settings:allowAtlassianSupportedDomains":
            allow = change.after
        elif change.key == "mcp.settings:authentication.apiToken":
            token = change.after
        elif change.resource == "mcp.domain":
            if change.action == "create":
                domains.append(change.after)
            else:
                domains.remove(change.before)
        elif change.action == "delete":
            del lists[change.before["name"]]
        else:
            after: dict[str, Any] = change.after
            lists[after["name"]] = IpAllowlist(
                name=after["name"],
                enabled=after["enabled"],
                apps=tuple(after["apps"]),
                allow_mobile_bypass=after["allowMobileBypass"],
                addresses=tuple(AddressEntry(address=a) for a in after["addresses"]),
            )
    return OrgPolicy(
        org=live.org,
        mcp=McpSettings(
            allow_atlassian_supported_domains=allow,
            authentication=Authentication(api_token=token),
            domains=tuple(DomainEntry(pattern=d) for d in domains),
        ),
        ip_allowlists=tuple(lists.values()),
    )


@settings(max_examples=300)
@given(_states, _states)
def test_applying_the_plan_reaches_the_desired_state(desired: OrgPolicy, live: OrgPolicy) -> None:
    """apply(plan(d, l), l) == d, and planning again from there is empty."""
    result = apply_in_memory(live, make_plan(desired, live).changes)
    assert state_value(result) == state_value(desired)
    assert make_plan(desired, result).changes == ()


@given(_states)
def test_a_state_plans_nothing_against_itself(state: OrgPolicy) -> None:
    """plan(d, d) is empty for any state."""
    assert make_plan(state, state).changes == ()


@given(_states, _states, st.randoms())
def test_input_order_never_changes_the_plan(
    desired: OrgPolicy, live: OrgPolicy, rnd: random.Random
) -> None:
    """Shuffling allowlists, addresses and domains gives byte-identical plan JSON."""

    def shuffled(policy: OrgPolicy) -> OrgPolicy:
        lists = [
            a.model_copy(update={"addresses": tuple(rnd.sample(a.addresses, len(a.addresses)))})
            for a in policy.ip_allowlists or ()
        ]
        rnd.shuffle(lists)
        assert policy.mcp is not None
        assert policy.mcp.domains is not None
        domains = tuple(rnd.sample(policy.mcp.domains, len(policy.mcp.domains)))
        return policy.model_copy(
            update={
                "ip_allowlists": tuple(lists),
                "mcp": policy.mcp.model_copy(update={"domains": domains}),
            }
        )

    def as_json(plan: Any) -> str:
        return json.dumps([c.to_json() for c in plan.changes], sort_keys=True)

    original = make_plan(desired, live)
    again = make_plan(shuffled(desired), shuffled(live))
    assert as_json(original) == as_json(again)
    assert original.live_fingerprint == again.live_fingerprint


@given(_states, _states)
def test_changes_touch_only_differing_keys(desired: OrgPolicy, live: OrgPolicy) -> None:
    """Every change's key differs between the two states; every equal key is left alone."""
    desired_value, live_value = state_value(desired), state_value(live)
    for change in make_plan(desired, live).changes:
        assert change.before != change.after
        if change.resource == "ip_allowlist":
            name = change.key.removeprefix("ip_allowlist:")
            in_desired = [a for a in desired_value["ipAllowlists"] if a["name"] == name]
            in_live = [a for a in live_value["ipAllowlists"] if a["name"] == name]
            assert in_desired != in_live


@given(_states)
def test_state_value_round_trips_through_policy_from_state(state: OrgPolicy) -> None:
    """policy_from_state inverts state_value, so a saved plan can carry its desired state."""
    assert state_value(policy_from_state(state_value(state))) == state_value(state)


def test_allowlist_effects_are_judged_on_what_each_app_admits() -> None:
    """A second enabled list on an app widens it; deleting one of two narrows it."""
    office = _allowlist("Office", "1.2.3.0/24")
    vpn = _allowlist("VPN", "5.6.7.0/24")
    assert _effects(_policy(office, vpn), _policy(office)) == [
        ("create", "ip_allowlist:VPN", "widens")
    ]
    assert _effects(_policy(office), _policy(office, vpn)) == [
        ("delete", "ip_allowlist:VPN", "narrows")
    ]
    other_app = _allowlist("Wiki", "5.6.7.0/24", apps=("confluence",))
    assert _effects(_policy(office, other_app), _policy(office)) == [
        ("create", "ip_allowlist:Wiki", "narrows")
    ]
