"""Workspace types the model does not know count in the lockout guard (issue 11, item 8).

An enabled allowlist attached to Jira and to a Bitbucket workspace keeps the Bitbucket
attachment whatever apply writes (the model cannot express it). So narrowing that list
must not silently shut a `mustAllow` address out of Bitbucket: the guard counts the
attachment like an app, and says why it refuses.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.guards import check_guards, locked_out
from rovo_reconcile.plan import make_plan, policy_from_state
from rovo_reconcile.policy.model import Guards

from .apply_helpers import BASE, apply_policy, plan_of, policy_file, sandbox

ORG = "org-unmodelled"
MUST = "91.208.44.10"
BITBUCKET = "bb-workspace-1"

BEFORE = f"""\
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [jira], addresses: [91.208.44.0/24]}}
guards: {{mustAllow: [{MUST}]}}
"""
# Jira keeps the mustAllow address through "Break glass"; Office, also on Bitbucket, drops it.
AFTER = f"""\
org: {{id: {ORG}}}
ipAllowlists:
  - {{name: Break glass, enabled: true, apps: [jira], addresses: [{MUST}]}}
  - {{name: Office, enabled: true, apps: [jira], addresses: [62.217.140.0/24]}}
guards: {{mustAllow: [{MUST}]}}
"""


def _attach_bitbucket(db: Path, jira: list[str], policy_id: str) -> None:
    """As an admin would in the UI: a Bitbucket workspace, attached to the Office list too."""
    with sqlite3.connect(db) as con:
        con.execute(
            "INSERT INTO workspaces (org_id, id, name, type_key, host_url) VALUES (?, ?, ?, ?, ?)",
            (ORG, BITBUCKET, "Acme code", "bitbucket", "https://bitbucket.org/acme"),
        )
        con.execute(
            "UPDATE policies SET resources = ? WHERE id = ?",
            (json.dumps([*jira, BITBUCKET]), policy_id),
        )


def test_narrowing_a_list_also_on_bitbucket_is_refused_when_bitbucket_would_lose_must_allow(
    tmp_path: Path,
) -> None:
    """Once the narrowing went through and Bitbucket lost the mustAllow address with no note."""
    db = tmp_path / "e.db"

    async def scenario() -> None:
        async with sandbox(db) as (client, _):
            _, first = await apply_policy(client, policy_file(tmp_path, BEFORE), tmp_path)
            assert first.exit_code == 0
            live = await read_org(client, BASE, ORG)
        office = live.allowlists["Office"]
        _attach_bitbucket(db, [r.id for r in office.resources], office.id)
        async with sandbox(db) as (client, writes):
            path = policy_file(tmp_path, AFTER)
            plan = await plan_of(client, path)
            (org,) = plan.orgs
            messages = [r.message for r in org.refusals]
            assert any(
                f"mustAllow address {MUST}/32 would be locked out of bitbucket workspace "
                f"{BITBUCKET}, which allowlist 'Office' stays attached to" in m
                for m in messages
            ), messages
            assert not any(r.forceable for r in org.refusals)
            _, result = await apply_policy(client, path, tmp_path, force=True)
            assert result.exit_code == 3
            assert writes.writes == []
            live = await read_org(client, BASE, ORG)
            assert live.kept_apps == {"Office": (f"bitbucket workspace {BITBUCKET}",)}
            assert any("bitbucket workspace" in note for note in live.notes), live.notes

    asyncio.run(scenario())


def test_apply_keeps_the_bitbucket_attachment_when_the_address_stays(tmp_path: Path) -> None:
    """Narrowing that keeps the mustAllow address is fine, and Bitbucket stays attached."""
    db = tmp_path / "e.db"
    keeps = AFTER.replace("[62.217.140.0/24]", f"[62.217.140.0/24, {MUST}]")

    async def scenario() -> None:
        async with sandbox(db) as (client, _):
            await apply_policy(client, policy_file(tmp_path, BEFORE), tmp_path)
            live = await read_org(client, BASE, ORG)
        office = live.allowlists["Office"]
        _attach_bitbucket(db, [r.id for r in office.resources], office.id)
        async with sandbox(db) as (client, _):
            plan, result = await apply_policy(client, policy_file(tmp_path, keeps), tmp_path)
            assert not plan.orgs[0].refusals
            assert result.exit_code == 0, result.orgs[0].message
            answer = await client.get_json(f"{Endpoints(BASE, ORG).policies}/{office.id}")
            ids = {r["id"] for r in answer["data"]["attributes"]["resources"]}
            assert BITBUCKET in ids

    asyncio.run(scenario())


def test_a_lockout_live_already_has_on_an_unmodelled_workspace_is_not_this_plans() -> None:
    """Bitbucket's list never admitted the address: a plan that does not touch it passes."""
    live = policy_from_state(
        {
            "org": ORG,
            "ipAllowlists": [
                {
                    "name": "Code",
                    "enabled": True,
                    "apps": [],
                    "allowMobileBypass": False,
                    "addresses": ["62.217.140.0/24"],
                },
            ],
        }
    )
    desired = policy_from_state(
        {
            "org": ORG,
            "ipAllowlists": [
                {
                    "name": "Code",
                    "enabled": True,
                    "apps": [],
                    "allowMobileBypass": False,
                    "addresses": ["62.217.140.0/24"],
                },
                {
                    "name": "Office",
                    "enabled": True,
                    "apps": ["jira"],
                    "allowMobileBypass": False,
                    "addresses": ["91.208.44.0/24"],
                },
            ],
        },
        Guards(must_allow=(f"{MUST}/32",)),
    )
    kept = {"Code": ("bitbucket workspace bb-1",)}
    plan = make_plan(desired, live)
    assert [c.key for c in plan.changes] == ["ip_allowlist:Office"]
    assert locked_out(
        [{"name": "Code", "enabled": True, "apps": [], "addresses": ["62.217.140.0/24"]}],
        [f"{MUST}/32"],
        kept,
    ) == {(f"{MUST}/32", "bitbucket workspace bb-1")}
    assert check_guards(plan, live, kept) == []
