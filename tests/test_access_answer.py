"""`access` answers the questions Atlassian's page settles, with the line that decides each.

Each case is a small policy, a question (app, address, tool, auth) and the verdict the
reference page implies: a call passes only when its domain is allowed AND an enabled
allowlist covering the app admits its address (no enabled allowlist: no restriction).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from rovo_reconcile.access.answer import Answer, answer
from rovo_reconcile.access.questions import build_questions
from rovo_reconcile.access.view import file_view
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.policy.yaml_source import load_document

TODAY = date(2026, 11, 26)
CLAUDE = "https://claude.ai/api/mcp/auth_callback"

HEAD = """\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org:
  id: org-1
"""


def _ask(
    tmp_path: Path,
    body: str,
    *,
    app: str = "jira",
    source: str | None = None,
    tool: str = "anthropic",
    auth: str = "oauth",
) -> Answer:
    path = tmp_path / "policy.yaml"
    path.write_text(HEAD + textwrap.dedent(body), "utf-8")
    loaded = load_policies([str(path)], TODAY)
    assert not loaded.errors, [p.message for p in loaded.problems]
    doc, _ = load_document(path, "policy.yaml")
    view = file_view(doc, loaded.policies[0].policy, TODAY)
    (question,) = build_questions(app, tool, source, auth)  # type: ignore[arg-type]
    return answer(view, question)


def _control(result: Answer, name: str) -> tuple[str, tuple[str, ...]]:
    (control,) = [c for c in result.controls if c.control == name]
    return control.verdict, control.where


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    verdict: str
    domain: tuple[str, tuple[str, ...]]
    ip: tuple[str, tuple[str, ...]]
    app: str = "jira"
    source: str | None = "160.79.104.10"
    tool: str = CLAUDE
    auth: str = "oauth"
    other_reading: str | None = None


SUPPORTED_ON_OFFICE_ONLY = """\
mcp:
  allowAtlassianSupportedDomains: true      # line 6
  domains: []
ipAllowlists:                               # line 8
  - name: Office                            # line 9
    enabled: true
    apps: [jira, confluence, rovo]
    addresses:
      - 91.208.44.0/24                      # line 13
"""

CASES = [
    Case(
        "allowed: supported list on, the address in an enabled allowlist",
        """\
        mcp:
          allowAtlassianSupportedDomains: true      # line 6
        ipAllowlists:
          - name: Office                            # line 8
            enabled: true
            apps: [jira]
            addresses:
              - 91.208.44.0/24                      # line 12
              - 160.79.104.0/21                     # line 13
        """,
        "allowed",
        ("allowed", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:13",)),
    ),
    Case(
        "blocked by domain: supported list off, no pattern admits the callback",
        """\
        mcp:
          allowAtlassianSupportedDomains: false     # line 6
          domains:                                  # line 7
            - https://mcp.example-corp.com/**
        """,
        "blocked",
        ("blocked", ("policy.yaml:6", "policy.yaml:7")),
        ("unknown", ()),  # no ipAllowlists section: not managed here
    ),
    Case(
        "allowed by the org's own pattern although the supported list is off",
        """\
        mcp:
          allowAtlassianSupportedDomains: false
          domains:
            - https://mcp.example-corp.com/**
            - https://claude.ai/api/mcp/**          # line 9
        ipAllowlists: []
        """,
        "allowed",
        ("allowed", ("policy.yaml:9",)),
        ("allowed", ("policy.yaml:10",)),
    ),
    Case(
        "a wildcard label does not admit the bare domain",
        """\
        mcp:
          allowAtlassianSupportedDomains: false     # line 6
          domains:                                  # line 7
            - https://*.claude.ai/**
        ipAllowlists: []                            # line 9
        """,
        "blocked",
        ("blocked", ("policy.yaml:6", "policy.yaml:7")),
        ("allowed", ("policy.yaml:9",)),
    ),
    Case(
        "blocked by IP: the domain is allowed, the tool's egress is not in the allowlist",
        SUPPORTED_ON_OFFICE_ONLY,
        "blocked",
        ("allowed", ("policy.yaml:6",)),
        ("blocked", ("policy.yaml:9",)),
    ),
    Case(
        "a disabled allowlist is ignored: the app has no IP restriction",
        """\
        mcp:
          allowAtlassianSupportedDomains: true
        ipAllowlists:                               # line 7
          - name: Contractors                       # line 8
            enabled: false
            apps: [jira]
            addresses: [87.106.214.32/28]
        """,
        "allowed",
        ("allowed", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:7", "policy.yaml:8")),
    ),
    Case(
        "an app no enabled allowlist covers has no IP restriction",
        SUPPORTED_ON_OFFICE_ONLY,
        "allowed",
        ("allowed", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:8",)),  # the ipAllowlists key: no list covers compass
        app="compass",
    ),
    Case(
        "enabled allowlists covering the app admit together: the second one decides",
        """\
        mcp:
          allowAtlassianSupportedDomains: true
        ipAllowlists:
          - name: Office
            enabled: true
            apps: [jira, confluence]
            addresses: [91.208.44.0/24]
          - name: AI tools                          # line 12
            enabled: true
            apps: [jira]
            addresses:
              - tool: anthropic                     # line 16
        """,
        "allowed",
        ("allowed", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:16",)),
    ),
    Case(
        "an expired entry counts as absent",
        """\
        mcp:
          allowAtlassianSupportedDomains: true
        ipAllowlists:
          - name: Office                            # line 8
            enabled: true
            apps: [jira]
            addresses:
              - 91.208.44.0/24
              - address: 160.79.104.0/21            # line 13
                expires: 2026-01-31
        """,
        "blocked",
        ("allowed", ("policy.yaml:6",)),
        ("blocked", ("policy.yaml:8", "policy.yaml:13")),
    ),
    Case(
        "a corporate address passes the allowlist, but Claude calls from its own cloud",
        SUPPORTED_ON_OFFICE_ONLY,
        "allowed",
        ("allowed", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:13",)),
        source="91.208.44.7",
    ),
    Case(
        "only part of a block is admitted: blocked",
        """\
        ipAllowlists:
          - name: Office                            # line 6
            enabled: true
            apps: [jira]
            addresses: [160.79.104.0/22]
        mcp:
          allowAtlassianSupportedDomains: true      # line 11
        """,
        "blocked",
        ("allowed", ("policy.yaml:11",)),
        ("blocked", ("policy.yaml:6",)),
        source="160.79.104.0/21",
    ),
    Case(
        "an unknown redirect URI with the supported list on: rovo-reconcile cannot tell",
        """\
        mcp:
          allowAtlassianSupportedDomains: true      # line 6
          domains: []                               # line 7
        ipAllowlists: []
        """,
        "unknown",
        ("unknown", ("policy.yaml:6", "policy.yaml:7")),
        ("allowed", ("policy.yaml:8",)),
        tool="https://agents.example.net/callback",
    ),
    Case(
        "API token, read as bypassing the domain rules: allowed, blocked under the other reading",
        """\
        mcp:
          allowAtlassianSupportedDomains: false     # line 6
          domains: []                               # line 7
          authentication:
            apiToken: true                          # line 9
        ipAllowlists: []
        """,
        "allowed",
        ("not applied", ("policy.yaml:6", "policy.yaml:7")),
        ("allowed", ("policy.yaml:10",)),
        auth="token",
        other_reading="blocked",
    ),
    Case(
        "API token while token authentication is off: blocked by authentication",
        """\
        mcp:
          allowAtlassianSupportedDomains: true
          authentication:
            apiToken: false                         # line 8
        ipAllowlists: []
        """,
        "blocked",
        ("not applied", ("policy.yaml:6",)),
        ("allowed", ("policy.yaml:9",)),
        auth="token",
        other_reading="blocked",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_access_answers_as_the_reference_page_implies(tmp_path: Path, case: Case) -> None:
    result = _ask(
        tmp_path, case.body, app=case.app, source=case.source, tool=case.tool, auth=case.auth
    )
    assert result.verdict == case.verdict
    assert _control(result, "domain") == case.domain
    assert _control(result, "ip") == case.ip
    assert result.other_reading == case.other_reading


def test_the_tools_own_egress_is_used_without_from(tmp_path: Path) -> None:
    """No --from: a cloud tool calls from its published egress, which decides the IP control."""
    result = _ask(tmp_path, SUPPORTED_ON_OFFICE_ONLY, source=None, tool="anthropic")
    assert result.question.addresses == ("160.79.104.0/21",)
    assert result.verdict == "blocked"
    (ip,) = [c for c in result.controls if c.control == "ip"]
    assert "admit none of 160.79.104.0/21" in ip.reason


def test_a_source_outside_the_tools_egress_is_noted(tmp_path: Path) -> None:
    result = _ask(tmp_path, SUPPORTED_ON_OFFICE_ONLY, source="91.208.44.7", tool="anthropic")
    assert any("calls from Anthropic's cloud (160.79.104.0/21)" in n for n in result.notes)


def test_a_tool_without_verified_egress_is_unknown_on_a_restricted_app(tmp_path: Path) -> None:
    result = _ask(tmp_path, SUPPORTED_ON_OFFICE_ONLY, source=None, tool="openai")
    assert result.verdict == "unknown"
    (ip,) = [c for c in result.controls if c.control == "ip"]
    assert ip.verdict == "unknown"
    assert "no verified egress ranges" in ip.reason


def test_the_disabled_allowlist_and_an_expiry_are_explained(tmp_path: Path) -> None:
    result = _ask(
        tmp_path,
        """\
        ipAllowlists:
          - name: Contractors
            enabled: false
            apps: [jira]
            addresses: [87.106.214.32/28]
          - name: Office
            enabled: true
            apps: [jira]
            addresses:
              - 91.208.44.0/24
              - address: 160.79.104.0/21
                expires: 2026-01-31
        """,
    )
    (ip,) = [c for c in result.controls if c.control == "ip"]
    assert "allowlist 'Contractors' covers jira but is disabled, so it is ignored" in ip.reason
    assert "expired on 2026-01-31" in ip.reason
