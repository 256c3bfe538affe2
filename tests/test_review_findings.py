"""Review findings on the apply path: each test shows one confirmed bug and is xfail(strict)
until it is fixed. Remove the marker together with the fix."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.errors import ApiError
from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.api.retry import RetryPolicy
from rovo_reconcile.api.secrets import BearerAuth, Secret
from rovo_reconcile.apply import ApplyResult, Journal, apply_plan
from rovo_reconcile.emulator.inspect import locked_out
from rovo_reconcile.plan import Plan
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.reconcile import plan_from_live
from rovo_reconcile.render.apply_report import render_apply

from .apply_helpers import (
    BASE,
    DAY,
    apply_policy,
    attach_partly,
    policy_body,
    policy_file,
    sandbox,
)
from .conftest import CliRunner, Result
from .emulator_fixture import Emulator, EmulatorPool, start_emulator
from .fakes import FakeClock

KEY = "writer-key-for-review-tests"


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def emulator(emulator_pool: EmulatorPool) -> Iterator[Emulator]:
    with emulator_pool.fresh(
        "--settle-ms", "0", "--api-key", f"{KEY}:write", "--retry-after", "0"
    ) as emu:
        yield emu


def _remote(cli: CliRunner, emu: Emulator, *args: str) -> Result:
    return cli(*args, "--api-url", emu.url, env={"ATLASSIAN_ADMIN_API_KEY": KEY})


def _admin(emu: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


# ----------------------------------------------------------------------------- write ordering


def test_moving_addresses_into_a_new_allowlist_never_locks_out_must_allow(
    tmp_path: Path,
) -> None:
    """Old [1.2.3.0/24, 5.6.7.0/24] -> Old [5.6.7.0/24] + New [1.2.3.0/24]: 1.2.3.4 is admitted
    before and after, so it must be admitted after every single write too."""
    org, db = "org-move", tmp_path / "e.db"
    before = policy_file(
        tmp_path,
        f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Old, enabled: true, apps: [jira], addresses: [1.2.3.0/24, 5.6.7.0/24]}}
guards: {{mustAllow: [1.2.3.4]}}
""",
    )
    moments: list[tuple[str, list[str]]] = []

    async def scenario() -> ApplyResult:
        async with sandbox(db) as (client, _):
            _, first = await apply_policy(client, before, tmp_path)
            assert first.exit_code == 0
        before.write_text(
            before.read_text().replace(
                "addresses: [1.2.3.0/24, 5.6.7.0/24]}",
                "addresses: [5.6.7.0/24]}\n"
                "  - {name: New, enabled: true, apps: [jira], addresses: [1.2.3.0/24]}",
            )
        )

        def snapshot(method: str, path: str) -> None:
            moments.append((f"{method} {path}", locked_out(db, org, "1.2.3.4")))

        async with sandbox(db, after=snapshot) as (client, _):
            _, result = await apply_policy(client, before, tmp_path)
            return result

    result = asyncio.run(scenario())
    assert result.exit_code == 0, result.orgs[0].message
    assert moments
    assert [m for m in moments if m[1]] == [], "mustAllow 1.2.3.4 was locked out after a write"


def test_disabling_and_narrowing_an_allowlist_never_locks_out_in_between(tmp_path: Path) -> None:
    """L enabled [1.1.1.0/24, 2.2.2.0/24] -> L disabled [1.1.1.0/24] (with --force): 2.2.2.2 is
    admitted before (listed) and after (no enabled list), so it must be admitted throughout."""
    org, db = "org-disable", tmp_path / "e.db"
    path = policy_file(
        tmp_path,
        f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: L, enabled: true, apps: [jira], addresses: [1.1.1.0/24, 2.2.2.0/24]}}
""",
    )
    moments: list[tuple[str, list[str]]] = []

    async def scenario() -> ApplyResult:
        async with sandbox(db) as (client, _):
            assert (await apply_policy(client, path, tmp_path))[1].exit_code == 0
        path.write_text(
            path.read_text().replace(
                "enabled: true, apps: [jira], addresses: [1.1.1.0/24, 2.2.2.0/24]",
                "enabled: false, apps: [jira], addresses: [1.1.1.0/24]",
            )
        )

        def snapshot(method: str, url_path: str) -> None:
            moments.append((f"{method} {url_path}", locked_out(db, org, "2.2.2.2")))

        async with sandbox(db, after=snapshot) as (client, _):
            return (await apply_policy(client, path, tmp_path, force=True))[1]

    result = asyncio.run(scenario())
    assert result.exit_code == 0, result.orgs[0].message
    assert [m for m in moments if m[1]] == [], "2.2.2.2 was locked out after a write"


# ----------------------------------------------------------------------------- guards and saved plans


def test_lockout_guard_checks_the_changes_of_a_saved_plan(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(
        tmp_path,
        """\
org: {id: org-tamper}
ipAllowlists:
  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}
guards: {mustAllow: [52.14.1.1]}
""",
    )
    assert _remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    policy.write_text(policy.read_text().replace("[52.14.0.0/16]", "[52.14.0.0/16, 9.9.9.9]"))
    saved = tmp_path / "plan.json"
    assert _remote(cli, emulator, "plan", str(policy), "--out", str(saved)).code == 0
    data = json.loads(saved.read_text())
    data["orgs"][0]["changes"][0]["after"]["addresses"] = ["9.9.9.9/32"]  # desired left as is
    del data["changes_digest"]  # a careful forger drops the digest, which would give it away
    saved.write_text(json.dumps(data))
    result = _remote(cli, emulator, "apply", "--plan", str(saved), "--force")
    assert result.code == 3, result.stdout
    with _admin(emulator) as admin:
        live = admin.get("/admin/control/v1/orgs/org-tamper/policies").json()["data"]
    assert "52.14.0.0/16" in live[0]["attributes"]["rule"]["in"], "52.14.1.1 is locked out"


def test_a_saved_plan_without_desired_state_bypasses_no_guard(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(
        tmp_path,
        """\
org: {id: org-nodesired}
ipAllowlists:
  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}
guards: {mustAllow: [52.14.1.1]}
""",
    )
    assert _remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    policy.write_text(policy.read_text().replace("[52.14.0.0/16]", "[52.14.0.0/16, 9.9.9.9]"))
    saved = tmp_path / "plan.json"
    assert _remote(cli, emulator, "plan", str(policy), "--out", str(saved)).code == 0
    data = json.loads(saved.read_text())
    data["orgs"][0]["changes"][0]["after"]["addresses"] = ["9.9.9.9/32"]
    del data["orgs"][0]["desired"]
    saved.write_text(json.dumps(data))
    result = _remote(cli, emulator, "apply", "--plan", str(saved), "--force")
    assert result.code in (3, 64), result.stdout + result.stderr


def test_detaching_a_partially_covered_app_is_not_hidden(tmp_path: Path) -> None:
    """Live Office covers confluence and ONE of two Jira sites; the policy only drops an address.
    Either the Jira site stays protected, or the plan must say the change widens access."""
    org, db = "org-partial", tmp_path / "e.db"
    path = policy_file(
        tmp_path,
        f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [confluence], addresses: [52.14.0.0/16]}}
""",
    )

    async def scenario() -> tuple[Plan, bool]:
        async with sandbox(db) as (client, _):
            jira_one = await attach_partly(client, org, "Office", ["52.14.0.0/16", "9.9.9.9"])
            plan, result = await apply_policy(client, path, tmp_path)
            assert result.exit_code == 0
            after = await read_org(client, BASE, org)
            kept = jira_one in {r.id for r in after.allowlists["Office"].resources}
            return plan, kept

    plan, kept = asyncio.run(scenario())
    (change,) = plan.orgs[0].changes
    assert kept or change.effect == "widens", (
        f"plan said {change.effect!r} but a Jira site lost its allowlist"
    )


def test_a_duplicate_named_live_allowlist_is_drift(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(
        tmp_path,
        "org: {id: org-dup}\nipAllowlists:\n"
        "  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}\n",
    )
    assert _remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    with _admin(emulator) as admin:
        workspaces = admin.post("/admin/v2/orgs/org-dup/workspaces", json={}).json()["data"]
        jira = [w["id"] for w in workspaces if w["attributes"]["typeKey"] == "jira-software"]
        admin.post(
            "/admin/control/v1/orgs/org-dup/policies",
            json=policy_body("Office", "enabled", ["18.0.0.0/8"], jira),
        ).raise_for_status()
    drift = _remote(cli, emulator, "drift", str(policy))
    assert drift.code != 0, drift.stdout + drift.stderr


def test_an_ack_does_not_hide_a_different_later_drift(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(
        tmp_path,
        "org: {id: org-ack}\nipAllowlists:\n"
        "  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}\n",
    )
    assert _remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    base = "/admin/control/v1/orgs/org-ack/policies"
    with _admin(emulator) as admin:
        office = admin.get(base).json()["data"][0]
        attributes = office["attributes"]
        resources = [r["id"] for r in attributes["resources"]]
        admin.put(
            f"{base}/{office['id']}",
            json=policy_body("Office", "enabled", ["52.14.0.0/16", "9.9.9.9"], resources),
        ).raise_for_status()
        report = _remote(cli, emulator, "drift", str(policy), "--format", "json")
        (item,) = json.loads(report.stdout)["items"]
        ack = tmp_path / "ack.yaml"
        ack.write_text(
            "acknowledged:\n  - org: org-ack\n    key: ip_allowlist:Office\n"
            "    reason: temporary vendor address, SEC-1\n    expires: 2027-01-31\n"
            f"    live: {item['live']}\n"
        )
        assert _remote(cli, emulator, "drift", str(policy), "--ack", str(ack)).code == 0
        admin.put(
            f"{base}/{office['id']}",
            json=policy_body("Office", "disabled", ["52.14.0.0/16", "9.9.9.9"], resources),
        ).raise_for_status()
    drift = _remote(cli, emulator, "drift", str(policy), "--ack", str(ack))
    assert drift.code == 2, drift.stdout
    assert "was for live" in drift.stdout


# ----------------------------------------------------------------------------- convergence


def test_an_app_without_workspaces_does_not_rewrite_on_every_apply(
    cli: CliRunner, tmp_path: Path
) -> None:
    policy = policy_file(
        tmp_path,
        "org: {id: org-nocompass}\nipAllowlists:\n"
        "  - {name: Office, enabled: true, apps: [jira, compass], addresses: [52.14.0.0/16]}\n",
    )
    assert cli("show", "--org", "org-nocompass").code == 0  # creates the sandbox org
    with sqlite3.connect(tmp_path / ".rovo-reconcile" / "sandbox.db") as con:
        con.execute(
            "DELETE FROM workspaces WHERE org_id = 'org-nocompass' AND type_key = 'compass'"
        )
    cli("apply", str(policy), "--yes")
    journal = tmp_path / ".rovo-reconcile" / "journal.jsonl"
    lines = journal.read_text().splitlines() if journal.exists() else []
    second = cli("apply", str(policy), "--yes")
    again = journal.read_text().splitlines() if journal.exists() else []
    assert again == lines, "the second apply wrote again:\n" + second.stdout


# ----------------------------------------------------------------------------- failures and reports


def test_an_unexpected_error_in_one_org_does_not_abort_the_others(
    cli: CliRunner, tmp_path: Path
) -> None:
    with start_emulator(
        tmp_path,
        "--settle-ms",
        "0",
        "--drop-rate",
        "1",
        "--org",
        "org-x",
        "--org",
        "org-y",
        "--api-key",
        f"{KEY}:write",
    ) as emu:
        with sqlite3.connect(emu.state, timeout=10) as con:  # a legacy domain set outside Git
            con.execute(
                "INSERT INTO mcp_domains (org_id, id, pattern, canonical) VALUES (?, ?, ?, ?)",
                ("org-x", str(uuid.uuid4()), "http://legacy.example.com/**", "legacy"),
            )
        for org in ("org-x", "org-y"):
            policy_file(
                tmp_path,
                f"org: {{id: {org}}}\nmcp:\n  domains: [https://a.example.com/**, "
                "https://b.example.com/**, https://c.example.com/**]\n",
                f"{org}.yaml",
            )
        result = _remote(cli, emu, "apply", str(tmp_path / "policies"), "--yes")
        domains = httpx.get(
            f"{emu.url}/admin/control/v1/orgs/org-y/rovo-mcp/domains?limit=50",
            headers={"Authorization": f"Bearer {KEY}"},
        )
        org_y = _remote(
            cli, emu, "plan", str(tmp_path / "policies" / "org-y.yaml"), "--detailed-exitcode"
        )
    assert "internal error" not in result.stderr, result.stderr
    assert result.code == 0, result.stdout  # the legacy domain is kept as it is, and removed
    assert org_y.code == 0, f"org-y was left half-applied: {domains.text}"


def test_a_bug_in_one_org_stops_only_that_org(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception inside one org's run is that org's error; the other orgs still apply."""
    import rovo_reconcile.apply as apply_module

    real = apply_module._OrgRun._create_domain

    async def broken(self: Any, change: Any) -> None:
        if self.plan.org_id == "org-bug":
            raise RuntimeError("a bug")
        await real(self, change)

    monkeypatch.setattr(apply_module._OrgRun, "_create_domain", broken)
    for org in ("org-bug", "org-fine"):
        policy_file(
            tmp_path,
            f"org: {{id: {org}}}\nmcp: {{domains: [https://a.example.com/**]}}\n",
            f"{org}.yaml",
        )

    async def scenario() -> ApplyResult:
        async with sandbox(tmp_path / "e.db") as (client, _):
            loaded = load_policies([str(tmp_path / "policies")], DAY)
            live = {
                p.policy.org.id: await read_org(client, BASE, p.policy.org.id)
                for p in loaded.policies
            }
            plan = plan_from_live("test", loaded.policies, live, DAY)
            return await apply_plan(
                client, BASE, plan, force=False, journal=Journal(tmp_path / "j.jsonl")
            )

    result = asyncio.run(scenario())
    by_org = {o.org_id: o for o in result.orgs}
    assert by_org["org-fine"].exit_code == 0
    assert by_org["org-bug"].exit_code == 1
    assert "internal error (RuntimeError: a bug)" in (by_org["org-bug"].message or "")
    assert result.exit_code == 1


def test_an_unwritable_journal_is_a_clear_error(cli: CliRunner, tmp_path: Path) -> None:
    policy = policy_file(
        tmp_path, "org: {id: org-journal}\nmcp: {domains: [https://a.example.com/**]}\n"
    )
    journal_dir = tmp_path / "journal-is-a-directory"
    journal_dir.mkdir()
    result = cli("apply", str(policy), "--yes", "--journal", str(journal_dir))
    assert "internal error" not in result.stderr, result.stderr
    assert result.code in (1, 64)
    assert "journal" in (result.stdout + result.stderr).lower()


def test_a_refused_apply_reports_no_write(cli: CliRunner, tmp_path: Path) -> None:
    first = policy_file(
        tmp_path, "org: {id: org-count}\nmcp: {domains: [https://a.example.com/**]}\n"
    )
    saved = tmp_path / "plan.json"
    assert cli("plan", str(first), "--out", str(saved)).code == 0
    other = policy_file(
        tmp_path, "org: {id: org-count}\nmcp: {domains: [https://b.example.com/**]}\n", "b.yaml"
    )
    assert cli("apply", str(other), "--yes").code == 0
    stale = cli("apply", "--plan", str(saved))
    assert stale.code == 3
    assert "0 writes sent" in stale.stdout, stale.stdout


def test_a_half_applied_create_is_not_reported_as_skipped(tmp_path: Path) -> None:
    path = policy_file(
        tmp_path,
        """\
org: {id: org-half}
ipAllowlists:
  - {name: A, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}
  - {name: B, enabled: true, apps: [jira], addresses: [18.0.0.0/8]}
""",
    )

    def refuse_b(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and b'"name":"B"' in request.content.replace(b" ", b""):
            return httpx.Response(400, json={"errors": [{"status": "400", "title": "no"}]})
        return None

    async def scenario() -> ApplyResult:
        async with sandbox(tmp_path / "e.db", intercept=refuse_b) as (client, _):
            return (await apply_policy(client, path, tmp_path))[1]

    result = asyncio.run(scenario())
    assert result.exit_code == 1
    status = {o.change.key: o.status for o in result.orgs[0].outcomes}
    assert status["ip_allowlist:A"] != "skipped", "A was created but is reported as skipped"


def test_apply_report_says_mcp_must_be_set_by_hand(tmp_path: Path) -> None:
    path = policy_file(
        tmp_path,
        """\
org: {id: org-nomcp}
mcp:
  allowAtlassianSupportedDomains: false
  domains: [https://a.example.com/**]
ipAllowlists:
  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}
""",
    )

    def no_mcp(request: httpx.Request) -> httpx.Response | None:
        if "/rovo-mcp/" in request.url.path:
            return httpx.Response(
                404,
                json={"errors": [{"status": "404", "code": "ADMIN-404-1", "title": "Not Found"}]},
            )
        return None

    async def scenario() -> tuple[Plan, ApplyResult]:
        async with sandbox(tmp_path / "e.db", intercept=no_mcp) as (client, _):
            return await apply_policy(client, path, tmp_path)

    plan, result = asyncio.run(scenario())
    assert len(plan.orgs[0].manual_steps) == 2  # the plan knows
    report = render_apply(result)
    assert "IP allowlists converged; MCP: 2 manual steps pending" in report, report
    assert "Atlassian Administration" in report, report


@pytest.mark.parametrize(
    "damage",
    ["not-utf8", "bad-must-allow"],
)
def test_damaged_plan_files_are_usage_errors(cli: CliRunner, tmp_path: Path, damage: str) -> None:
    policy = policy_file(
        tmp_path,
        "org: {id: org-damaged}\nipAllowlists:\n"
        "  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}\n",
    )
    saved = tmp_path / "plan.json"
    assert cli("plan", str(policy), "--out", str(saved)).code == 0
    if damage == "not-utf8":
        saved.write_bytes(b"\xff\xfe" + saved.read_bytes())
    else:
        data = json.loads(saved.read_text())
        data["orgs"][0]["guards"]["mustAllow"] = ["not-an-address"]
        saved.write_text(json.dumps(data))
    result = cli("apply", "--plan", str(saved))
    assert "internal error" not in result.stderr, result.stderr
    assert result.code == 64


# ----------------------------------------------------------------------------- the client


def test_a_key_with_a_newline_never_reaches_an_error_message(emulator: Emulator) -> None:
    secret = Secret("SECRET-LINE-ONE\nSECRET-LINE-TWO")

    async def scenario() -> str:
        http = httpx.AsyncClient(auth=BearerAuth(secret), timeout=10)
        client = AdminClient(
            http, clock=FakeClock(), retry=RetryPolicy(max_attempts=1), secret=secret
        )
        try:
            await client.get_json(f"{emulator.url}/admin/control/v1/orgs/o/policies")
        except ApiError as e:
            return str(e)
        finally:
            await client.aclose()
        return ""

    message = asyncio.run(scenario())
    assert "SECRET-LINE" not in message, message


def test_a_rate_limit_reset_in_milliseconds_does_not_crash_the_client() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"X-RateLimit-Reset": "1795694400000"})
        return httpx.Response(200, json={"data": []})

    async def scenario() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = AdminClient(http, clock=FakeClock(), retry=RetryPolicy(rng=random.Random(1)))
        try:
            await client.get_json("https://api.example.invalid/x")
        except ApiError:
            pass
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_read_timeout_on_the_workspaces_search_is_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"data": [], "meta": {}, "links": {}})

    async def scenario() -> list[Any]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = AdminClient(http, clock=FakeClock(), retry=RetryPolicy(rng=random.Random(1)))
        try:
            urls = Endpoints("https://api.example.invalid", "o1")
            return [w async for w in client.pages("POST", urls.workspaces, json_body={})]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == []
