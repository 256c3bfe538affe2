"""The emulator enforces Atlassian's 500 IP-allowlist entries per product (per workspace):
a create or replace past it answers 400 in the documented error shape and writes nothing.

Every ip-allowlist policy attached to the workspace counts, disabled ones too (the reading
`validate` and the write order share, `app_limit`). Over a real loopback socket.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.emulator.store import Store, workspace_id

from .emulator_fixture import Emulator, start_emulator


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(tmp_path_factory.mktemp("limit"), "--settle-ms", "0") as emu:
        yield emu


@pytest.fixture
def org() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def client(server: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def blocks(count: int, start: int = 0) -> list[str]:
    return [f"52.{n // 256}.{n % 256}.0/24" for n in range(start, start + count)]


def jira(org: str, name: str = "acme") -> str:
    return workspace_id(org, "jira-software", name)


def body(name: str, addresses: list[str], resources: list[str], status: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "policy",
            "attributes": {
                "type": "ip-allowlist",
                "name": name,
                "status": status,
                "rule": {"in": addresses, "allowMobileBypass": False},
                "resources": [{"id": r} for r in resources],
            },
        }
    }


def create(
    client: httpx.Client,
    org: str,
    name: str,
    addresses: list[str],
    resources: list[str],
    status: str = "enabled",
) -> httpx.Response:
    client.post(f"/admin/v2/orgs/{org}/workspaces", json={}).raise_for_status()  # the org exists
    return client.post(
        f"/admin/control/v1/orgs/{org}/policies", json=body(name, addresses, resources, status)
    )


def names(client: httpx.Client, org: str) -> list[str]:
    listing = client.get(f"/admin/control/v1/orgs/{org}/policies", params={"type": "ip-allowlist"})
    found = [p["attributes"]["name"] for p in listing.json()["data"]]
    while listing.json()["links"]["next"]:
        listing = client.get(listing.json()["links"]["next"])
        found += [p["attributes"]["name"] for p in listing.json()["data"]]
    return found


def assert_refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["status"] == "400"
    assert error["code"] == "ADMIN-400-24"
    assert "500 entries" in error["detail"]
    for word in words:
        assert word in error["detail"]


def test_exactly_500_entries_on_a_workspace_are_accepted(client: httpx.Client, org: str) -> None:
    assert create(client, org, "A", blocks(300), [jira(org)]).status_code == 202
    assert create(client, org, "B", blocks(200, 1000), [jira(org)]).status_code == 202


def test_one_entry_past_500_is_a_400_and_nothing_is_written(client: httpx.Client, org: str) -> None:
    assert create(client, org, "A", blocks(500), [jira(org)]).status_code == 202
    response = create(client, org, "B", blocks(1, 1000), [jira(org)])
    assert_refused(response, "jira-software workspace acme (501)")
    assert names(client, org) == ["A"]


def test_disabled_allowlists_count(client: httpx.Client, org: str) -> None:
    """A disabled list still holds its entries for the workspace: enabling it later is one PUT."""
    assert create(client, org, "Parked", blocks(300), [jira(org)], "disabled").status_code == 202
    assert_refused(create(client, org, "New", blocks(201, 1000), [jira(org)], "disabled"))


def test_a_replace_past_the_limit_is_refused_and_leaves_the_policy_as_it_was(
    client: httpx.Client, org: str
) -> None:
    created = create(client, org, "A", blocks(400), [jira(org)]).json()["data"]
    assert create(client, org, "B", blocks(90, 1000), [jira(org)]).status_code == 202
    url = f"/admin/control/v1/orgs/{org}/policies/{created['id']}"
    union = blocks(400) + blocks(60, 2000)  # what widening first would write
    assert_refused(client.put(url, json=body("A", union, [jira(org)], "enabled")))
    assert client.get(url).json()["data"]["attributes"]["rule"]["in"] == blocks(400)
    swapped = blocks(340) + blocks(60, 2000)  # the same count: accepted
    assert client.put(url, json=body("A", swapped, [jira(org)], "enabled")).status_code == 202


def test_each_workspace_has_its_own_count(client: httpx.Client, org: str) -> None:
    """500 on one Jira site and 500 on the other; a list on both counts for each."""
    assert create(client, org, "A", blocks(500), [jira(org)]).status_code == 202
    other = jira(org, "acme-eng")
    assert create(client, org, "B", blocks(450, 1000), [other]).status_code == 202
    assert_refused(
        create(client, org, "Both", blocks(60, 2000), [jira(org), other]),
        "jira-software workspace acme (560)",
        "jira-software workspace acme-eng (510)",
    )


def test_a_workspace_already_past_the_limit_may_shrink(tmp_path: Path) -> None:
    """State from before the limit (or set by hand) is not frozen: a write that lowers the count
    is accepted even while the workspace stays over 500; one that raises it is not."""
    import time

    from rovo_reconcile.emulator.store import OverLimit, PolicyWrite

    store = Store(tmp_path / "over.db")
    org = "org-over"
    now = time.time_ns() // 1_000_000
    store.ensure_org(org, now)

    def fields(addresses: list[str]) -> PolicyWrite:
        rule = {"in": addresses, "allowMobileBypass": False}
        return PolicyWrite("ip-allowlist", "A", "enabled", rule, (jira(org),))

    with store._write() as conn:  # set up the over-limit state behind the API's back
        conn.execute(
            "INSERT INTO policies (org_id, id, type, name, status, rule, resources, created_at,"
            " updated_at, written_at_ms, outcome) VALUES (?, 'p1', 'ip-allowlist', 'A',"
            " 'enabled', ?, ?, 'x', NULL, 0, 'applied')",
            (org, f'{{"in": {blocks(600)!r}}}'.replace("'", '"'), f'["{jira(org)}"]'),
        )
    assert store.replace_policy(org, "p1", fields(blocks(550)), now, "applied") is not None
    with pytest.raises(OverLimit):
        store.replace_policy(org, "p1", fields(blocks(560)), now, "applied")
    store.close()
