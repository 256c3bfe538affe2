"""`export` of an org past 500 entries per app says so and writes no policy (it would not
validate), through the CLI. The sandbox's own API refuses such a state, so the test puts it
into the SQLite file behind the API's back, as an org set up before the limit would be."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rovo_reconcile.emulator.store import Store, workspace_id

from .conftest import CliRunner

ORG = "5e2a9c1b-3d4f-4a6b-8c7d-9e0f1a2b3c4d"


def blocks(count: int, start: int = 0) -> list[str]:
    return [f"52.{n // 256}.{n % 256}.0/24" for n in range(start, start + count)]


def seed(db: Path, lists: dict[str, tuple[list[str], str]]) -> None:
    """Allowlists (name -> addresses, status) on every Jira workspace, written directly."""
    store = Store(db)
    store.ensure_org(ORG, time.time_ns() // 1_000_000)
    resources = [workspace_id(ORG, "jira-software", n) for n in ("acme", "acme-eng")]
    with store._write() as conn:
        for number, (name, (addresses, status)) in enumerate(lists.items()):
            conn.execute(
                "INSERT INTO policies (org_id, id, type, name, status, rule, resources,"
                " created_at, updated_at, written_at_ms, outcome) VALUES (?, ?, 'ip-allowlist',"
                " ?, ?, ?, ?, '2026-01-01T00:00:00Z', NULL, 0, 'applied')",
                (
                    ORG,
                    f"policy-{number}",
                    name,
                    status,
                    json.dumps({"in": addresses, "allowMobileBypass": False}),
                    json.dumps(resources),
                ),
            )
    store.close()


def test_export_of_an_org_past_the_limit_says_so_and_prints_no_policy(
    cli: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, {"Office": (blocks(400), "enabled"), "Parked": (blocks(150, 1000), "disabled")})
    result = cli("export", "--org", ORG, "--sandbox-db", str(db))
    assert result.code == 1, result.stdout
    assert result.stdout == ""
    assert "cannot export org" in result.stderr
    assert "jira (550)" in result.stderr
    assert "disabled ones included" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_at_exactly_the_limit_writes_a_policy_that_validates(
    cli: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, {"Office": (blocks(400), "enabled"), "Parked": (blocks(100, 1000), "disabled")})
    result = cli("export", "--org", ORG, "--sandbox-db", str(db))
    assert result.code == 0, result.stderr
    exported = tmp_path / "exported.yaml"
    exported.write_text(result.stdout, encoding="utf-8")
    assert cli("validate", str(exported)).code == 0
