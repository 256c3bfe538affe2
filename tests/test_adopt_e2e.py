"""`adopt` end to end through the CLI subprocess, on an emulator on loopback and on the sandbox:
out-of-band changes are accepted into a heavily commented policy, which then plans to no
changes; the diff shows only the changed lines; guards are never lost or broken unasked."""

from __future__ import annotations

import difflib
import os
import shutil
import stat
from pathlib import Path

from syrupy.assertion import SnapshotAssertion

from .admin_ui import AdminUi
from .conftest import EXAMPLES, ROOT, CliRunner
from .emulator_fixture import ADMIN_KEY, EmulatorPool, admin_flags, start_emulator

FIXTURE = ROOT / "tests" / "adopt" / "commented.yaml"
ORG = "e2b8f4a6-0c1d-4f93-8b7e-5a6d3c9e1f20"
KEY = ADMIN_KEY
GUARDS = (
    "guards:\n"
    '  # "Head office and DR site" covers every app, so the bastion stays reachable.\n'
    "  mustAllow: [77.87.233.150]\n"
    "  maxDeletePercent: 10   # small lists: be strict\n"
)


def _policy(tmp_path: Path, source: Path = FIXTURE) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(source, folder / source.name))


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_adopt_on_the_emulator_accepts_out_of_band_changes_and_then_plans_clean(
    cli: CliRunner, tmp_path: Path, snapshot: SnapshotAssertion, emulator_pool: EmulatorPool
) -> None:
    """Domains, a setting, addresses in block and flow lists, apps, a new and a deleted
    allowlist and an expired entry live still has: a diff of only those lines, then no plan."""
    policy = _policy(tmp_path)
    before = policy.read_text("utf-8")
    env = {"ATLASSIAN_ADMIN_API_KEY": KEY}
    with emulator_pool.fresh(*admin_flags(KEY)) as emu, AdminUi(emu.url, KEY, ORG) as ui:
        api = ("--api-url", emu.url)
        assert cli("apply", str(policy), "--yes", *api, env=env).code == 0
        ui.add_domain("https://new-tool.example.com/**")
        ui.remove_domain("https://wiki-bot.contoso-savings.com/**")
        ui.add_domain("https://pilot.contoso-savings.com/**")  # expired in the file
        ui.settings(authentication={"apiToken": True})
        ui.edit_allowlist(
            "Head office and DR site",
            remove=["85.13.140.224/29"],
            add=["91.198.174.0/24"],
            bypass=True,
        )
        ui.edit_allowlist(
            "Security operations",
            remove=["94.130.51.9/32"],
            add=["203.0.113.0/24"],
            apps=["jira", "jsm", "confluence", "compass"],
        )
        ui.delete_allowlist("Contractors")
        ui.create_allowlist("Partners", ["5.9.0.0/16"], ["confluence"], enabled=False)

        dry = cli("adopt", str(policy.parent), "--dry-run", *api, env=env)
        assert dry.code == 0, dry.stderr
        assert policy.read_text("utf-8") == before, "--dry-run wrote the file"
        adopted = cli("adopt", str(policy.parent), *api, env=env)
        assert adopted.code == 0, adopted.stderr
        after = policy.read_text("utf-8")
        replan = cli("plan", str(policy), "--detailed-exitcode", *api, env=env)
    assert replan.code == 0, replan.stdout + replan.stderr
    assert "No changes" in replan.stdout
    assert dry.stdout.replace(str(tmp_path), "TMP") == snapshot(name="diff")
    assert after == snapshot(name="file")
    assert adopted.stdout.replace(str(tmp_path), "TMP") == snapshot(name="summary")
    # the dry run's diff is what was written, and it touches only the adopted entries
    assert _changed_lines(before, after) == snapshot(name="changed-lines")
    assert after.endswith(GUARDS)


def test_adopt_on_the_sandbox_of_the_quickstart(
    cli: CliRunner, tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    """The default target: a colleague changes the sandbox (through an emulator serving its
    state file); adopt takes it in and plan on the sandbox shows no changes."""
    policy = _policy(tmp_path)
    assert cli("apply", str(policy), "--yes").code == 0
    sandbox = tmp_path / ".rovo-reconcile" / "sandbox.db"
    with start_emulator(tmp_path, state=sandbox) as emu, AdminUi(emu.url, None, ORG) as ui:
        ui.settings(allowAtlassianSupportedDomains=True)
        ui.remove_domain("https://ai-gateway.contoso-savings.com/mcp/**")
        ui.edit_allowlist("Contractors", enabled=True, add=["45.83.64.64/28"])
    adopted = cli("adopt", str(policy))
    assert adopted.code == 0, adopted.stderr
    assert policy.read_text("utf-8") == snapshot
    replan = cli("plan", str(policy), "--detailed-exitcode")
    assert replan.code == 0, replan.stdout + replan.stderr


def test_adopt_refuses_to_accept_a_live_state_that_shuts_a_must_allow_address_out(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Exit 3 and nothing written; --force writes it with a warning, guards untouched,
    and validate then fails on the lockout until someone fixes it."""
    policy = _policy(tmp_path)
    before = policy.read_bytes()
    assert cli("apply", str(policy), "--yes").code == 0
    sandbox = tmp_path / ".rovo-reconcile" / "sandbox.db"
    with start_emulator(tmp_path, state=sandbox) as emu, AdminUi(emu.url, None, ORG) as ui:
        ui.edit_allowlist("Head office and DR site", remove=["77.87.233.150/32"])
    refused = cli("adopt", str(policy))
    assert refused.code == 3, refused.stderr
    assert "77.87.233.150" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert policy.read_bytes() == before
    forced = cli("adopt", str(policy), "--force")
    assert forced.code == 0, forced.stderr
    assert "warning" in forced.stderr
    after = policy.read_text("utf-8")
    assert "77.87.233.150\n" not in after.split("guards:")[0]
    assert after.endswith(GUARDS)
    check = cli("validate", str(policy))
    assert check.code == 1
    assert "guard.lockout" in check.stdout


def test_adopt_with_nothing_to_adopt_leaves_the_file_alone(cli: CliRunner, tmp_path: Path) -> None:
    policy = _policy(tmp_path, EXAMPLES / "locked-down.yaml")
    assert cli("apply", str(policy), "--yes").code == 0
    os.utime(policy, (1_000_000_000, 1_000_000_000))
    result = cli("adopt", str(policy))
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "rewrote 0 of 1 file(s)" in result.stderr
    assert policy.stat().st_mtime == 1_000_000_000


def test_adopt_writes_nothing_when_live_cannot_be_written_as_a_valid_policy(
    cli: CliRunner, tmp_path: Path
) -> None:
    """An allowlist attached to no app cannot be a valid policy entry (apps needs one):
    exit 1, the reason at its line, and no file changes, not even the other files'."""
    policy = _policy(tmp_path)
    other = _policy(tmp_path, EXAMPLES / "small-team.yaml")
    assert cli("apply", str(policy.parent), "--yes").code == 0
    before = {p: p.read_bytes() for p in (policy, other)}
    sandbox = tmp_path / ".rovo-reconcile" / "sandbox.db"
    with start_emulator(tmp_path, state=sandbox) as emu:
        with AdminUi(emu.url, None, ORG) as ui:
            ui.edit_allowlist("Contractors", apps=[])
        small_org = _org_of(other)
        with AdminUi(emu.url, None, small_org) as ui:
            ui.add_domain("https://elsewhere.example.com/**")
    result = cli("adopt", str(policy.parent))
    assert result.code == 1
    assert "commented.yaml: live cannot be written into this file" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in before} == before


def _org_of(policy: Path) -> str:
    for line in policy.read_text("utf-8").splitlines():
        if line.strip().startswith("id:"):
            return line.split(":", 1)[1].split("#")[0].strip()
    raise AssertionError(f"no org id in {policy}")


def test_adopt_keeps_bom_crlf_and_file_mode(cli: CliRunner, tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    text = policy.read_text("utf-8")
    policy.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    policy.chmod(0o640)
    assert cli("apply", str(policy), "--yes").code == 0
    sandbox = tmp_path / ".rovo-reconcile" / "sandbox.db"
    with start_emulator(tmp_path, state=sandbox) as emu, AdminUi(emu.url, None, ORG) as ui:
        ui.add_domain("https://crlf.example.com/**")
    result = cli("adopt", str(policy))
    assert result.code == 0, result.stderr
    raw = policy.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"    - pattern: https://crlf.example.com/**\r\n" in raw
    assert stat.S_IMODE(policy.stat().st_mode) == 0o640
    assert cli("plan", str(policy), "--detailed-exitcode").code == 0


def test_adopt_usage_errors(cli: CliRunner, tmp_path: Path) -> None:
    """An org no file governs is a usage error; an invalid policy reads nothing (exit 1)."""
    policy = _policy(tmp_path)
    unknown = cli("adopt", str(policy), "--org", "00000000-0000-4000-8000-000000000000")
    assert unknown.code == 64
    assert "governs org" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.read_text("utf-8").replace("apps: [jira]", "apps: [jria]"))
    invalid = cli("adopt", str(broken))
    assert invalid.code == 1
    assert "jria" in invalid.stderr
    assert not (tmp_path / ".rovo-reconcile").exists(), "an invalid policy must not be planned"


def test_adopt_leaves_unmanaged_sections_absent_and_org_picks_one_file(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Live MCP changes do not enter a file without `mcp`; with --org only that org's file is
    rewritten although another org drifted too."""
    examples = tmp_path / "policies"
    shutil.copytree(EXAMPLES, examples)
    assert cli("apply", str(examples), "--yes").code == 0
    before = {p: p.read_bytes() for p in examples.iterdir()}
    allowlists_only = examples / "ip-allowlists-only.yaml"
    sandbox = tmp_path / ".rovo-reconcile" / "sandbox.db"
    with start_emulator(tmp_path, state=sandbox) as emu:
        with AdminUi(emu.url, None, _org_of(allowlists_only)) as ui:
            ui.settings(allowAtlassianSupportedDomains=False, authentication={"apiToken": True})
            ui.add_domain("https://unmanaged.example.com/**")
        with AdminUi(emu.url, None, ORG) as ui:
            ui.add_domain("https://managed.example.com/**")
    result = cli("adopt", str(examples), "--org", _org_of(allowlists_only))
    assert result.code == 0, result.stderr
    assert "rewrote 0 of 1 file(s)" in result.stderr
    assert {p: p.read_bytes() for p in examples.iterdir()} == before
    result = cli("adopt", str(examples))
    assert result.code == 0, result.stderr
    assert "rewrote 1 of 4 file(s)" in result.stderr
    changed = [p.name for p in examples.iterdir() if p.read_bytes() != before[p]]
    assert changed == ["locked-down.yaml"]
    assert "\nmcp:" not in allowlists_only.read_text("utf-8")
