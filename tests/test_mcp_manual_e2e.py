"""A real organization today: its Rovo MCP endpoints answer 404. plan, apply and drift say
so per org, list the manual steps, and never report the MCP part as converged or clean,
in text and JSON; `--mcp manual|api|auto` (DESIGN section 10).

The org is a real emulator behind `hostile_api`, with exactly the `rovo-mcp` endpoints
answering 404, driven through the CLI as a subprocess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CliRunner, Result
from .hostile_api import Answer, HostileApi, hostile_api

KEY = "mcp-manual-test-key-0123456789"
ORG = "4a7b1c9e-2d3f-4e5a-9b8c-1d2e3f4a5b6c"
POLICY = f"""\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {{id: {ORG}, name: Real Corp}}
mcp:
  allowAtlassianSupportedDomains: false
  domains: [https://app.example-corp.com/**]
  authentication: {{apiToken: false}}
ipAllowlists:
  - name: Office
    enabled: true
    apps: [jira]
    addresses: [91.208.44.0/24]
"""
NOT_FOUND = Answer(
    404,
    {"errors": [{"id": "x", "status": "404", "code": "ADMIN-404-1", "title": "Not Found"}]},
)
HEADLINE = "MCP settings: not readable through any API; 3 manual steps"
STEPS = (
    'Atlassian Administration > Apps > AI settings > Rovo MCP server: deselect "Allow '
    'Atlassian supported domains"',
    "Atlassian Administration > Apps > AI settings > Rovo MCP server > Authentication: turn "
    "API token off",
)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[HostileApi]:
    """A real org whose MCP endpoints answer 404, whatever the method."""
    with hostile_api(tmp_path) as server:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            server.on(method, r"/rovo-mcp/", NOT_FOUND)
        yield server


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policies" / "real.yaml"
    path.parent.mkdir()
    path.write_text(POLICY, encoding="utf-8")
    return path


def run(cli: CliRunner, api: HostileApi, *args: str) -> Result:
    return cli(*args, "--api-url", api.url, env={"ATLASSIAN_ADMIN_API_KEY": KEY})


def mcp_requests(api: HostileApi) -> list[str]:
    return [f"{r.method} {r.path}" for r in api.requests if "/rovo-mcp/" in r.path]


def test_plan_lists_the_manual_steps_and_never_says_live_matches(
    cli: CliRunner, api: HostileApi, policy: Path
) -> None:
    text = run(cli, api, "plan", str(policy), "--detailed-exitcode")
    assert text.code == 2, text.stderr  # the allowlist is an API change; the steps are not
    assert HEADLINE in text.stdout
    for step in STEPS:
        assert f"manual: {step}" in text.stdout
    assert "manual: Atlassian Administration > Apps > AI settings > Rovo MCP server: keep" in (
        text.stdout
    )
    assert text.stdout.rstrip().endswith("MCP: 3 manual steps pending in 1 org.")
    assert "mcp.domain" not in text.stdout  # nothing is planned through an API that is not there

    data = json.loads(run(cli, api, "plan", str(policy), "--format", "json").stdout)
    (org,) = data["orgs"]
    assert org["mcp"]["status"] == "manual"
    assert org["mcp"]["live"] == "unavailable"
    assert len(org["mcp"]["manual_steps"]) == 3
    assert {c["resource"] for c in org["changes"]} == {"ip_allowlist"}
    assert data["format_version"] == "1"

    markdown = run(cli, api, "plan", str(policy), "--format", "markdown").stdout
    assert "MCP: 3 manual steps pending in 1 org" in markdown
    assert HEADLINE in markdown


def test_apply_converges_the_allowlists_and_never_calls_the_org_converged(
    cli: CliRunner, api: HostileApi, policy: Path
) -> None:
    first = run(cli, api, "apply", str(policy), "--yes")
    assert first.code == 0, first.stdout + first.stderr
    assert "IP allowlists converged; MCP: 3 manual steps pending" in first.stdout
    assert "converged: live matches the policy" not in first.stdout
    assert all(step in first.stdout for step in STEPS)
    assert not [w for w in api.writes() if "/rovo-mcp/" in w]

    again = run(cli, api, "apply", str(policy), "--yes")
    assert again.code == 0, again.stdout + again.stderr
    assert "IP allowlists converged; MCP: 3 manual steps pending" in again.stdout
    assert "nothing to do" not in again.stdout
    assert "No changes through the API. MCP: 3 manual steps pending in 1 org." in again.stdout
    assert again.stdout.rstrip().endswith(
        "Apply: nothing to write; 0 writes sent; MCP: 3 manual steps pending in 1 org."
    )

    report = json.loads(run(cli, api, "apply", str(policy), "--yes", "--format", "json").stdout)
    assert report["exit_code"] == 0
    assert report["summary"]["manual_steps"] == 3
    (org,) = report["orgs"]
    assert org["converged"] is False
    assert org["ip_allowlists_converged"] is True
    assert org["mcp"]["status"] == "manual"
    assert len(org["mcp"]["manual_steps"]) == 3


def test_apply_json_after_writes_is_honest_too(
    cli: CliRunner, api: HostileApi, policy: Path
) -> None:
    report = json.loads(run(cli, api, "apply", str(policy), "--yes", "--format", "json").stdout)
    assert report["exit_code"] == 0
    assert report["writes"] > 0
    (org,) = report["orgs"]
    assert org["converged"] is False
    assert org["ip_allowlists_converged"] is True
    assert org["mcp"]["status"] == "manual"


def test_drift_reports_mcp_as_unverifiable_not_clean(
    cli: CliRunner, api: HostileApi, policy: Path
) -> None:
    assert run(cli, api, "apply", str(policy), "--yes").code == 0
    text = run(cli, api, "drift", str(policy))
    assert text.code == 0, text.stdout + text.stderr  # nothing verifiable drifts
    assert "unverifiable  MCP settings not readable through any API" in text.stdout
    assert "Live matches" not in text.stdout
    assert "no drift in what could be read" in text.stdout
    assert text.stdout.rstrip().endswith(
        "No drift in what could be read; MCP settings of 1 org unverifiable."
    )
    data = json.loads(run(cli, api, "drift", str(policy), "--format", "json").stdout)
    assert data["summary"]["mcp_unverifiable"] == 1
    (mcp,) = data["mcp"]
    assert mcp["status"] == "unverifiable"
    assert len(mcp["manual_steps"]) == 3
    markdown = run(cli, api, "drift", str(policy), "--format", "markdown").stdout
    assert "### MCP settings not verifiable" in markdown
    assert "MCP settings of 1 org unverifiable" in markdown


def test_mcp_api_makes_the_404_an_error(cli: CliRunner, api: HostileApi, policy: Path) -> None:
    for command in ("plan", "drift"):
        result = run(cli, api, command, str(policy), "--mcp", "api")
        assert result.code == 1, (command, result.stdout, result.stderr)
        assert "--mcp api says it must be there" in result.stdout + result.stderr
    applied = run(cli, api, "apply", str(policy), "--yes", "--mcp", "api")
    assert applied.code == 1, applied.stdout + applied.stderr
    assert api.writes() == []


def test_mcp_manual_never_calls_the_mcp_endpoints(cli: CliRunner, tmp_path: Path) -> None:
    """Against an org whose MCP API works, `--mcp manual` still never calls it."""
    path = tmp_path / "real.yaml"
    path.write_text(POLICY, encoding="utf-8")
    with hostile_api(tmp_path) as api:
        data = json.loads(
            run(cli, api, "plan", str(path), "--mcp", "manual", "--format", "json").stdout
        )
        assert data["orgs"][0]["mcp"] == {
            "status": "manual",
            "live": "not-read",
            "manual_steps": data["orgs"][0]["mcp"]["manual_steps"],
        }
        assert len(data["orgs"][0]["mcp"]["manual_steps"]) == 3
        applied = run(cli, api, "apply", str(path), "--yes", "--mcp", "manual")
        assert applied.code == 0, applied.stdout + applied.stderr
        assert "MCP settings: not read (--mcp manual); 3 manual steps" in applied.stdout
        assert "IP allowlists converged; MCP: 3 manual steps pending" in applied.stdout
        drift = run(cli, api, "drift", str(path), "--mcp", "manual")
        assert drift.code == 0, drift.stdout
        assert "unverifiable  MCP settings not read (--mcp manual)" in drift.stdout
        assert mcp_requests(api) == []


def test_mcp_auto_on_an_org_with_the_api_plans_mcp_through_it(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "real.yaml"
    path.write_text(POLICY, encoding="utf-8")
    with hostile_api(tmp_path) as api:
        data = json.loads(run(cli, api, "plan", str(path), "--format", "json").stdout)
        assert data["orgs"][0]["mcp"] == {"status": "api", "live": "read", "manual_steps": []}
        assert "mcp.domain" in {c["resource"] for c in data["orgs"][0]["changes"]}
        applied = run(cli, api, "apply", str(path), "--yes", "--mcp", "api")
        assert applied.code == 0, applied.stdout + applied.stderr
        assert "converged: live matches the policy" in applied.stdout


def test_a_saved_plan_made_with_mcp_manual_is_applied_without_calling_mcp(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "real.yaml"
    path.write_text(POLICY, encoding="utf-8")
    saved = tmp_path / "plan.json"
    with hostile_api(tmp_path) as api:
        assert run(cli, api, "plan", str(path), "--mcp", "manual", "--out", str(saved)).code == 0
        applied = run(cli, api, "apply", "--plan", str(saved))
        assert applied.code == 0, applied.stdout + applied.stderr
        assert "IP allowlists converged; MCP: 3 manual steps pending" in applied.stdout
        assert mcp_requests(api) == []
