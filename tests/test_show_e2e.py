"""`show` end to end through the CLI subprocess: sandbox and emulator agree; secrets never leak."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import CliRunner
from .emulator_fixture import start_emulator

ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"
CANARY = "canary-7f3e9b2a-do-not-print"


def _without_target(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "target" not in line)


def test_show_on_the_sandbox_prints_a_policy_shaped_document(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A new sandbox org reads back with the defaults and names its target."""
    result = cli("show", "--org", ORG, "--format", "json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["org"] == {"id": ORG}
    assert doc["mcp"] == {
        "allowAtlassianSupportedDomains": True,
        "domains": [],
        "authentication": {"apiToken": False},
    }
    assert doc["ipAllowlists"] == []
    assert doc["live"]["target"].startswith("sandbox (")
    assert (tmp_path / ".rovo-reconcile" / "sandbox.db").exists()


def test_show_reads_the_same_org_through_emulator_and_sandbox(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Apart from the line naming the target, both paths print the same YAML."""
    sandbox = cli("show", "--org", ORG)
    with start_emulator(tmp_path, "--api-key", f"{CANARY}:read") as emu:
        remote = cli(
            "show", "--org", ORG, "--api-url", emu.url, env={"ATLASSIAN_ADMIN_API_KEY": CANARY}
        )
    assert sandbox.code == remote.code == 0, remote.stderr
    assert _without_target(sandbox.stdout) == _without_target(remote.stdout)
    assert f"atlassian ({emu.url})" in remote.stdout


def test_wrong_key_is_a_clear_401_and_never_printed(cli: CliRunner, tmp_path: Path) -> None:
    """A rejected key gives exit 1 and a hint, and the key appears in no output or file."""
    key_file = tmp_path / "key.txt"
    key_file.write_text(CANARY + "\n")
    with start_emulator(tmp_path, "--api-key", "the-right-key:read") as emu:
        result = cli("show", "--org", ORG, "--api-url", emu.url, "--api-key-file", str(key_file))
    assert result.code == 1
    assert "HTTP 401" in result.stderr
    assert "ATLASSIAN_ADMIN_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert CANARY not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != key_file:
            assert CANARY.encode() not in path.read_bytes(), path


def test_missing_key_for_the_atlassian_target_is_a_usage_error(cli: CliRunner) -> None:
    """The atlassian target without a key stops before any request, with exit 64."""
    result = cli("show", "--org", ORG, "--target", "atlassian", env={"ATLASSIAN_ADMIN_API_KEY": ""})
    assert result.code == 64
    assert "ATLASSIAN_ADMIN_API_KEY" in result.stderr


def test_a_key_that_cannot_be_sent_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    """A key with a space inside is refused up front (64), and never echoed."""
    key_file = tmp_path / "key"
    key_file.write_text("canary secret-value\n")
    result = cli("show", "--org", ORG, "--target", "atlassian", "--api-key-file", str(key_file))
    assert result.code == 64
    assert "whitespace" in result.stderr
    assert "secret-value" not in result.stdout + result.stderr


def test_unreachable_api_is_a_clean_error(cli: CliRunner) -> None:
    """Nothing listening: exit 1 with a message, no traceback (and no internet is touched)."""
    result = cli(
        "show",
        "--org",
        ORG,
        "--api-url",
        "http://127.0.0.1:9",
        env={"ATLASSIAN_ADMIN_API_KEY": "k", "ROVO_RECONCILE_RETRY_BUDGET": "1"},
    )
    assert result.code == 1
    assert "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_sandbox_says_when_it_creates_an_org(cli: CliRunner) -> None:
    """A mistyped org id on the sandbox is not silent: the first read says it made the org."""
    first = cli("show", "--org", "org-typo")
    assert first.code == 0
    assert "sandbox: created org org-typo" in first.stderr
    again = cli("show", "--org", "org-typo")
    assert "created org" not in again.stderr
