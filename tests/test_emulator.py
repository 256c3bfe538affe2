"""The Admin API emulator, tested over a real loopback socket with plain httpx.

Each behaviour the client relies on (DESIGN.md section 5) is pinned here:
shapes, pagination, 202 + asynchronous settling, the three error bodies, auth,
validation, and every injected fault. One shared server (with API keys) serves
the plain API tests, each on its own org; fault knobs get their own servers.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.emulator.command import emulator as emulator_command
from rovo_reconcile.emulator.command import parse_api_key
from rovo_reconcile.emulator.store import DEFAULT_WORKSPACES, StateFileError, workspace_id
from rovo_reconcile.errors import RovoError

from .emulator_fixture import Emulator, start_emulator

WRITE_KEY = "writer-5ecret-do-not-log"
READ_KEY = "reader-5ecret-do-not-log"
SETTLE_S = 0.05

Json = dict[str, Any]


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("emulator")
    args = ("--api-key", WRITE_KEY, "--api-key", f"{READ_KEY}:read", "--settle-ms", "50")
    with start_emulator(tmp, *args, "--seed", "1") as emu:
        yield emu


@pytest.fixture
def client(server: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        yield c


@pytest.fixture
def anon(server: Emulator) -> Iterator[httpx.Client]:
    """A client that sends no key."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def org() -> str:
    return str(uuid.uuid4())


def base(org: str) -> str:
    return f"/admin/control/v1/orgs/{org}"


def policy_body(
    name: str = "Corporate egress",
    addresses: list[str] | None = None,
    resources: list[str] | None = None,
    status: str = "disabled",
    bypass: bool = False,
) -> Json:
    return {
        "data": {
            "type": "policy",
            "attributes": {
                "type": "ip-allowlist",
                "name": name,
                "status": status,
                "rule": {"in": addresses or ["203.0.113.0/24"], "allowMobileBypass": bypass},
                "resources": [{"id": r} for r in resources or []],
            },
        }
    }


def domain_body(pattern: str) -> Json:
    return {"data": {"type": "rovo-mcp-domain", "attributes": {"pattern": pattern}}}


def settings_body(**attributes: Any) -> Json:
    return {"data": {"type": "rovo-mcp-settings", "attributes": attributes}}


def follow_links(
    client: httpx.Client, method: str, url: str, body: Json | None = None
) -> list[Json]:
    """Every item over all pages, following links.next; checks both next markers agree."""
    items: list[Json] = []
    next_url: str | None = url
    while next_url:
        response = client.request(method, next_url, json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["data"]
        assert (page["meta"]["next"] is None) == (page["links"]["next"] is None)
        next_url = page["links"]["next"]
    return items


def application_error(response: httpx.Response, status: int, code: str) -> Json:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["status"] == str(status)  # a string, as Atlassian sends it
    assert error["code"] == code
    assert error["title"]
    uuid.UUID(error["id"])
    detail: Json = error
    return detail


# --------------------------------------------------------------------------- workspaces


def test_workspaces_search_pages_through_six_deterministic_workspaces(
    client: httpx.Client, org: str
) -> None:
    url = f"/admin/v2/orgs/{org}/workspaces"
    first = client.post(url, json={}).json()
    assert first["meta"] == {"next": first["meta"]["next"], "page_size": 2}
    assert first["meta"]["next"]
    assert first["links"]["next"].endswith(f"?cursor={first['meta']['next']}")
    workspaces = follow_links(client, "POST", url, {})
    assert [(w["attributes"]["name"], w["attributes"]["typeKey"]) for w in workspaces] == [
        (name, key) for name, key, _ in DEFAULT_WORKSPACES
    ]
    for ws in workspaces:
        assert ws["type"] == "workspace"
        attrs = ws["attributes"]
        assert ws["id"] == workspace_id(org, attrs["typeKey"], attrs["name"])
        assert attrs["type"] == "product"
        assert attrs["status"] == "online"
        assert attrs["hostUrl"].startswith("https://")
    assert [w["attributes"]["typeKey"] for w in workspaces].count("jira-software") == 2


def test_workspaces_search_accepts_no_body_and_is_stable(client: httpx.Client, org: str) -> None:
    url = f"/admin/v2/orgs/{org}/workspaces"
    assert client.post(url).json() == client.post(url, json={}).json()
    application_error(client.post(url, content=b"[1]"), 400, "ADMIN-400-24")


# --------------------------------------------------------------------------- policies


def test_policy_write_answers_202_and_settles_from_applying_to_applied(
    client: httpx.Client, org: str
) -> None:
    created = client.post(f"{base(org)}/policies", json=policy_body(resources=["r1", "r2"]))
    assert created.status_code == 202
    policy = created.json()["data"]
    assert policy["type"] == "policy"
    attrs = policy["attributes"]
    assert attrs["type"] == "ip-allowlist"
    assert attrs["name"] == "Corporate egress"
    assert attrs["status"] == "disabled"
    assert attrs["rule"] == {"in": ["203.0.113.0/24"], "allowMobileBypass": False}
    assert attrs["resources"] == [
        {"id": "r1", "applicationStatus": "applying"},
        {"id": "r2", "applicationStatus": "applying"},
    ]
    assert attrs["createdAt"].endswith("Z")
    assert attrs["updatedAt"] is None
    time.sleep(SETTLE_S + 0.02)
    settled = client.get(f"{base(org)}/policies/{policy['id']}").json()["data"]
    assert [r["applicationStatus"] for r in settled["attributes"]["resources"]] == ["applied"] * 2


def test_policy_put_replaces_everything_and_settles_again(client: httpx.Client, org: str) -> None:
    policy_id = client.post(f"{base(org)}/policies", json=policy_body(resources=["r1"])).json()[
        "data"
    ]["id"]
    time.sleep(SETTLE_S + 0.02)
    body = policy_body("Renamed", ["198.51.100.7", "10.0.0.0/8"], ["r2"], "enabled", True)
    replaced = client.put(f"{base(org)}/policies/{policy_id}", json=body)
    assert replaced.status_code == 202
    attrs = replaced.json()["data"]["attributes"]
    assert attrs["name"] == "Renamed"
    assert attrs["status"] == "enabled"
    assert attrs["rule"] == {"in": ["198.51.100.7", "10.0.0.0/8"], "allowMobileBypass": True}
    assert attrs["resources"] == [{"id": "r2", "applicationStatus": "applying"}]
    assert attrs["updatedAt"] is not None
    time.sleep(SETTLE_S + 0.02)
    got = client.get(f"{base(org)}/policies/{policy_id}").json()["data"]
    assert got["attributes"]["resources"] == [{"id": "r2", "applicationStatus": "applied"}]


def test_policy_delete_answers_202_without_body_then_404(client: httpx.Client, org: str) -> None:
    policy_id = client.post(f"{base(org)}/policies", json=policy_body()).json()["data"]["id"]
    deleted = client.delete(f"{base(org)}/policies/{policy_id}")
    assert deleted.status_code == 202
    assert deleted.content == b""
    application_error(client.get(f"{base(org)}/policies/{policy_id}"), 404, "ADMIN-404-5")
    application_error(client.delete(f"{base(org)}/policies/{policy_id}"), 404, "ADMIN-404-5")
    application_error(
        client.put(f"{base(org)}/policies/{policy_id}", json=policy_body()), 404, "ADMIN-404-5"
    )


def test_policy_of_another_org_is_not_found(client: httpx.Client, org: str) -> None:
    policy_id = client.post(f"{base(org)}/policies", json=policy_body()).json()["data"]["id"]
    other = base(str(uuid.uuid4()))
    application_error(client.get(f"{other}/policies/{policy_id}"), 404, "ADMIN-404-5")


def test_policy_list_pages_hold_full_objects_in_creation_order(
    client: httpx.Client, org: str
) -> None:
    names = [f"list {i}" for i in range(5)]
    by_id = {}
    for name in names:
        policy = client.post(f"{base(org)}/policies", json=policy_body(name)).json()["data"]
        by_id[policy["id"]] = policy
    time.sleep(SETTLE_S + 0.02)
    listed = follow_links(client, "GET", f"{base(org)}/policies")
    assert [p["attributes"]["name"] for p in listed] == names
    for policy in listed:
        assert policy == client.get(f"{base(org)}/policies/{policy['id']}").json()["data"]

    # meta.next alone, passed back as ?cursor=, walks the same pages
    via_cursor: list[Json] = []
    params: dict[str, str] = {}
    while True:
        page = client.get(f"{base(org)}/policies", params=params).json()
        via_cursor += page["data"]
        if page["meta"]["next"] is None:
            break
        params = {"cursor": page["meta"]["next"]}
    assert via_cursor == listed


def test_policy_list_filters_by_type_and_keeps_the_filter_in_next_links(
    client: httpx.Client, org: str
) -> None:
    for i in range(3):
        client.post(f"{base(org)}/policies", json=policy_body(f"p{i}"))
    page = client.get(f"{base(org)}/policies", params={"type": "ip-allowlist"}).json()
    assert "type=ip-allowlist" in page["links"]["next"]
    assert len(follow_links(client, "GET", f"{base(org)}/policies?type=ip-allowlist")) == 3
    assert client.get(f"{base(org)}/policies?type=data-residency").json()["data"] == []


def test_a_cursor_the_api_did_not_issue_is_400(client: httpx.Client, org: str) -> None:
    response = client.get(f"{base(org)}/policies", params={"cursor": "not-a-cursor"})
    application_error(response, 400, "ADMIN-400-1")


def test_resource_ids_that_are_no_workspace_are_kept(client: httpx.Client, org: str) -> None:
    body = policy_body(resources=["ari:cloud:jira::site/unknown", "whatever"])
    policy = client.post(f"{base(org)}/policies", json=body).json()["data"]
    got = client.get(f"{base(org)}/policies/{policy['id']}").json()["data"]
    ids = [r["id"] for r in got["attributes"]["resources"]]
    assert ids == ["ari:cloud:jira::site/unknown", "whatever"]


def test_rule_entries_are_stored_as_sent(client: httpx.Client, org: str) -> None:
    body = policy_body(addresses=["198.51.100.7/32", "198.51.100.8"])
    policy = client.post(f"{base(org)}/policies", json=body).json()["data"]
    assert policy["attributes"]["rule"]["in"] == ["198.51.100.7/32", "198.51.100.8"]


def _with(body: Json, **attrs: Any) -> Json:
    body["data"]["attributes"].update(attrs)
    return body


INVALID_POLICIES: list[tuple[str, Any, str]] = [
    ("host bits", policy_body(addresses=["10.0.0.1/8"]), "rule.in[0]"),
    ("prefix over 32", policy_body(addresses=["10.0.0.0/33"]), "rule.in[0]"),
    ("not an address", policy_body(addresses=["203.0.113.0/24", "example.com"]), "rule.in[1]"),
    ("IPv6", policy_body(addresses=["2001:db8::/32"]), "rule.in[0]"),
    ("any address", policy_body(addresses=["0.0.0.0/0"]), "rule.in[0]"),
    ("duplicate address", policy_body(addresses=["1.2.3.4", "1.2.3.4/32"]), "rule.in[1]"),
    ("rule.in not a list", _with(policy_body(), rule={"in": "1.2.3.4"}), "rule.in"),
    (
        "bypass not bool",
        _with(policy_body(), rule={"in": [], "allowMobileBypass": "no"}),
        "allowMobileBypass",
    ),
    ("unknown rule key", _with(policy_body(), rule={"in": [], "allowMobilebypass": True}), "rule"),
    ("no name", _with(policy_body(), name=""), "name"),
    ("bad status", _with(policy_body(), status="on"), "status"),
    ("other policy type", _with(policy_body(), type="data-residency"), "attributes.type"),
    ("unknown attribute", _with(policy_body(), colour="red"), "colour"),
    ("resource without id", _with(policy_body(), resources=[{}]), "resources[0].id"),
    (
        "duplicate resource",
        _with(policy_body(), resources=[{"id": "a"}, {"id": "a"}]),
        "resources[1]",
    ),
    ("wrong data.type", {"data": {"type": "policies", "attributes": {}}}, "data.type"),
    ("no data", {}, "data"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [(b, f) for _, b, f in INVALID_POLICIES],
    ids=[c for c, _, _ in INVALID_POLICIES],
)
def test_invalid_policy_is_400_naming_the_field(
    client: httpx.Client, org: str, body: Any, field: str
) -> None:
    for response in (
        client.post(f"{base(org)}/policies", json=body),
        client.put(f"{base(org)}/policies/{uuid.uuid4()}", json=body),
    ):
        error = application_error(response, 400, "ADMIN-400-24")
        assert field in error["detail"]


def test_host_bits_error_carries_the_hint(client: httpx.Client, org: str) -> None:
    response = client.post(f"{base(org)}/policies", json=policy_body(addresses=["10.0.0.1/8"]))
    assert "did you mean 10.0.0.0/8?" in application_error(response, 400, "ADMIN-400-24")["detail"]


def test_body_that_is_not_json_is_400(client: httpx.Client, org: str) -> None:
    response = client.post(f"{base(org)}/policies", content=b"{not json")
    application_error(response, 400, "ADMIN-400-24")
    application_error(client.post(f"{base(org)}/policies"), 400, "ADMIN-400-24")


# --------------------------------------------------------------------------- MCP settings (our contract)


def test_new_org_has_the_default_mcp_settings(client: httpx.Client, org: str) -> None:
    response = client.get(f"{base(org)}/rovo-mcp/settings")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "type": "rovo-mcp-settings",
            "attributes": {
                "allowAtlassianSupportedDomains": True,
                "authentication": {"oauth21": True, "apiToken": False},
            },
        }
    }


def test_patch_changes_only_the_given_settings(client: httpx.Client, org: str) -> None:
    url = f"{base(org)}/rovo-mcp/settings"
    first = client.patch(url, json=settings_body(authentication={"apiToken": True}))
    assert first.status_code == 200
    assert first.json()["data"]["attributes"] == {
        "allowAtlassianSupportedDomains": True,
        "authentication": {"oauth21": True, "apiToken": True},
    }
    client.patch(url, json=settings_body(allowAtlassianSupportedDomains=False))
    assert client.get(url).json()["data"]["attributes"] == {
        "allowAtlassianSupportedDomains": False,
        "authentication": {"oauth21": True, "apiToken": True},
    }
    assert (
        client.patch(url, json=settings_body(authentication={"oauth21": True})).status_code == 200
    )


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"authentication": {"oauth21": False}}, "oauth21"),
        ({"authentication": {"apiToken": "true"}}, "apiToken"),
        ({"allowAtlassianSupportedDomains": 1}, "allowAtlassianSupportedDomains"),
        ({"authentication": True}, "authentication"),
        ({"domains": []}, "domains"),
    ],
    ids=["oauth21 false", "string bool", "number bool", "auth not object", "unknown key"],
)
def test_invalid_settings_patch_is_400_and_changes_nothing(
    client: httpx.Client, org: str, attributes: Json, field: str
) -> None:
    url = f"{base(org)}/rovo-mcp/settings"
    before = client.get(url).json()
    response = client.patch(url, json=settings_body(**attributes))
    assert field in application_error(response, 400, "ADMIN-400-24")["detail"]
    assert client.get(url).json() == before


# --------------------------------------------------------------------------- MCP domains (our contract)


def test_domains_are_created_listed_in_order_and_deleted(client: httpx.Client, org: str) -> None:
    url = f"{base(org)}/rovo-mcp/domains"
    patterns = ["https://app.example-corp.com/**", "http://127.0.0.1:*/**", "vscode://callback"]
    created = []
    for pattern in patterns:
        response = client.post(url, json=domain_body(pattern))
        assert response.status_code == 201
        domain = response.json()["data"]
        assert domain["type"] == "rovo-mcp-domain"
        assert domain["attributes"] == {"pattern": pattern}
        created.append(domain)
    assert follow_links(client, "GET", url) == created  # three domains, two pages

    deleted = client.delete(f"{url}/{created[1]['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert follow_links(client, "GET", url) == [created[0], created[2]]
    application_error(client.delete(f"{url}/{created[1]['id']}"), 404, "ADMIN-404-1")


def test_duplicate_domain_after_normalisation_is_409(client: httpx.Client, org: str) -> None:
    url = f"{base(org)}/rovo-mcp/domains"
    assert client.post(url, json=domain_body("https://App.Example.com/**")).status_code == 201
    response = client.post(url, json=domain_body("https://app.example.com.:443/**"))
    application_error(response, 409, "ADMIN-409-1")
    assert len(follow_links(client, "GET", url)) == 1


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("app.example.com/**", "has no protocol"),
        ("ws://app.example.com/**", "only for loopback"),
        ("javascript:alert(1)", "run code"),
        ("https://*.com/**", "public suffix"),
        ("https://user@example.com/", "user name"),
    ],
)
def test_invalid_domain_is_400_with_the_normalisation_message(
    client: httpx.Client, org: str, pattern: str, message: str
) -> None:
    response = client.post(f"{base(org)}/rovo-mcp/domains", json=domain_body(pattern))
    assert message in application_error(response, 400, "ADMIN-400-24")["detail"]


def test_unknown_domain_id_is_404(client: httpx.Client, org: str) -> None:
    response = client.delete(f"{base(org)}/rovo-mcp/domains/{uuid.uuid4()}")
    application_error(response, 404, "ADMIN-404-1")


# --------------------------------------------------------------------------- routing and auth


def test_unknown_route_is_404_and_wrong_method_405(client: httpx.Client, org: str) -> None:
    application_error(client.get(f"{base(org)}/nothing-here"), 404, "ADMIN-404-1")
    response = client.put(f"{base(org)}/rovo-mcp/domains", json={})
    application_error(response, 405, "ADMIN-405-1")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_without_a_valid_key_the_answer_is_a_401_proxy_error(anon: httpx.Client, org: str) -> None:
    url = f"{base(org)}/policies"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {WRITE_KEY}"}):
        response = anon.get(url, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == 401  # a number, unlike ApplicationError's status
        assert isinstance(body["message"], str)
        assert WRITE_KEY not in response.text


def test_a_read_key_reads_and_searches_but_gets_403_for_writes(server: Emulator, org: str) -> None:
    headers = {"Authorization": f"Bearer {READ_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers) as reader:
        assert reader.get(f"{base(org)}/policies").status_code == 200
        assert reader.get(f"{base(org)}/rovo-mcp/settings").status_code == 200
        assert reader.post(f"/admin/v2/orgs/{org}/workspaces", json={}).status_code == 200
        for method, path, body in [
            ("POST", f"{base(org)}/policies", policy_body()),
            ("DELETE", f"{base(org)}/policies/{uuid.uuid4()}", None),
            ("PATCH", f"{base(org)}/rovo-mcp/settings", settings_body()),
            ("POST", f"{base(org)}/rovo-mcp/domains", domain_body("https://a.example.com/")),
        ]:
            response = reader.request(method, path, json=body)
            assert response.status_code == 403
            error = response.json()
            assert set(error) == {"timestamp", "path", "status", "error", "message", "requestId"}
            assert error["status"] == 403
            assert error["error"] == "Forbidden"
            assert error["path"] == path
            assert READ_KEY not in response.text
        assert reader.get(f"{base(org)}/policies").json()["data"] == []


def test_keys_never_appear_in_the_server_output(server: Emulator) -> None:
    assert WRITE_KEY not in server.ready_line
    assert WRITE_KEY not in server.stderr()
    assert READ_KEY not in server.stderr()


# --------------------------------------------------------------------------- stats (not Atlassian)


def test_stats_count_requests_by_method_path_and_status(
    anon: httpx.Client, client: httpx.Client, org: str
) -> None:
    assert anon.post("/_emulator/stats/reset").status_code == 204  # no auth needed
    client.get(f"{base(org)}/policies")
    client.post(f"/admin/v2/orgs/{org}/workspaces", json={})
    client.post(f"{base(org)}/rovo-mcp/domains", json=domain_body("https://s.example.com/"))
    unknown = uuid.uuid4()
    client.delete(f"{base(org)}/rovo-mcp/domains/{unknown}")
    stats = anon.get("/_emulator/stats").json()
    assert stats == {
        "requests": {"GET": 1, "POST": 2, "DELETE": 1},
        "writes": 2,  # the workspaces search is a read
        "total": 4,
        "by_path": {
            f"GET {base(org)}/policies": 1,
            f"POST /admin/v2/orgs/{org}/workspaces": 1,
            f"POST {base(org)}/rovo-mcp/domains": 1,
            f"DELETE {base(org)}/rovo-mcp/domains/{unknown}": 1,
        },
        "responses": {"200": 2, "201": 1, "404": 1},
    }


# --------------------------------------------------------------------------- separate servers


def test_strict_orgs_answers_404_for_unknown_orgs(tmp_path: Path) -> None:
    with (
        start_emulator(tmp_path, "--strict-orgs", "--org", "known-org") as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        assert client.get(f"{base('known-org')}/policies").status_code == 200
        for response in (
            client.get(f"{base('other-org')}/policies"),
            client.post("/admin/v2/orgs/other-org/workspaces", json={}),
        ):
            application_error(response, 404, "ADMIN-404-2")


def test_apply_fail_rate_one_settles_every_write_to_failed(tmp_path: Path) -> None:
    with (
        start_emulator(tmp_path, "--apply-fail-rate", "1", "--settle-ms", "50") as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        url = f"{base('o')}/policies"
        policy = client.post(url, json=policy_body(resources=["r1"])).json()["data"]
        assert policy["attributes"]["resources"][0]["applicationStatus"] == "applying"
        time.sleep(SETTLE_S + 0.02)
        got = client.get(f"{url}/{policy['id']}").json()["data"]
        assert got["attributes"]["resources"] == [{"id": "r1", "applicationStatus": "failed"}]


def test_fail_rate_one_gives_503_with_retry_after_in_both_documented_shapes(
    tmp_path: Path,
) -> None:
    with (
        start_emulator(tmp_path, "--fail-rate", "1", "--retry-after", "0", "--seed", "7") as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        shapes = set()
        for _ in range(12):
            response = client.get(f"{base('o')}/rovo-mcp/settings")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "0"
            body = response.json()
            if "errors" in body:
                assert body["errors"][0]["status"] == "503"
                shapes.add("application")
            else:
                assert body["code"] == 503
                shapes.add("proxy")
        assert shapes == {"application", "proxy"}
        assert client.get("/_emulator/stats").json()["responses"] == {"503": 12}


def test_rate_limit_gives_429_with_retry_after_and_rate_limit_headers(tmp_path: Path) -> None:
    args = ("--rate-limit", "2", "--retry-after", "0", "--api-key", WRITE_KEY)
    with (
        start_emulator(tmp_path, *args) as emu,
        httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {WRITE_KEY}"}) as client,
    ):
        responses = [client.get(f"{base('o')}/policies") for _ in range(6)]
        unauthenticated = client.get(f"{base('o')}/policies", headers={"Authorization": ""})
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "six requests within well under two seconds must hit a limit of 2/s"
    for response in limited:
        assert response.json()["code"] == 429
        assert response.headers["retry-after"] == "0"
        assert response.headers["x-ratelimit-limit"] == "2"
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert len(response.headers["x-ratelimit-reset"]) == len("2026-01-01T10:30Z")
        assert response.headers["x-ratelimit-reset"].endswith("Z")
    ok = [r for r in responses if r.status_code == 200]
    assert ok
    for response in [*ok, unauthenticated]:  # every answer says where the client stands
        assert response.headers["x-ratelimit-limit"] == "2"
        assert response.headers["x-ratelimit-remaining"] in ("0", "1")
    assert unauthenticated.status_code in (401, 429)


def test_drop_rate_one_applies_the_write_but_cuts_the_connection(tmp_path: Path) -> None:
    with (
        start_emulator(tmp_path, "--drop-rate", "1", "--settle-ms", "0") as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        domains = f"{base('o')}/rovo-mcp/domains"
        with pytest.raises(httpx.TransportError):
            client.post(domains, json=domain_body("https://dropped.example.com/**"))
        listed = client.get(domains).json()["data"]  # reads are never dropped
        assert [d["attributes"]["pattern"] for d in listed] == ["https://dropped.example.com/**"]

        with pytest.raises(httpx.TransportError):  # a 204 answer is cut too
            client.delete(f"{domains}/{listed[0]['id']}")
        assert client.get(domains).json()["data"] == []

        with pytest.raises(httpx.TransportError):
            client.post(f"{base('o')}/policies", json=policy_body("dropped"))
        (policy,) = client.get(f"{base('o')}/policies").json()["data"]
        assert policy["attributes"]["name"] == "dropped"

        # a failed write has nothing to drop: its 400 arrives whole
        bad = client.post(domains, json=domain_body("no-protocol.example.com"))
        assert bad.status_code == 400
        assert client.post("/admin/v2/orgs/o/workspaces", json={}).status_code == 200


def test_latency_delays_every_api_request(tmp_path: Path) -> None:
    with (
        start_emulator(tmp_path, "--latency-ms", "150") as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        started = time.monotonic()
        assert client.get(f"{base('o')}/rovo-mcp/settings").status_code == 200
        assert client.get("/nowhere").status_code == 404
        assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_cleanly_with_exit_0_and_one_stdout_line(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with start_emulator(tmp_path) as emu:
        with httpx.Client(base_url=emu.url) as client:  # an open keep-alive connection
            assert client.get(f"{base('o')}/policies").status_code == 200
            assert emu.stop(sig) == 0
        assert emu.process.stdout is not None
        assert emu.process.stdout.read() == ""  # nothing after the ready line
        assert emu.ready_line == (
            f"rovo-reconcile emulator listening on {emu.url} (state {tmp_path / 'emulator.db'})"
        )
        assert emu.url.startswith("http://127.0.0.1:")


def test_two_processes_writing_one_state_file_lose_nothing(tmp_path: Path) -> None:
    state = tmp_path / "shared.db"
    per_server = 30
    with (
        start_emulator(tmp_path, state=state) as first,
        start_emulator(tmp_path, state=state) as second,
        httpx.Client(base_url=first.url, timeout=30) as one,
        httpx.Client(base_url=second.url, timeout=30) as two,
    ):
        one.post("/_emulator/stats/reset")
        jobs = [(client, i) for i in range(per_server) for client in (one, two)]

        def write(job: tuple[httpx.Client, int]) -> None:
            client, i = job
            tag = f"{client.base_url.port}-{i}"
            domain = client.post(
                f"{base('shared')}/rovo-mcp/domains",
                json=domain_body(f"https://d{tag}.example.com/**"),
            )
            policy = client.post(f"{base('shared')}/policies", json=policy_body(f"p{tag}"))
            settings = client.patch(
                f"{base('shared')}/rovo-mcp/settings",
                json=settings_body(authentication={"apiToken": i % 2 == 0}),
            )
            assert (domain.status_code, policy.status_code, settings.status_code) == (201, 202, 200)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, jobs))

        domains = follow_links(two, "GET", f"{base('shared')}/rovo-mcp/domains")
        policies = follow_links(one, "GET", f"{base('shared')}/policies")
        assert len(domains) == len({d["id"] for d in domains}) == 2 * per_server
        assert len(policies) == len({p["attributes"]["name"] for p in policies}) == 2 * per_server
        stats = two.get("/_emulator/stats").json()
        assert stats["writes"] == 3 * 2 * per_server
        assert stats["responses"]["201"] == 2 * per_server


def test_a_port_in_use_is_reported_without_a_traceback(tmp_path: Path) -> None:
    with start_emulator(tmp_path) as emu:
        port = emu.url.rsplit(":", 1)[1]
        result = CliRunner().invoke(
            emulator_command, ["serve", "--port", port, "--state", str(tmp_path / "x.db")]
        )
    assert isinstance(result.exception, RovoError)  # cli.run turns it into a message, exit 1
    assert result.exception.exit_code == 1
    assert "cannot listen on 127.0.0.1" in str(result.exception)


def test_a_state_file_that_is_not_sqlite_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "not.db"
    state.write_text("hello")
    result = CliRunner().invoke(emulator_command, ["serve", "--port", "0", "--state", str(state)])
    assert isinstance(result.exception, StateFileError)
    assert result.exception.exit_code == 64
    assert "not.db" in str(result.exception)


# --------------------------------------------------------------------------- command line


def test_help_says_the_mcp_endpoints_are_our_own_contract() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "OWN contract" in text
    assert "Atlassian publishes no admin API for the Rovo MCP server settings" in text
    serve_help = " ".join(CliRunner().invoke(emulator_command, ["serve", "--help"]).output.split())
    assert "own contract, because Atlassian publishes no MCP admin API" in serve_help


def test_api_keys_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {"ROVO_RECONCILE_EMULATOR_API_KEYS": f"{WRITE_KEY} {READ_KEY}:read"}
    with (
        start_emulator(tmp_path, env=env) as emu,
        httpx.Client(base_url=emu.url) as client,
    ):
        url = f"{base('o')}/rovo-mcp/settings"
        assert client.get(url).status_code == 401
        reader = {"Authorization": f"Bearer {READ_KEY}"}
        assert client.get(url, headers=reader).status_code == 200
        assert client.patch(url, headers=reader, json=settings_body()).status_code == 403
        writer = {"Authorization": f"Bearer {WRITE_KEY}"}
        assert client.patch(url, headers=writer, json=settings_body()).status_code == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k1", ("k1", "write")),
        ("k1:read", ("k1", "read")),
        ("k1:write", ("k1", "write")),
        ("a:b:read", ("a:b", "read")),
        ("a:b", ("a:b", "write")),
    ],
)
def test_api_key_suffix_names_the_role(text: str, expected: tuple[str, str]) -> None:
    assert parse_api_key(text) == expected


def test_options_repr_hides_the_keys() -> None:
    options = EmulatorOptions(api_keys={WRITE_KEY: "write"})
    assert WRITE_KEY not in repr(options)
    with pytest.raises(ValueError, match="fail_rate"):
        EmulatorOptions(fail_rate=1.5)


# --------------------------------------------------------------------------- in-process (sandbox)


def test_in_process_app_serves_the_same_api_and_persists_to_the_file(tmp_path: Path) -> None:
    db = tmp_path / ".rovo-reconcile" / "sandbox.db"

    async def scenario() -> None:
        app = create_app(db, EmulatorOptions(settle_ms=0))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sandbox.invalid"
        ) as client:
            workspaces = (await client.post("/admin/v2/orgs/o/workspaces", json={})).json()
            assert workspaces["links"]["next"].startswith("http://sandbox.invalid/admin/v2/orgs/o/")
            created = await client.post(f"{base('o')}/policies", json=policy_body(resources=["r"]))
            assert created.status_code == 202
            assert (
                created.json()["data"]["attributes"]["resources"][0]["applicationStatus"]
                == "applied"
            )
            added = await client.post(
                f"{base('o')}/rovo-mcp/domains", json=domain_body("https://x.example.com/")
            )
            assert added.status_code == 201

        # a second app on the same file (a later CLI run) sees the same state
        again = httpx.ASGITransport(app=create_app(db, EmulatorOptions()))
        async with httpx.AsyncClient(transport=again, base_url="http://sandbox.invalid") as client:
            policies = (await client.get(f"{base('o')}/policies")).json()["data"]
            assert [p["attributes"]["name"] for p in policies] == ["Corporate egress"]

        # drops surface as an httpx transport error in-process too
        dropping = httpx.ASGITransport(app=create_app(db, EmulatorOptions(drop_rate=1.0)))
        async with httpx.AsyncClient(
            transport=dropping, base_url="http://sandbox.invalid"
        ) as client:
            with pytest.raises(httpx.TransportError):
                await client.patch(
                    f"{base('o')}/rovo-mcp/settings",
                    json=settings_body(allowAtlassianSupportedDomains=False),
                )
            settings = (await client.get(f"{base('o')}/rovo-mcp/settings")).json()
            assert settings["data"]["attributes"]["allowAtlassianSupportedDomains"] is False

    asyncio.run(scenario())
    assert db.exists()


def test_in_process_fault_dice_repeat_with_a_seed(tmp_path: Path) -> None:
    async def outcomes(seed: int) -> list[int]:
        app = create_app(tmp_path / f"s{seed}.db", EmulatorOptions(fail_rate=0.5, seed=seed))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://e"
        ) as c:
            return [(await c.get(f"{base('o')}/policies")).status_code for _ in range(20)]

    first = asyncio.run(outcomes(3))
    assert first == asyncio.run(outcomes(3))
    assert set(first) == {200, 503}


def test_in_process_concurrent_writes_from_threads_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def run() -> None:
            app = create_app(db, EmulatorOptions())
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://e"
            ) as c:
                for i in range(10):
                    r = await c.post(
                        f"{base('t')}/rovo-mcp/domains",
                        json=domain_body(f"https://t{n}-{i}.example.com/"),
                    )
                    assert r.status_code == 201

        try:
            asyncio.run(run())
        except BaseException as e:  # surfaced below, in the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    async def count() -> int:
        app = create_app(db, EmulatorOptions(page_size=100))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://e"
        ) as c:
            return len((await c.get(f"{base('t')}/rovo-mcp/domains")).json()["data"])

    assert asyncio.run(count()) == 40
