"""The safety guards on a plan: which plans are refused, and which --force may pass."""

from __future__ import annotations

from rovo_reconcile.guards import check_guards
from rovo_reconcile.plan import make_plan
from rovo_reconcile.policy.model import (
    AddressEntry,
    DomainEntry,
    Guards,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)

ORG = Org(id="org-g")


def _list(
    name: str, *addresses: str, enabled: bool = True, apps: tuple[str, ...] = ("jira",)
) -> IpAllowlist:
    return IpAllowlist(
        name=name,
        enabled=enabled,
        apps=apps,  # type: ignore[arg-type]
        addresses=tuple(AddressEntry(address=a) for a in addresses),
    )


def _state(
    *lists: IpAllowlist, domains: tuple[str, ...] | None = None, guards: Guards | None = None
) -> OrgPolicy:
    mcp = (
        McpSettings(domains=tuple(DomainEntry(pattern=d) for d in domains))
        if domains is not None
        else None
    )
    return OrgPolicy(org=ORG, mcp=mcp, ip_allowlists=lists, guards=guards or Guards())


def _refusals(desired: OrgPolicy, live: OrgPolicy) -> list[tuple[str, bool]]:
    return [(r.message, r.forceable) for r in check_guards(make_plan(desired, live), live)]


def test_a_plain_plan_passes() -> None:
    """Adding an address to an enabled list triggers no guard."""
    live = _state(_list("A", "1.2.3.4/32"))
    assert _refusals(_state(_list("A", "1.2.3.4/32", "5.6.7.8/32")), live) == []


def test_deleting_or_disabling_an_enabled_allowlist_is_forceable() -> None:
    """Both widen access for everyone: refused, but --force may pass."""
    live = _state(_list("A", "1.2.3.4/32"), _list("B", "5.6.7.8/32"))
    assert _refusals(_state(_list("A", "1.2.3.4/32")), live) == [
        ("the plan deletes the enabled allowlist 'B'", True)
    ]
    disabled = _state(_list("A", "1.2.3.4/32"), _list("B", "5.6.7.8/32", enabled=False))
    assert _refusals(disabled, live) == [("the plan disables the enabled allowlist 'B'", True)]


def test_deleting_a_disabled_allowlist_passes() -> None:
    """A disabled list admits nobody and blocks nobody: deleting it is not guarded."""
    live = _state(_list("A", "1.2.3.4/32"), _list("B", "5.6.7.8/32", enabled=False))
    assert _refusals(_state(_list("A", "1.2.3.4/32")), live) == []


def test_delete_share_counts_only_lists_of_ten_or_more() -> None:
    """4 of 10 addresses (40% > 30%) is refused; 4 of 9 is not (list too small)."""
    ten = [f"52.0.0.{n}/32" for n in range(10)]
    live = _state(_list("A", *ten))
    refusals = _refusals(_state(_list("A", *ten[4:])), live)
    assert refusals == [
        (
            "the plan deletes 4 of 10 addresses of allowlist 'A' (40%), more than maxDeletePercent 30%",
            True,
        )
    ]
    nine = ten[:9]
    assert _refusals(_state(_list("A", *nine[4:])), _state(_list("A", *nine))) == []


def test_delete_share_limit_comes_from_the_policy() -> None:
    """maxDeletePercent 50 lets 4 of 10 through."""
    ten = [f"https://d{n}.example.com/**" for n in range(10)]
    live = _state(domains=tuple(ten))
    assert (
        _refusals(_state(domains=tuple(ten[4:]), guards=Guards(max_delete_percent=50)), live) == []
    )
    assert _refusals(_state(domains=tuple(ten[4:])), live)[0][0].startswith(
        "the plan deletes 4 of 10 MCP domains"
    )


def test_lockout_of_a_must_allow_address_is_never_forceable() -> None:
    """A result where jira's enabled lists miss a mustAllow address is refused without override."""
    live = _state(_list("A", "52.0.0.0/8"))
    desired = _state(_list("A", "18.0.0.0/8"), guards=Guards(must_allow=("52.1.2.3/32",)))
    assert _refusals(desired, live) == [
        (
            "mustAllow address 52.1.2.3/32 would be locked out of jira: no enabled allowlist covering those apps "
            "would admit it",
            False,
        )
    ]


def test_must_allow_may_be_covered_by_several_lists_together() -> None:
    """Two enabled lists for one app admit the union of their addresses."""
    live = _state()
    desired = _state(
        _list("A", "52.0.0.0/9"),
        _list("B", "52.128.0.0/9"),
        guards=Guards(must_allow=("52.0.0.0/8",)),
    )
    assert _refusals(desired, live) == []


def test_an_enabled_empty_allowlist_is_a_lockout() -> None:
    """Enabling a list with no addresses would lock everyone out of its apps."""
    live = _state(_list("A", "52.0.0.0/8", enabled=False))
    assert _refusals(_state(_list("A", enabled=True)), live) == [
        ("allowlist 'A' would be enabled with no addresses, locking everyone out of jira", False)
    ]
