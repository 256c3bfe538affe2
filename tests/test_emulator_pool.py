"""The shared emulators of `EmulatorPool`: what a test sees must be what a new server shows,
even for an org an earlier test wrote to (the server remembers the orgs it has seen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .emulator_fixture import Emulator, EmulatorPool, start_emulator

KEY = "pool-test-key"
FLAGS = ("--settle-ms", "0", "--api-key", f"{KEY}:write")
ORG = "org-pool"


def _org_as_seen(emu: Emulator) -> dict[str, Any]:
    """Everything the API shows of ORG, and the server's counters, ids aside."""
    base = f"{emu.url}/admin/control/v1/orgs/{ORG}"
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        workspaces = http.post(f"{emu.url}/admin/v2/orgs/{ORG}/workspaces", json={}).json()
        seen = {
            "workspaces": [(w["id"], w["attributes"]) for w in workspaces["data"]],
            "settings": http.get(f"{base}/rovo-mcp/settings").json()["data"]["attributes"],
            "domains": http.get(f"{base}/rovo-mcp/domains").json()["data"],
            "policies": http.get(f"{base}/policies").json()["data"],
        }
        stats = http.get(f"{emu.url}/_emulator/stats").json()
    return {**seen, "writes": stats["writes"]}


def _write_everything(emu: Emulator) -> None:
    base = f"{emu.url}/admin/control/v1/orgs/{ORG}"
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as http:
        http.patch(
            f"{base}/rovo-mcp/settings",
            json={
                "data": {
                    "type": "rovo-mcp-settings",
                    "attributes": {
                        "authentication": {"apiToken": True},
                        "allowAtlassianSupportedDomains": False,
                    },
                }
            },
        ).raise_for_status()
        http.post(
            f"{base}/rovo-mcp/domains",
            json={
                "data": {
                    "type": "rovo-mcp-domain",
                    "attributes": {"pattern": "https://a.example.com/**"},
                }
            },
        ).raise_for_status()
        http.post(
            f"{base}/policies",
            json={
                "data": {
                    "type": "policy",
                    "attributes": {
                        "type": "ip-allowlist",
                        "name": "Office",
                        "status": "enabled",
                        "rule": {"in": ["52.14.0.0/16"], "allowMobileBypass": False},
                        "resources": [],
                    },
                }
            },
        ).raise_for_status()


def test_a_wiped_server_shows_an_org_as_a_new_server_does(
    emulator_pool: EmulatorPool, tmp_path: Path
) -> None:
    with start_emulator(tmp_path, *FLAGS) as new:
        expected = _org_as_seen(new)
    with emulator_pool.fresh(*FLAGS) as emu:
        _write_everything(emu)
        assert _org_as_seen(emu) != expected
    with emulator_pool.fresh(*FLAGS) as emu:
        assert _org_as_seen(emu) == expected
        assert expected["workspaces"]
        assert expected["writes"] == 0


def test_flags_that_keep_state_in_the_server_are_not_shared(emulator_pool: EmulatorPool) -> None:
    for flags in (("--fail-rate", "0.5"), ("--rate-limit", "2"), ("--seed", "1")):
        with pytest.raises(ValueError, match="not a shareable"), emulator_pool.fresh(*flags):
            pass
