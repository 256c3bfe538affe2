"""Read-only looks at an emulator state file, for tests and benchmarks that judge the state
Atlassian would enforce at one instant, independently of the tool's own reasoning."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from pathlib import Path

__all__ = ["locked_out"]


def locked_out(db: Path, org_id: str, address: str) -> list[str]:
    """Workspaces of `org_id` whose enabled allowlists, taken together, do not admit `address`
    (a workspace with no enabled allowlist admits everyone)."""
    ip = ipaddress.IPv4Network(address)
    con = sqlite3.connect(db, timeout=30)
    try:
        workspaces = [
            r[0] for r in con.execute("SELECT id FROM workspaces WHERE org_id = ?", (org_id,))
        ]
        policies = con.execute(
            "SELECT status, rule, resources FROM policies WHERE org_id = ? AND type = 'ip-allowlist'",
            (org_id,),
        ).fetchall()
    finally:
        con.close()
    locked = []
    for workspace in workspaces:
        enabled = [
            json.loads(rule)["in"]
            for status, rule, resources in policies
            if status == "enabled" and workspace in json.loads(resources)
        ]
        if enabled and not any(
            ip.subnet_of(ipaddress.IPv4Network(a, strict=False))
            for addresses in enabled
            for a in addresses
        ):
            locked.append(workspace)
    return locked
