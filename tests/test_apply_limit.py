"""apply near Atlassian's 500 entries per app, through the CLI against the sandbox, whose
emulator answers 400 to any write past the limit (tests/test_emulator_limit.py).

Where widening first would pass the limit but narrowing first fits, apply converges with
every write accepted; where no order fits, plan and apply refuse (exit 3, no --force) and
nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from rovo_reconcile.emulator.store import Store

from .conftest import CliRunner

ORG = "7d1c4a2e-9b3f-4e5a-8c6d-2f1e0a9b8c7d"
BREAK_GLASS = "203.0.113.7"


def blocks(count: int, start: int = 0) -> list[str]:
    return [f"52.{n // 256}.{n % 256}.0/24" for n in range(start, start + count)]


def policy(tmp_path: Path, lists: dict[str, list[str]], must_allow: str | None = None) -> Path:
    lines = ["apiVersion: rovo-reconcile/v1", "kind: OrgPolicy", f"org: {{id: {ORG}}}"]
    lines.append("ipAllowlists:")
    for name, addresses in lists.items():
        lines += [f"  - name: {name}", "    enabled: true", "    apps: [jira]", "    addresses:"]
        lines += [f"      - {a}" for a in addresses]
    if must_allow:
        lines += ["guards:", f"  mustAllow: [{must_allow}]"]
    path = tmp_path / "policies" / "org.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_log(db: Path) -> list[dict[str, object]]:
    store = Store(db)
    try:
        return store.write_log()
    finally:
        store.close()


def test_a_swap_near_the_limit_narrows_first_and_converges(cli: CliRunner, tmp_path: Path) -> None:
    """Office (450) and Other (40) on Jira; Office swaps 60 entries. The union would hold 550
    with Other: apply cuts Office to the 390 it keeps, then writes it whole. Every write is
    accepted by the emulator's limit, and live converges."""
    db = tmp_path / "sandbox.db"
    seed = policy(tmp_path, {"Office": blocks(450), "Other": blocks(40, 1000)})
    assert cli("apply", str(seed), "--yes", "--sandbox-db", str(db)).code == 0
    before = len(write_log(db))
    swapped = policy(
        tmp_path, {"Office": blocks(390) + blocks(60, 2000), "Other": blocks(40, 1000)}
    )
    planned = cli("plan", str(swapped), "--sandbox-db", str(db))
    assert planned.code == 0, planned.stderr
    assert "apply will refuse" not in planned.stdout
    applied = cli("apply", str(swapped), "--yes", "--sandbox-db", str(db))
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "converged: live matches the policy" in applied.stdout
    writes = write_log(db)[before:]
    assert [w["method"] for w in writes] == ["PUT", "PUT"]  # the cut, then the final value
    assert all(w["status"] == 202 for w in writes), writes
    again = cli("plan", str(swapped), "--sandbox-db", str(db), "--detailed-exitcode")
    assert again.code == 0, again.stdout


def test_no_order_within_the_limit_is_refused_before_any_write(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Office holds 500 entries with the break-glass address, which the policy moves to a new
    list: creating that list first passes 500, cutting Office first shuts the address out.
    plan says apply will refuse (not forceable, exit 3); apply --force writes nothing."""
    db = tmp_path / "sandbox.db"
    seed = policy(tmp_path, {"Office": [f"{BREAK_GLASS}/32", *blocks(499)]}, BREAK_GLASS)
    assert cli("apply", str(seed), "--yes", "--sandbox-db", str(db)).code == 0
    before = len(write_log(db))
    moved = policy(
        tmp_path,
        {"Break glass": [BREAK_GLASS, "198.51.100.0/24"], "Office": blocks(498)},
        BREAK_GLASS,
    )
    planned = cli("plan", str(moved), "--sandbox-db", str(db), "--format", "json")
    assert planned.code == 3, planned.stderr
    assert '"forceable": false' in planned.stdout
    assert "within 500 entries" in planned.stdout
    text = cli("plan", str(moved), "--sandbox-db", str(db))
    assert "apply will refuse: no order of the writes" in text.stdout
    assert "(--force overrides)" not in text.stdout
    applied = cli("apply", str(moved), "--yes", "--force", "--sandbox-db", str(db))
    assert applied.code == 3, applied.stdout + applied.stderr
    assert "500 entries" in applied.stdout
    assert write_log(db)[before:] == []
