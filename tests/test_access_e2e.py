"""`rovo-reconcile access` as a user runs it: a subprocess, on policy files and on a live
org served by a real emulator on loopback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import EXAMPLES, CliRunner, Result
from .emulator_fixture import ADMIN_KEY, Emulator, EmulatorPool, admin_flags
from .hostile_api import Answer, hostile_api

KEY = ADMIN_KEY
UNFIXED = Path(__file__).parent / "access_fixtures" / "unfixed"
CLAUDE = "https://claude.ai/api/mcp/auth_callback"


def _line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` containing `text`."""
    lines = path.read_text("utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _clean(result: Result) -> None:
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_an_allowed_call_names_the_lines_that_decide_it(cli: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "enterprise.yaml"
    shutil.copy(EXAMPLES / "enterprise.yaml", policy)
    result = cli(
        "access", str(policy), "--app", "jira", "--from", "160.79.104.10", "--tool", CLAUDE
    )
    assert result.code == 0, result.stdout + result.stderr
    _clean(result)
    lines = result.stdout.splitlines()
    assert lines[1] == (
        f"Claude [anthropic] ({CLAUDE}) calling jira from 160.79.104.10/32 with OAuth 2.1: ALLOWED"
    )
    supported = _line_of(policy, "allowAtlassianSupportedDomains")
    tool_entry = _line_of(policy, "- tool: anthropic")
    domain = lines.index(next(line for line in lines if line.lstrip().startswith("domain")))
    assert lines[domain + 1].strip() == f"at {policy}:{supported}"
    ip = lines.index(next(line for line in lines if line.lstrip().startswith("IP allowlist")))
    assert "admitted by 160.79.104.0/21 (tool: anthropic) in allowlist 'AI tools'" in lines[ip]
    assert lines[ip + 1].strip() == f"at {policy}:{tool_entry}"


def test_a_call_blocked_by_the_allowlists_exits_2(cli: CliRunner) -> None:
    """The example as it was before issue 10: Claude may sign in, but its egress is not
    admitted on jira, so every call is blocked."""
    policy = UNFIXED / "small-team.yaml"
    result = cli("access", str(policy), "--app", "jira", "--tool", "anthropic")
    assert result.code == 2, result.stdout + result.stderr
    _clean(result)
    assert ": BLOCKED" in result.stdout.splitlines()[1]
    assert "admit none of 160.79.104.0/21 (Claude's published egress ranges)" in result.stdout
    assert f"at {policy}:{_line_of(policy, '- name: Office and VPN')}" in result.stdout


def test_a_call_blocked_by_the_domain_rules(cli: CliRunner) -> None:
    policy = EXAMPLES / "locked-down.yaml"
    result = cli("access", str(policy), "--app", "rovo", "--tool", CLAUDE, "--from", "160.79.104.1")
    assert result.code == 2
    assert "the Atlassian-supported list is blocked, and none of the org's 2 domains" in (
        result.stdout
    )
    assert f"at {policy}:{_line_of(policy, 'allowAtlassianSupportedDomains')}" in result.stdout


def test_an_api_token_answer_shows_both_readings(cli: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {id: org-t}\n"
        "mcp:\n  allowAtlassianSupportedDomains: false\n  domains: []\n"
        "  authentication: {apiToken: true}\n",
        "utf-8",
    )
    result = cli(
        "access", str(policy), "--app", "jira", "--tool", CLAUDE, "--from", "160.79.104.1",
        "--auth", "token",
    )  # fmt: skip
    assert result.code == 2  # the IP allowlists are not managed here: unknown
    assert "not applied" in result.stdout
    assert "whether it connects via OAuth 2.1 or API token" in result.stdout
    data = json.loads(
        cli(
            "access", str(policy), "--app", "jira", "--tool", CLAUDE, "--from", "160.79.104.1",
            "--auth", "token", "--format", "json",
        ).stdout
    )  # fmt: skip
    (only,) = data["answers"]
    assert only["verdict"] == "unknown"
    assert only["verdict_if_domains_bind_tokens"] == "blocked"
    assert only["domain_if_domains_bind_tokens"]["verdict"] == "blocked"
    assert data["token_domain_reading"]["assumed"] == "domain rules bind only OAuth 2.1 clients"


def test_without_a_tool_a_matrix_over_apps_and_catalogue_tools(cli: CliRunner) -> None:
    result = cli("access", str(EXAMPLES / "enterprise.yaml"))
    assert result.code == 2  # ChatGPT's egress is not in the catalogue: unknown
    _clean(result)
    for app in ("jira", "confluence", "compass", "rovo"):
        assert f"\n{app}\n" in result.stdout
    assert result.stdout.count("\n  Claude [anthropic]  ") == 4
    assert result.stdout.count("\n  ChatGPT [openai]    ") == 4
    assert result.stdout.rstrip().endswith("4 allowed, 0 blocked, 4 unknown")

    data = json.loads(cli("access", str(EXAMPLES / "enterprise.yaml"), "--format", "json").stdout)
    assert data["format_version"] == "1"
    assert data["verdict"] == "unknown"
    assert len(data["answers"]) == 8
    claude = [a for a in data["answers"] if a["tool"]["name"] == "anthropic"]
    assert {a["verdict"] for a in claude} == {"allowed"}
    assert claude[0]["tool"]["egress_source"] == (
        "https://platform.claude.com/docs/en/api/ip-addresses"
    )


def test_every_answer_allowed_exits_0_in_a_matrix(cli: CliRunner) -> None:
    result = cli("access", str(EXAMPLES / "small-team.yaml"), "--tool", "anthropic")
    assert result.code == 0, result.stdout
    assert result.stdout.rstrip().endswith("4 allowed, 0 blocked, 0 unknown")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "10.0.0.1/8"), "--from '10.0.0.1/8': "),
        (("--from", "10.0.0.1/8"), "did you mean 10.0.0.0/8?"),
        (("--tool", "antropic"), "did you mean 'anthropic'?"),
        (("--tool", "https://*.claude.ai/**"), "is a pattern, not a redirect URI"),
        (("--tool", "claude.ai:x"), "--tool 'claude.ai:x'"),
        (("--app", "jura"), "Invalid value for '--app'"),
        (("--live",), "access --live takes --org ID and no policy PATH"),
    ],
)
def test_bad_input_is_a_usage_error(cli: CliRunner, args: tuple[str, ...], message: str) -> None:
    result = cli("access", str(EXAMPLES / "small-team.yaml"), *args)
    assert result.code == 64, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    _clean(result)


def test_a_path_holding_several_orgs_needs_org(cli: CliRunner) -> None:
    result = cli("access", str(EXAMPLES), "--tool", "anthropic")
    assert result.code == 64
    assert "pick one with --org" in result.stderr
    picked = cli(
        "access", str(EXAMPLES), "--org", "3f9c2a71-8d4e-4b6a-a1c5-7e20d9b4f638", "--tool",
        "anthropic",
    )  # fmt: skip
    assert picked.code == 0, picked.stderr
    assert "small-team.yaml" in picked.stdout


def test_an_invalid_policy_exits_1_with_its_line(cli: CliRunner, tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {id: org-b}\nipAllowlists:\n"
        "  - name: A\n    enabled: true\n    apps: [jira]\n    addresses:\n      - tool: antropic\n",
        "utf-8",
    )
    result = cli("access", str(policy), "--tool", "anthropic")
    assert result.code == 1
    assert f"{policy}:9:15: error: 'antropic' is not an AI tool of the catalogue" in result.stderr
    assert result.stdout == ""
    _clean(result)


# ------------------------------------------------------------------ --live


@pytest.fixture
def emulator(emulator_pool: EmulatorPool) -> Iterator[Emulator]:
    with emulator_pool.fresh(*admin_flags(KEY)) as emu:
        yield emu


def _live(cli: CliRunner, emu: Emulator, *args: str) -> Result:
    return cli(*args, "--api-url", emu.url, env={"ATLASSIAN_ADMIN_API_KEY": KEY})


def test_live_answers_from_the_org_as_read(
    cli: CliRunner, emulator: Emulator, tmp_path: Path
) -> None:
    org = "3f9c2a71-8d4e-4b6a-a1c5-7e20d9b4f638"
    before = _live(cli, emulator, "apply", str(UNFIXED / "small-team.yaml"), "--yes")
    assert before.code == 0, before.stdout + before.stderr
    blocked = _live(
        cli, emulator, "access", "--live", "--org", org, "--app", "rovo", "--tool", "anthropic"
    )
    assert blocked.code == 2, blocked.stdout + blocked.stderr
    _clean(blocked)
    assert f"org {org} (live org {org} on atlassian ({emulator.url}))" in blocked.stdout
    assert f"at live org {org} on atlassian ({emulator.url}): allowlist 'Office and VPN'" in (
        blocked.stdout
    )

    fixed = _live(cli, emulator, "apply", str(EXAMPLES / "small-team.yaml"), "--yes")
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    allowed = _live(
        cli, emulator, "access", "--live", "--org", org, "--app", "rovo", "--tool", "anthropic",
        "--format", "json",
    )  # fmt: skip
    assert allowed.code == 0, allowed.stdout + allowed.stderr
    (only,) = json.loads(allowed.stdout)["answers"]
    ip = next(c for c in only["controls"] if c["control"] == "ip")
    assert ip["where"] == [f"live org {org} on atlassian ({emulator.url}): allowlist 'AI tools'"]
    domain = next(c for c in only["controls"] if c["control"] == "domain")
    assert domain["where"] == [f"live org {org} on atlassian ({emulator.url}): settings"]


def test_live_mcp_settings_that_answer_404_make_the_domain_unknown(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A real org today: the Rovo MCP endpoints answer 404, so the domain control cannot be
    judged and `access` says so instead of guessing (exit 2, verdict unknown)."""
    not_found = Answer(
        status=404,
        body={"errors": [{"status": "404", "code": "ADMIN-404-1", "title": "Not Found"}]},
    )
    with hostile_api(tmp_path) as api:
        api.on("GET", r"/rovo-mcp/", not_found)
        result = cli(
            "access", "--live", "--org", "org-real", "--app", "jira", "--tool", "anthropic",
            "--format", "json", "--api-url", api.url,
            env={"ATLASSIAN_ADMIN_API_KEY": KEY},
        )  # fmt: skip
    assert result.code == 2, result.stdout + result.stderr
    _clean(result)
    data = json.loads(result.stdout)
    (only,) = data["answers"]
    assert only["verdict"] == "unknown"
    domain = next(c for c in only["controls"] if c["control"] == "domain")
    assert domain["verdict"] == "unknown"
    assert "not readable through any API" in domain["reason"]
    ip = next(c for c in only["controls"] if c["control"] == "ip")
    assert ip["verdict"] == "allowed"  # no allowlist on the fresh org: no IP restriction
