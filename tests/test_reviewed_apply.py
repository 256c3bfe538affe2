"""Guards in the plan, `apply --reviewed`, and why a saved plan went stale: through the real CLI
against the emulator on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .apply_helpers import policy_file
from .conftest import CliRunner, Result
from .emulator_fixture import ADMIN_KEY, Emulator, EmulatorPool, admin_flags, ui_adds_domain, writes

KEY = ADMIN_KEY
ORG = "org-reviewed"
DOMAINS = f"/admin/control/v1/orgs/{ORG}/rovo-mcp/domains"

POLICY = f"""\
org: {{id: {ORG}, name: Acme Corp}}
mcp:
  domains:
    - pattern: https://app.example.com/**
      note: the internal assistant
      expires: 2027-06-30
ipAllowlists:
  - name: Office
    enabled: true
    apps: [jira]
    addresses:
      - address: 52.14.0.0/16
        note: head office egress
guards: {{mustAllow: [52.14.1.1]}}
"""


@pytest.fixture
def emulator(emulator_pool: EmulatorPool) -> Iterator[Emulator]:
    with emulator_pool.fresh(*admin_flags(KEY)) as emu:
        yield emu


def remote(cli: CliRunner, emu: Emulator, *args: str) -> Result:
    return cli(*args, "--api-url", emu.url, env={"ATLASSIAN_ADMIN_API_KEY": KEY})


def add_domain_in_ui(emu: Emulator, pattern: str) -> None:
    ui_adds_domain(emu, KEY, ORG, pattern)


def live_domains(emu: Emulator) -> set[str]:
    answer = httpx.get(f"{emu.url}{DOMAINS}", headers={"Authorization": f"Bearer {KEY}"})
    return {d["attributes"]["pattern"] for d in answer.json()["data"]}


# ----------------------------------------------------------------------------- guards in plan


def test_plan_exits_3_and_says_why_when_apply_would_refuse(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    assert remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    policy_file(tmp_path, POLICY.split("ipAllowlists:")[0] + "ipAllowlists: []\n")

    text = remote(cli, emulator, "plan", str(policy))
    assert text.code == 3, text.stderr
    assert "apply will refuse: the plan deletes the enabled allowlist 'Office'" in text.stdout
    assert "(--force overrides)" in text.stdout
    assert "Apply will refuse 1 org." in text.stdout

    as_json = remote(cli, emulator, "plan", str(policy), "--format", "json")
    assert as_json.code == 3
    (org,) = json.loads(as_json.stdout)["orgs"]
    assert {"forceable": True}.items() <= org["refusals"][0].items()

    markdown = remote(cli, emulator, "plan", str(policy), "--format", "markdown")
    assert "### :no_entry: Apply will refuse" in markdown.stdout
    assert "Acme Corp (`org-reviewed`)" in markdown.stdout

    forced = remote(cli, emulator, "plan", str(policy), "--force", "--detailed-exitcode")
    assert forced.code == 2, forced.stdout
    assert "apply will refuse" not in forced.stdout


def test_plan_shows_the_policy_notes_of_what_a_change_adds(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    result = remote(cli, emulator, "plan", str(policy), "--format", "json")
    assert result.code == 0, result.stderr
    changes = {c["key"]: c for c in json.loads(result.stdout)["orgs"][0]["changes"]}
    assert changes["mcp.domain:https://app.example.com/**"]["notes"] == [
        "https://app.example.com/**: the internal assistant; expires 2027-06-30"
    ]
    assert changes["ip_allowlist:Office"]["notes"] == ["52.14.0.0/16: head office egress"]
    text = remote(cli, emulator, "plan", str(policy)).stdout
    assert "note: 52.14.0.0/16: head office egress" in text


# ----------------------------------------------------------------------------- apply --reviewed


def test_reviewed_plan_that_still_holds_is_applied(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    reviewed = tmp_path / "reviewed.json"
    assert remote(cli, emulator, "plan", str(policy), "--out", str(reviewed)).code == 0
    result = remote(cli, emulator, "apply", str(policy), "--reviewed", str(reviewed))
    assert result.code == 0, result.stdout + result.stderr
    assert "the changes are the reviewed ones" in result.stderr
    assert live_domains(emulator) == {"https://app.example.com/**"}


def test_a_ui_change_after_review_makes_apply_refuse_without_writing(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    reviewed = tmp_path / "reviewed.json"
    assert remote(cli, emulator, "plan", str(policy), "--out", str(reviewed)).code == 0
    add_domain_in_ui(emulator, "https://colleague.example.com/**")
    before = writes(emulator)

    result = remote(cli, emulator, "apply", str(policy), "--reviewed", str(reviewed))

    assert result.code == 3, result.stdout + result.stderr
    assert writes(emulator) == before, "apply wrote although the changes were not reviewed"
    assert "live changed since review" in result.stdout
    assert "mcp.domain:https://colleague.example.com/**: new, not in the reviewed plan" in (
        result.stdout
    )
    assert "the changes differ from the reviewed plan, so nothing was written" in result.stderr
    assert "https://colleague.example.com/**" in live_domains(emulator)


def test_a_policy_change_after_review_makes_apply_refuse(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    reviewed = tmp_path / "reviewed.json"
    assert remote(cli, emulator, "plan", str(policy), "--out", str(reviewed)).code == 0
    policy_file(tmp_path, POLICY.replace("52.14.0.0/16", "52.14.0.0/15"))

    result = remote(cli, emulator, "apply", str(policy), "--reviewed", str(reviewed))

    assert result.code == 3
    assert "the policy changed since review" in result.stdout
    assert "after.addresses now also holds" in result.stdout
    assert writes(emulator) == 0


def test_an_edited_plan_file_is_refused_by_its_digest(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    saved = tmp_path / "plan.json"
    assert remote(cli, emulator, "plan", str(policy), "--out", str(saved)).code == 0
    data = json.loads(saved.read_text())
    data["orgs"][0]["changes"][0]["after"] = "https://evil.example.com/**"
    saved.write_text(json.dumps(data))
    for option in ("--plan", "--reviewed"):
        args = [option, str(saved)] if option == "--plan" else [str(policy), option, str(saved)]
        result = remote(cli, emulator, "apply", *args)
        assert result.code == 64, result.stderr
        assert "changes_digest does not match its changes" in result.stderr
    assert writes(emulator) == 0


def test_a_stale_saved_plan_says_what_changed_in_live(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    saved = tmp_path / "plan.json"
    assert remote(cli, emulator, "plan", str(policy), "--out", str(saved)).code == 0
    add_domain_in_ui(emulator, "https://colleague.example.com/**")

    result = remote(cli, emulator, "apply", "--plan", str(saved))

    assert result.code == 3
    assert "live changed since the plan:" in result.stdout
    assert 'mcp: domains now also holds "https://colleague.example.com/**"' in result.stdout


def test_apply_force_does_not_announce_the_refusals_it_passes(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, POLICY)
    assert remote(cli, emulator, "apply", str(policy), "--yes").code == 0
    policy_file(tmp_path, POLICY.split("ipAllowlists:")[0] + "ipAllowlists: []\n")
    forced = remote(cli, emulator, "apply", str(policy), "--yes", "--force")
    assert forced.code == 0, forced.stdout + forced.stderr
    assert "apply will refuse" not in forced.stdout
