"""`- tool: NAME` allowlist entries and the `access.ai-tool-egress` lint (issue 10)."""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import date
from pathlib import Path

import pytest

from rovo_reconcile.access import catalogue as catalogue_module
from rovo_reconcile.access.catalogue import Catalogue, Fact, Tool
from rovo_reconcile.policy.loader import PolicySet, load_policies
from rovo_reconcile.policy.problems import Problem

from .conftest import EXAMPLES, ROOT, CliRunner

TODAY = date(2026, 11, 26)
UNFIXED = Path(__file__).parent / "access_fixtures" / "unfixed"
FIXED = [*sorted(EXAMPLES.glob("*.yaml")), ROOT / "examples/policy-repo/policies/example-org.yaml"]

HEAD = """\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org:
  id: org-1
"""


def _load(tmp_path: Path, body: str) -> PolicySet:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + textwrap.dedent(body), "utf-8")
    return load_policies([str(path)], TODAY)


def _codes(result: PolicySet, code: str) -> list[Problem]:
    return [p for p in result.problems if p.code == code]


# ------------------------------------------------------------------ the lint


@pytest.mark.parametrize("path", sorted(UNFIXED.glob("*.yaml")), ids=lambda p: p.name)
def test_the_lint_fires_on_the_examples_as_they_were(path: Path) -> None:
    """The examples before issue 10 allowed the supported list while every enabled allowlist
    admitted only corporate ranges: Claude's calls were all blocked, and validate said so not."""
    result = load_policies([str(path)], TODAY)
    (warning,) = _codes(result, "access.ai-tool-egress")
    assert warning.severity == "warning"
    assert "Claude [anthropic] may sign in (the Atlassian-supported list is allowed" in (
        warning.message
    )
    assert "admit none of its egress range 160.79.104.0/21" in warning.message
    assert "will be blocked" in warning.message
    assert warning.hint is not None
    assert "add `- tool: anthropic` to allowlist" in warning.hint
    assert "whether it connects via OAuth 2.1 or API token" in warning.hint  # the contradiction


@pytest.mark.parametrize("path", FIXED, ids=lambda p: p.name)
def test_the_lint_is_quiet_on_the_fixed_examples(path: Path) -> None:
    result = load_policies([str(path)], TODAY)
    assert not result.errors
    assert _codes(result, "access.ai-tool-egress") == []


def test_the_lint_names_the_allowlist_to_fix_and_the_apps(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        mcp:
          allowAtlassianSupportedDomains: true
        ipAllowlists:
          - name: Office
            enabled: true
            apps: [jira, jsm]
            addresses: [91.208.44.0/24]
          - name: Wiki                            # line 12
            enabled: true
            apps: [confluence, rovo, compass]
            addresses: [91.208.44.0/24]
        """,
    )
    (warning,) = _codes(result, "access.ai-tool-egress")
    assert "the enabled allowlists of jira, confluence, compass, rovo admit none" in (
        warning.message
    )
    assert warning.line == 12  # the list covering the most affected apps
    assert warning.hint is not None
    assert warning.hint.startswith("add `- tool: anthropic` to allowlist 'Wiki' and 'Office'")


def test_the_lint_fires_when_an_own_domain_admits_the_tool(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        mcp:
          allowAtlassianSupportedDomains: false
          domains:
            - https://claude.ai/**                # line 8
        ipAllowlists:
          - name: Office
            enabled: true
            apps: [rovo]
            addresses: [160.79.104.0/23]
        """,
    )
    (warning,) = _codes(result, "access.ai-tool-egress")
    assert "https://claude.ai/** (line 8) admits its redirect URI" in warning.message
    assert "admit only part of its egress range" in warning.message
    assert "calls to rovo will be blocked" in warning.message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            """\
            mcp:
              allowAtlassianSupportedDomains: false
              domains: [https://mcp.example-corp.com/**]
            ipAllowlists:
              - {name: Office, enabled: true, apps: [jira], addresses: [91.208.44.0/24]}
            """,
            id="no AI tool may sign in",
        ),
        pytest.param(
            """\
            mcp:
              allowAtlassianSupportedDomains: true
            ipAllowlists:
              - {name: Office, enabled: false, apps: [jira], addresses: [91.208.44.0/24]}
              - {name: Desk, enabled: true, apps: [jsm], addresses: [91.208.44.0/24]}
            """,
            id="the AI-tool apps have no enabled allowlist",
        ),
        pytest.param(
            """\
            mcp:
              allowAtlassianSupportedDomains: true
            ipAllowlists:
              - name: Office
                enabled: true
                apps: [jira, confluence, compass, rovo]
                addresses: [91.208.44.0/24, {tool: anthropic}]
            """,
            id="the tool's ranges are admitted",
        ),
    ],
)
def test_the_lint_is_quiet_when_nothing_is_blocked(tmp_path: Path, body: str) -> None:
    result = _load(tmp_path, body)
    assert not result.errors, result.problems
    assert _codes(result, "access.ai-tool-egress") == []


def test_an_expired_tool_entry_no_longer_admits(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        mcp:
          allowAtlassianSupportedDomains: true
        ipAllowlists:
          - name: Office
            enabled: true
            apps: [jira]
            addresses:
              - 91.208.44.0/24
              - tool: anthropic
                expires: 2026-10-31
        """,
    )
    assert sorted(p.code for p in result.problems) == ["access.ai-tool-egress", "expiry.passed"]
    (expired,) = _codes(result, "expiry.passed")
    assert "tool: anthropic (160.79.104.0/21) expired on 2026-10-31" in expired.message


# ------------------------------------------------------------------ `- tool:` entries


def test_a_tool_entry_expands_to_the_catalogue_ranges(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        ipAllowlists:
          - name: AI tools
            enabled: true
            apps: [rovo]
            addresses:
              - tool: anthropic
                note: Claude
        """,
    )
    assert result.problems == []
    (allowlist,) = result.policies[0].policy.ip_allowlists or ()
    (entry,) = allowlist.addresses
    assert (entry.address, entry.note, entry.tool) == ("160.79.104.0/21", "Claude", "anthropic")


def test_an_unknown_tool_is_an_error_with_a_did_you_mean(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        ipAllowlists:
          - name: AI tools
            enabled: true
            apps: [rovo]
            addresses:
              - tool: antropic                    # line 10
        """,
    )
    (error,) = result.problems
    assert (error.code, error.line, error.column) == ("address.unknown-tool", 10, 15)
    assert error.message == "'antropic' is not an AI tool of the catalogue"
    assert error.hint == "did you mean 'anthropic'?"


def test_a_tool_without_verified_ranges_is_an_error(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        ipAllowlists:
          - {name: AI tools, enabled: true, apps: [rovo], addresses: [{tool: openai}]}
        """,
    )
    (error,) = result.problems
    assert error.code == "address.tool-no-ranges"
    assert "https://openai.com/chatgpt-connectors.json" in error.message


def test_expanded_ranges_meet_the_duplicate_and_overlap_checks(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """\
        ipAllowlists:
          - name: AI tools
            enabled: true
            apps: [rovo]
            addresses:
              - 160.79.104.0/21                   # line 10
              - tool: anthropic                   # line 11
              - 160.79.105.0/24                   # line 12
        """,
    )
    found = {(p.code, p.line) for p in result.problems}
    assert found == {("address.duplicate", 11), ("address.overlap", 12)}
    duplicate = next(p for p in result.problems if p.code == "address.duplicate")
    assert duplicate.message == (
        "160.79.104.0/21 (from tool: anthropic) is listed twice in this allowlist (first at line 10)"
    )


def test_each_expanded_range_counts_toward_the_500_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool of three ranges beside 498 addresses puts the app at 501 entries."""
    fact = Fact("https://example.com/ranges", "2026-12-01", True, "test")
    wide = Tool(
        "wide",
        "Wide",
        "a test tool",
        "Example",
        True,
        fact,
        ("https://wide.example.com/callback",),
        fact,
        ("198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24"),
        (),
        fact,
    )
    monkeypatch.setattr(catalogue_module, "catalogue", lambda: Catalogue((wide,)))
    singles = "\n".join(f"      - 11.{i // 250}.{i % 250}.1" for i in range(498))
    path = tmp_path / "policy.yaml"
    path.write_text(
        HEAD + "ipAllowlists:\n  - name: Big\n    enabled: true\n    apps: [jira]\n"
        "    addresses:\n" + singles + "\n      - tool: wide\n",
        "utf-8",
    )
    result = load_policies([str(path)], TODAY)
    (cap,) = _codes(result, "allowlist.app-limit")
    assert cap.line == 9 + 498 + 1  # the `- tool: wide` line: its third range is the 501st


def test_plan_shows_the_ranges_a_tool_entry_expands_to(cli: CliRunner, tmp_path: Path) -> None:
    """Text, JSON and Markdown plans say where an expanded range comes from."""
    policy = tmp_path / "small-team.yaml"
    shutil.copy(EXAMPLES / "small-team.yaml", policy)
    origin = (
        "160.79.104.0/21: from catalogue: anthropic "
        "(https://platform.claude.com/docs/en/api/ip-addresses, retrieved 2026-12-01)"
    )
    text = cli("plan", str(policy))
    assert text.code == 0, text.stderr
    assert "+ 160.79.104.0/21" in text.stdout
    assert f"note: {origin}" in text.stdout
    markdown = cli("plan", str(policy), "--format", "markdown")
    assert origin in markdown.stdout
    plan = json.loads(cli("plan", str(policy), "--format", "json").stdout)
    notes = [n for org in plan["orgs"] for c in org["changes"] for n in c["notes"]]
    assert origin in notes
