"""A malformed successful read stops that org before any write (issue 11, items 2 and 9).

Every answer goes through the real client to a hostile server (`hostile_api`) that breaks
one endpoint of an otherwise healthy organization. A bad read is that org's error, naming
the request and the field; it is never read as "empty", so plan shows no phantom create and
apply writes nothing; and a healthy org in the same run is planned and applied as usual.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.errors import ApiError
from rovo_reconcile.api.live import read_org

from .conftest import CliRunner, Result
from .hostile_api import Answer, HostileApi, hostile_api

KEY = "hostile-test-key-0123456789"
ORG = "org-hostile"
HEALTHY = "org-healthy"
OFFICE = "91.208.44.0/24"


def _policy(api: HostileApi, org: str) -> dict[str, Any]:
    """Seed `org` upstream with one enabled allowlist on Jira; return it as listed."""
    workspaces = api.upstream("POST", f"/admin/v2/orgs/{org}/workspaces", {})["data"]
    jira = [w["id"] for w in workspaces if w["attributes"]["typeKey"] == "jira-software"]
    body = {
        "data": {
            "type": "policy",
            "attributes": {
                "type": "ip-allowlist",
                "name": "Office",
                "status": "enabled",
                "rule": {"in": [OFFICE], "allowMobileBypass": False},
                "resources": [{"id": i} for i in jira],
            },
        }
    }
    created: dict[str, Any] = api.upstream("POST", f"/admin/control/v1/orgs/{org}/policies", body)
    return created["data"]


def _listing(*items: Any, **extra: Any) -> dict[str, Any]:
    return {"data": list(items), "links": {"next": None}, "meta": {"next": None}, **extra}


def _with(item: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `item` with the field at dotted `path` set to `value`."""
    import copy

    changed = copy.deepcopy(item)
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    target[last] = value
    return changed


@pytest.fixture
def api(tmp_path: Path) -> Iterator[HostileApi]:
    with hostile_api(tmp_path) as server:
        yield server


def _read(api: HostileApi, org: str = ORG) -> str:
    """Read `org` through the real client; return the error it ends with."""

    async def scenario() -> str:
        client = AdminClient(httpx.AsyncClient(timeout=10))
        try:
            await read_org(client, api.url, org)
        except ApiError as e:
            return str(e)
        finally:
            await client.aclose()
        raise AssertionError("the read succeeded")

    return asyncio.run(scenario())


POLICIES = rf"/orgs/{ORG}/policies$"

# (what breaks, endpoint, answer built from the seeded policy, words the error must say)
CASES: list[tuple[str, str, str, Any, str]] = [
    ("data missing", "GET", POLICIES, lambda p: {"links": {}}, "data: field required"),
    ("data null", "GET", POLICIES, lambda p: {"data": None}, "data: input should be a valid list"),
    ("data a string", "GET", POLICIES, lambda p: {"data": "x"}, "(got a string)"),
    ("data an object", "GET", POLICIES, lambda p: {"data": p}, "(got an object)"),
    ("item not an object", "GET", POLICIES, lambda p: _listing("p1"), "data[0]"),
    (
        "item without attributes",
        "GET",
        POLICIES,
        lambda p: _listing({"id": p["id"], "type": "policy"}),
        "item 1 attributes: field required",
    ),
    (
        "attributes a list",
        "GET",
        POLICIES,
        lambda p: _listing({**p, "attributes": [p["attributes"]]}),
        "item 1 attributes: input should be a valid dictionary",
    ),
    (
        "rule.in a string",
        "GET",
        POLICIES,
        lambda p: _listing(_with(p, "attributes.rule.in", OFFICE)),
        "item 1 attributes.rule.in: input should be a valid list (got a string)",
    ),
    (
        "rule.in numbers",
        "GET",
        POLICIES,
        lambda p: _listing(_with(p, "attributes.rule.in", [1, 2])),
        "attributes.rule.in[0]: input should be a valid string (got a number)",
    ),
    (
        '"false" as mobile bypass',
        "GET",
        POLICIES,
        lambda p: _listing(_with(p, "attributes.rule.allowMobileBypass", "false")),
        "attributes.rule.allowMobileBypass: input should be a valid boolean (got a string)",
    ),
    (
        "status not enabled or disabled",
        "GET",
        POLICIES,
        lambda p: _listing(_with(p, "attributes.status", True)),
        "attributes.status",
    ),
    (
        "resources a string",
        "GET",
        POLICIES,
        lambda p: _listing(_with(p, "attributes.resources", "jira")),
        "attributes.resources",
    ),
    (
        "links a string",
        "GET",
        POLICIES,
        lambda p: _listing(p, links="next"),
        "page 1 links: input should be a valid dictionary (got a string)",
    ),
    (
        "workspace without typeKey",
        "POST",
        rf"/orgs/{ORG}/workspaces$",
        lambda p: _listing({"id": "w1", "attributes": {"name": "Jira"}}),
        "POST /admin/v2/orgs/org-hostile/workspaces: the answer does not have the documented "
        "shape: item 1 attributes.typeKey: field required",
    ),
    (
        "MCP settings without attributes",
        "GET",
        r"/rovo-mcp/settings$",
        lambda p: {"data": {"type": "rovo-mcp-settings"}},
        "rovo-mcp/settings: the answer does not have the documented shape: "
        "data.attributes: field required",
    ),
    (
        '"false" as the API token setting',
        "GET",
        r"/rovo-mcp/settings$",
        lambda p: {
            "data": {
                "attributes": {
                    "allowAtlassianSupportedDomains": True,
                    "authentication": {"oauth21": True, "apiToken": "false"},
                }
            }
        },
        "data.attributes.authentication.apiToken: input should be a valid boolean",
    ),
    (
        "domain pattern a number",
        "GET",
        r"/rovo-mcp/domains$",
        lambda p: _listing({"id": "d1", "attributes": {"pattern": 7}}),
        "rovo-mcp/domains: the answer does not have the documented shape: "
        "item 1 attributes.pattern",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "answer", "said"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_malformed_answer_is_an_error_naming_the_request_and_the_field(
    api: HostileApi, method: str, path: str, answer: Any, said: str
) -> None:
    """Each malformed 2xx stops the read with a message naming the endpoint and the field."""
    api.on(method, path, Answer(body=answer(_policy(api, ORG))))
    message = _read(api)
    assert "does not have the documented shape" in message
    assert said in message
    assert "/orgs/org-hostile/" in message


def test_a_redirect_with_a_json_body_is_not_an_answer(api: HostileApi) -> None:
    """A 3xx whose body is an empty listing is not taken as 'no allowlists'."""
    _policy(api, ORG)
    api.on("GET", POLICIES, Answer(302, _listing(), {"Location": "/elsewhere"}))
    message = _read(api)
    assert f"GET /admin/control/v1/orgs/{ORG}/policies: the server answered HTTP 302" in message


def test_a_5000_digit_number_in_a_live_answer_is_that_orgs_error(api: HostileApi) -> None:
    """Python refuses to convert it; that is a malformed answer, not an internal error."""
    policy = _policy(api, ORG)
    text = _with(policy, "attributes.rule.in", ["DIGITS"])
    body = str.encode(
        __import__("json").dumps(_listing(text)).replace('"DIGITS"', "1" * 5000), "utf-8"
    )
    api.on("GET", POLICIES, Answer(body=body))
    message = _read(api)
    assert message.startswith(f"GET /admin/control/v1/orgs/{ORG}/policies: the answer is not JSON")


# ----------------------------------------------------------------------------- the CLI


def _policy_file(folder: Path, org: str, extra: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{org}.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
        f"org: {{id: {org}}}\n"
        "ipAllowlists:\n"
        f"  - {{name: Office, enabled: true, apps: [jira], addresses: [{OFFICE}]}}\n" + extra,
        encoding="utf-8",
    )


def _run(cli: CliRunner, api: HostileApi, *args: str) -> Result:
    return cli(*args, "--api-url", api.url, env={"ATLASSIAN_ADMIN_API_KEY": KEY})


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda p: {"data": None}, id="data-null"),
        pytest.param(lambda p: _listing(_with(p, "attributes.rule.in", OFFICE)), id="in-string"),
        pytest.param(lambda p: _listing({"id": p["id"]}), id="no-attributes"),
    ],
)
def test_plan_and_apply_after_a_bad_read_show_no_create_and_write_nothing(
    api: HostileApi, cli: CliRunner, tmp_path: Path, answer: Any
) -> None:
    """The policy matches live; a malformed listing once made plan show a create and apply
    duplicate the allowlist. Now both stop the org, and the server sees no write."""
    _policy_file(tmp_path / "policies", ORG)
    api.on("GET", POLICIES, Answer(body=answer(_policy(api, ORG))))
    plan = _run(cli, api, "plan", str(tmp_path / "policies"))
    assert plan.code == 1, plan.stderr
    assert "create" not in plan.stdout
    assert "does not have the documented shape" in plan.stdout
    applied = _run(cli, api, "apply", str(tmp_path / "policies"), "--yes")
    assert applied.code == 1, applied.stderr
    assert "does not have the documented shape" in applied.stdout + applied.stderr
    assert api.writes() == []
    listed = api.upstream("GET", f"/admin/control/v1/orgs/{ORG}/policies")["data"]
    assert [p["attributes"]["name"] for p in listed] == ["Office"]


def test_one_orgs_malformed_answer_leaves_a_healthy_org_planned_and_applied(
    api: HostileApi, cli: CliRunner, tmp_path: Path
) -> None:
    """`links` as a string on one org, a real change on the other: the healthy org is
    planned and applied, the broken one is an error of its own, and no 'internal error'."""
    folder = tmp_path / "policies"
    _policy(api, ORG)
    _policy_file(folder, ORG)
    _policy_file(folder, HEALTHY)  # wants an Office allowlist the org does not have yet
    api.on("GET", POLICIES, Answer(body=_listing(links="next")))
    plan = _run(cli, api, "plan", str(folder))
    assert plan.code == 1
    assert "internal error" not in plan.stdout + plan.stderr
    assert re.search(rf"org {HEALTHY}\b.*\n\s+\+ ip_allowlist \"Office\"", plan.stdout), plan.stdout
    assert f"GET /admin/control/v1/orgs/{ORG}/policies: the answer does not have" in plan.stdout
    applied = _run(cli, api, "apply", str(folder), "--yes")
    assert applied.code == 1
    assert "internal error" not in applied.stdout + applied.stderr
    assert all(f"/orgs/{HEALTHY}/" in write for write in api.writes())
    assert any(write.startswith("POST") for write in api.writes())
    healthy = api.upstream("GET", f"/admin/control/v1/orgs/{HEALTHY}/policies")["data"]
    assert [p["attributes"]["name"] for p in healthy] == ["Office"]


def test_a_5000_digit_number_in_a_policy_is_a_located_validation_error(
    cli: CliRunner, tmp_path: Path
) -> None:
    """Once an internal error: now the file, line and column of the number."""
    folder = tmp_path / "policies"
    _policy_file(folder, ORG, f"guards: {{maxDeletePercent: {'3' * 5000}}}\n")
    result = cli("validate", str(folder))
    assert result.code == 1
    assert "internal error" not in result.stderr
    assert re.search(
        r"\.yaml:6:\d+: error: a number of 5000 characters .*\[yaml\.number\]",
        (result.stdout + result.stderr),
    )


def test_apply_own_reads_are_checked_too_so_a_bad_listing_never_means_create(
    api: HostileApi, cli: CliRunner, tmp_path: Path
) -> None:
    """Apply looks the name up again just before a create. A malformed listing there once
    read as "not there" and sent a duplicate; now it stops the org with no write."""
    _policy(api, ORG)  # Office exists upstream...
    _policy_file(tmp_path / "policies", ORG)
    seen = {"GET": 0}

    def listing(request: object) -> Answer:
        seen["GET"] += 1  # ...but the plan's two reads see an empty org, the re-read garbage
        return Answer(body=_listing() if seen["GET"] <= 2 else _listing({"id": "p1"}))

    api.on("GET", POLICIES, listing)
    applied = _run(cli, api, "apply", str(tmp_path / "policies"), "--yes")
    assert applied.code == 1, applied.stdout + applied.stderr
    assert "does not have the documented shape" in applied.stdout + applied.stderr
    assert api.writes() == []
    listed = api.upstream("GET", f"/admin/control/v1/orgs/{ORG}/policies")["data"]
    assert [p["attributes"]["name"] for p in listed] == ["Office"]
