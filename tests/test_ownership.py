"""Ownership per list (DESIGN §3): an additive list adds what is missing and reports the live
entries it does not list as unmanaged, never deleting them, in plan, apply and drift alike."""

from __future__ import annotations

import json
from pathlib import Path

from rovo_reconcile.plan import Unmanaged, make_plan, policy_from_state
from rovo_reconcile.policy.model import (
    AddressEntry,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
    Ownership,
)

from .conftest import CliRunner

ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"


def _policy(domains: list[str], addresses: list[str], ownership: Ownership) -> OrgPolicy:
    return OrgPolicy(
        org=Org(id=ORG),
        mcp=McpSettings(
            domains=tuple(DomainEntry(pattern=d) for d in domains), ownership=ownership
        ),
        ip_allowlists=(
            IpAllowlist(
                name="Shared",
                enabled=True,
                apps=("jira",),
                addresses=tuple(AddressEntry(address=a) for a in addresses),
                ownership=ownership,
            ),
        ),
    )


LIVE = _policy(
    ["https://a.example.com/**", "https://theirs.example.com/**"],
    ["198.51.100.0/24", "192.0.2.9/32"],
    "authoritative",
)


def test_additive_lists_add_what_is_missing_and_delete_nothing() -> None:
    """The additive plan creates the new domain and widens the list; the live entries it does
    not list stay (the update keeps them) and are reported as unmanaged."""
    desired = _policy(
        ["https://a.example.com/**", "https://new.example.com/**"],
        ["198.51.100.0/24", "203.0.113.0/24"],
        "additive",
    )
    plan = make_plan(desired, LIVE)
    assert [(c.action, c.key) for c in plan.changes] == [
        ("create", "mcp.domain:https://new.example.com/**"),
        ("update", "ip_allowlist:Shared"),
    ]
    [update] = [c for c in plan.changes if c.action == "update"]
    assert update.after["addresses"] == ["192.0.2.9/32", "198.51.100.0/24", "203.0.113.0/24"]
    assert update.effect == "widens"
    assert plan.unmanaged == (
        Unmanaged("ip_allowlist:Shared", "192.0.2.9/32"),
        Unmanaged("mcp.domain:https://theirs.example.com/**", "https://theirs.example.com/**"),
    )


def test_the_same_policy_authoritative_deletes_them() -> None:
    """The default, authoritative, removes what the policy does not list (the contrast)."""
    desired = _policy(["https://a.example.com/**"], ["198.51.100.0/24"], "authoritative")
    plan = make_plan(desired, LIVE)
    assert [(c.action, c.key) for c in plan.changes] == [
        ("delete", "mcp.domain:https://theirs.example.com/**"),
        ("update", "ip_allowlist:Shared"),
    ]
    assert plan.unmanaged == ()


def test_an_additive_plan_applied_converges() -> None:
    """plan(d, apply(plan(d, l), l)) is empty for additive lists: the kept entries are not
    planned again, and the desired state saved in a plan file keeps the ownership."""
    desired = _policy(["https://new.example.com/**"], ["203.0.113.0/24"], "additive")
    plan = make_plan(desired, LIVE)
    after = _policy(
        ["https://a.example.com/**", "https://new.example.com/**", "https://theirs.example.com/**"],
        ["192.0.2.9/32", "198.51.100.0/24", "203.0.113.0/24"],
        "authoritative",
    )
    assert make_plan(desired, after).changes == ()
    assert plan.desired is not None
    assert make_plan(policy_from_state(plan.desired), after).changes == ()


def _write(path: Path, ownership: str, domains: list[str], addresses: list[str]) -> Path:
    lines = [
        "apiVersion: rovo-reconcile/v1",
        "kind: OrgPolicy",
        f"org: {{id: {ORG}}}",
        "mcp:",
        f"  ownership: {ownership}",
        "  domains:",
        *(f"    - {d}" for d in domains),
        "ipAllowlists:",
        "  - name: Shared",
        "    enabled: true",
        "    apps: [jira]",
        f"    ownership: {ownership}",
        "    addresses:",
        *(f"      - {a}" for a in addresses),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_additive_through_the_cli_plan_apply_and_drift(cli: CliRunner, tmp_path: Path) -> None:
    """On the sandbox: another team's entries (applied first) survive an additive policy's
    apply, plan and drift report them as unmanaged, and nothing counts as drift."""
    policy = tmp_path / "org.yaml"
    theirs = _write(
        policy,
        "authoritative",
        ["https://theirs.example.com/**"],
        ["198.51.100.7", "198.51.100.0/24"],
    )
    assert cli("apply", str(theirs), "--yes").code == 0
    _write(policy, "additive", ["https://ours.example.com/**"], ["198.51.100.0/24", "8.8.8.8"])

    planned = cli("plan", str(policy), "--format", "json", "--out", "plan.json")
    assert planned.code == 0, planned.stderr
    org = json.loads(planned.stdout)["orgs"][0]
    assert [c["action"] for c in org["changes"]] == ["create", "update"]
    assert org["unmanaged"] == [
        {"key": "ip_allowlist:Shared", "value": "198.51.100.7/32"},
        {
            "key": "mcp.domain:https://theirs.example.com/**",
            "value": "https://theirs.example.com/**",
        },
    ]
    text = cli("plan", str(policy)).stdout
    assert "unmanaged: 198.51.100.7/32 in allowlist 'Shared' (additive: left alone)" in text

    applied = cli("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "unmanaged: 198.51.100.7/32 in allowlist 'Shared' (additive: left alone)" in (
        applied.stdout
    ), "the apply report names what it left alone, as the plan did"
    again = json.loads(cli("apply", str(policy), "--yes", "--format", "json").stdout)
    assert again["orgs"][0]["unmanaged"] == org["unmanaged"]

    shown = json.loads(cli("show", "--org", ORG, "--format", "json").stdout)
    assert sorted(shown["mcp"]["domains"]) == [
        "https://ours.example.com/**",
        "https://theirs.example.com/**",
    ]
    drift = cli("drift", str(policy))
    assert drift.code == 0, drift.stdout
    assert "unmanaged: https://theirs.example.com/** in the MCP domains" in drift.stdout
    assert cli("plan", str(policy), "--detailed-exitcode").code == 0
