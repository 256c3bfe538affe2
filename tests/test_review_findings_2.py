"""Second review of the apply path (write order, lockout guard, saved plans, ack pins, live
reading, client): each test shows one confirmed bug and is xfail(strict) until it is fixed.
Remove the marker together with the fix."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from rovo_reconcile.api.live import Endpoints, read_org
from rovo_reconcile.apply import ApplyResult
from rovo_reconcile.emulator.inspect import locked_out
from rovo_reconcile.plan import Change
from rovo_reconcile.policy.model import domain_key
from rovo_reconcile.policy.normalize import normalize_domain
from rovo_reconcile.render.drift import live_id

from .apply_helpers import (
    BASE,
    apply_policy,
    attach_partly,
    policy_body,
    policy_file,
    sandbox,
)
from .conftest import CliRunner

# ----------------------------------------------------------------------------- helpers


def _apply_watching(
    tmp_path: Path, org: str, setup: str | None, policy: str, must: str, *, force: bool = False
) -> tuple[ApplyResult, list[tuple[str, list[str]]]]:
    """Apply `setup` (if any), then apply `policy` while recording, after every write of the
    second apply, the workspaces that lock `must` out."""
    db = tmp_path / "e.db"
    moments: list[tuple[str, list[str]]] = []

    def snapshot(method: str, url_path: str) -> None:
        moments.append((f"{method} {url_path}", locked_out(db, org, must)))

    async def scenario() -> ApplyResult:
        if setup is not None:
            first = policy_file(tmp_path, setup, "setup.yaml")
            async with sandbox(db) as (client, _):
                assert (await apply_policy(client, first, tmp_path))[1].exit_code == 0
            first.unlink()
        path = policy_file(tmp_path, policy)
        async with sandbox(db, after=snapshot) as (client, _):
            return (await apply_policy(client, path, tmp_path, force=force))[1]

    return asyncio.run(scenario()), moments


# ----------------------------------------------------------------------------- write ordering

_TWO_LISTS = """\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Alpha, enabled: true, apps: [{apps}], addresses: [18.0.0.0/8]}}
  - {{name: Beta, enabled: true, apps: [{apps}], addresses: [52.14.0.0/16]}}
guards: {{mustAllow: [52.14.1.1]}}
"""


@pytest.mark.parametrize(
    ("setup", "apps"),
    [
        pytest.param(None, "jira", id="two-new-lists"),
        pytest.param(_TWO_LISTS.format(org="{org}", apps="jira"), "jira, confluence", id="add-app"),
    ],
)
def test_restricting_an_open_app_with_two_lists_never_locks_out_must_allow(
    tmp_path: Path, setup: str | None, apps: str
) -> None:
    """Two enabled lists on one app that had none, only Beta admitting mustAllow 52.14.1.1.
    Before: the app admits everyone; after: 18/8 and 52.14/16. So 52.14.1.1 is admitted before
    and after, and must be admitted after every write (a failure between the two writes
    would otherwise leave the break-glass address locked out)."""
    org = "org-two"
    result, moments = _apply_watching(
        tmp_path,
        org,
        setup.replace("{org}", org) if setup else None,
        _TWO_LISTS.format(org=org, apps=apps),
        "52.14.1.1",
    )
    assert result.exit_code == 0, result.orgs[0].message
    assert moments
    assert [m for m in moments if m[1]] == [], "mustAllow 52.14.1.1 was locked out after a write"


def test_disabling_a_list_before_its_replacement_is_enabled_never_locks_out(
    tmp_path: Path,
) -> None:
    """Old [52.14/16] and Other [18/8] guard jira; Old is disabled (--force) and New [52.14/16]
    takes over. mustAllow 52.14.1.1 is admitted before and after; --force passes the
    'disables an enabled allowlist' guard, never a lockout, not even a passing one."""
    org = "org-swap"
    setup = f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Old, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}}
  - {{name: Other, enabled: true, apps: [jira], addresses: [18.0.0.0/8]}}
guards: {{mustAllow: [52.14.1.1]}}
"""
    policy = setup.replace(
        "{name: Old, enabled: true",
        "{name: New, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}\n"
        "  - {name: Old, enabled: false",
    )
    result, moments = _apply_watching(tmp_path, org, setup, policy, "52.14.1.1", force=True)
    assert result.exit_code == 0, result.orgs[0].message
    assert [m for m in moments if m[1]] == [], "mustAllow 52.14.1.1 was locked out after a write"


# ----------------------------------------------------------------------------- lockout guard


def test_lockout_guard_sees_the_partial_attachments_apply_keeps(tmp_path: Path) -> None:
    """Live Office (made outside Git) guards confluence and ONE Jira site with [52.14/16, 18/8].
    The policy narrows Office to [18/8] on confluence and adds VPN [52.14/16] there. Apply keeps
    Office on the Jira site (partial attachments are left alone), so that site no longer admits
    mustAllow 52.14.1.1: the guard must refuse, or the attachment must keep admitting it."""
    org, db = "org-partial-guard", tmp_path / "e.db"
    path = policy_file(
        tmp_path,
        f"""\
org: {{id: {org}}}
ipAllowlists:
  - {{name: Office, enabled: true, apps: [confluence], addresses: [18.0.0.0/8]}}
  - {{name: VPN, enabled: true, apps: [confluence], addresses: [52.14.0.0/16]}}
guards: {{mustAllow: [52.14.1.1]}}
""",
    )

    async def scenario() -> tuple[ApplyResult, str]:
        async with sandbox(db) as (client, _):
            jira_one = await attach_partly(client, org, "Office", ["52.14.0.0/16", "18.0.0.0/8"])
            assert locked_out(db, org, "52.14.1.1") == []
            return (await apply_policy(client, path, tmp_path))[1], jira_one

    result, jira_one = asyncio.run(scenario())
    locked = locked_out(db, org, "52.14.1.1")
    assert result.exit_code == 3 or jira_one not in locked, (
        f"apply exited {result.exit_code} and left mustAllow 52.14.1.1 locked out of {locked}"
    )


# ----------------------------------------------------------------------------- ack pins


def _numeric_live_id_domain() -> str:
    """A domain whose drift hash happens to start with 11 decimal digits: a bare hex prefix of
    it would read as a YAML integer."""
    for n in range(100_000):
        pattern = normalize_domain(f"https://host{n}.example.com/**")
        change = Change("delete", "mcp.domain", domain_key(pattern), pattern, None, "narrows")
        if live_id(change)[1:].isdigit():
            return pattern
    raise AssertionError("no all-digit live id found")


def test_an_ack_pinned_to_an_all_digit_live_id_is_accepted(cli: CliRunner, tmp_path: Path) -> None:
    """The drift report prints `live 123456789012`; pasted into the ack file as printed, the
    YAML core schema reads it as an integer, and the ack file is rejected."""
    pattern = _numeric_live_id_domain()
    policy = policy_file(tmp_path, f"org: {{id: org-ackpin}}\nmcp: {{domains: ['{pattern}']}}\n")
    assert cli("apply", str(policy), "--yes").code == 0
    policy.write_text(policy.read_text().replace(f"'{pattern}'", ""))
    report = cli("drift", str(policy), "--format", "json")
    (item,) = json.loads(report.stdout)["items"]
    assert item["live"][1:].isdigit()
    assert f"live {item['live']}" in cli("drift", str(policy)).stdout  # as the user sees it
    ack = tmp_path / "ack.yaml"
    ack.write_text(
        "acknowledged:\n  - org: org-ackpin\n"
        f"    key: {domain_key(pattern)}\n"
        "    reason: pilot, SEC-9\n    expires: 2027-01-31\n"
        f"    live: {item['live']}\n"
    )
    drift = cli("drift", str(policy), "--ack", str(ack))
    assert drift.code == 0, drift.stdout + drift.stderr


# ----------------------------------------------------------------------------- live reading


def test_show_and_export_do_not_silently_hide_a_duplicate_named_allowlist(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Two live allowlists named Office: plan calls that an org error, but `show` prints one of
    them and says nothing (the note that said so was dropped), and `export` prints a policy
    that does not plan to no changes."""
    org = "org-dupshow"
    policy = policy_file(
        tmp_path,
        f"org: {{id: {org}}}\nipAllowlists:\n"
        "  - {name: Office, enabled: true, apps: [jira], addresses: [52.14.0.0/16]}\n",
    )
    assert cli("apply", str(policy), "--yes").code == 0

    async def add_duplicate() -> None:
        async with sandbox(tmp_path / ".rovo-reconcile" / "sandbox.db") as (client, _):
            live = await read_org(client, BASE, org)
            confluence = [w.id for w in live.workspaces if w.app == "confluence"]
            await client.send_json(
                "POST",
                Endpoints(BASE, org).policies,
                policy_body("Office", "enabled", ["18.0.0.0/8"], confluence),
            )

    asyncio.run(add_duplicate())
    assert cli("plan", str(policy)).code == 1  # plan does see it
    show = cli("show", "--org", org)
    exported = cli("export", "--org", org)
    (tmp_path / "exported.yaml").write_text(exported.stdout)
    replan = cli("plan", str(tmp_path / "exported.yaml"), "--detailed-exitcode")
    said = [
        out
        for out in (show.stdout + show.stderr, exported.stderr)
        if "18.0.0.0/8" in out or "more than one" in out or "two live" in out
    ]
    assert len(said) == 2, "show or export hid the second 'Office':\n" + show.stderr
    assert exported.code != 0 or replan.code == 0, replan.stdout + replan.stderr


def test_two_live_spellings_of_one_domain_are_both_removed(tmp_path: Path) -> None:
    """A server that stores patterns as sent may hold `https://Pilot.example.com/**` and
    `https://pilot.example.com/**`. Both read as one canonical pattern, but apply only knows
    (and deletes) the first id, so the run ends with 'did not converge'."""
    org, db = "org-spellings", tmp_path / "e.db"
    path = policy_file(tmp_path, f"org: {{id: {org}}}\nmcp: {{domains: []}}\n")

    async def scenario() -> ApplyResult:
        async with sandbox(db) as (client, _):
            await read_org(client, BASE, org)  # creates the org
            with sqlite3.connect(db) as con:
                for n, pattern in enumerate(
                    ("https://Pilot.example.com/**", "https://pilot.example.com/**")
                ):
                    con.execute(
                        "INSERT INTO mcp_domains (org_id, id, pattern, canonical) "
                        "VALUES (?, ?, ?, ?)",
                        (org, f"dom-{n}", pattern, f"as-sent-{n}"),
                    )
            return (await apply_policy(client, path, tmp_path))[1]

    result = asyncio.run(scenario())
    assert result.exit_code == 0, result.orgs[0].message


# ----------------------------------------------------------------------------- the API key


def test_an_api_key_file_that_is_not_utf8_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    """`_api_key` catches OSError only: a key file in Latin-1 is an 'internal error' (exit 1)
    whose message quotes a byte of the key and its position."""
    key_file = tmp_path / "key.txt"
    key_file.write_bytes(b"SECRETKEY\xe9XYZ\n")
    result = cli(
        "show", "--org", "o1", "--api-url", "http://127.0.0.1:9", "--api-key-file", str(key_file)
    )
    assert result.code == 64, result.stderr
    assert "internal error" not in result.stderr
    assert "0xe9" not in result.stderr
