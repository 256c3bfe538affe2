"""Shared baselines (DESIGN §3): `kind: Baseline`, `extends:` chains, `locked:` keys that no
org file may weaken, checks of the whole on the merged policy, and sources in either file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rovo_reconcile.policy.loader import PolicySet, load_policies

from .conftest import CliRunner

ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"
TODAY = date(2026, 11, 26)

CORP = """\
apiVersion: rovo-reconcile/v1
kind: Baseline
locked:
  - mcp.allowAtlassianSupportedDomains
  - mcp.authentication.apiToken
  - mcp.domains
  - ipAllowlists.Corporate egress
mcp:
  allowAtlassianSupportedDomains: false
  domains:
    - https://tools.corp.example/**
  authentication:
    apiToken: false
ipAllowlists:
  - name: Corporate egress
    enabled: true
    apps: [jira, confluence]
    addresses: [91.208.44.0/24]
guards:
  mustAllow: [91.208.44.10]
"""


def _org(body: str, extends: str = "../baselines/corp.yaml") -> str:
    return (
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
        f"extends: {extends}\norg:\n  id: {ORG}\n" + body
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "orgs").mkdir()
    (tmp_path / "baselines" / "corp.yaml").write_text(CORP)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _load(repo: Path, body: str, **kw: str) -> PolicySet:
    (repo / "orgs" / "acme.yaml").write_text(_org(body, **kw))
    return load_policies(["orgs"], TODAY)


def _errors(result: PolicySet) -> list[str]:
    return [f"{p.file}:{p.line}: {p.message}" for p in result.problems if p.severity == "error"]


def test_the_org_file_merges_over_its_baseline(repo: Path) -> None:
    """Settings come from the base unless the org sets them; lists merge by key."""
    result = _load(
        repo,
        "mcp:\n  domains: [https://app.acme.example/**]\n"
        "ipAllowlists:\n  - name: Corporate egress\n    enabled: true\n    apps: [compass]\n"
        "    addresses: [62.217.140.7]\n  - name: Office\n    enabled: false\n    apps: [jira]\n"
        "    addresses: [62.217.140.0/28]\n",
    )
    assert _errors(result) == []
    [loaded] = result.policies
    policy = loaded.policy
    assert policy.mcp is not None
    assert policy.mcp.allow_atlassian_supported_domains is False
    assert [d.pattern for d in policy.mcp.domains or ()] == [
        "https://tools.corp.example/**",
        "https://app.acme.example/**",
    ]
    corporate, office = policy.ip_allowlists or ()
    assert corporate.apps == ("jira", "confluence", "compass")
    assert [a.address for a in corporate.addresses] == ["91.208.44.0/24", "62.217.140.7/32"]
    assert office.name == "Office"
    assert policy.guards.must_allow == ("91.208.44.10/32",)
    assert loaded.where("mcp.settings:allowAtlassianSupportedDomains") == ("baselines/corp.yaml:9")
    assert loaded.where("mcp.domain:https://app.acme.example/**") == "orgs/acme.yaml:7"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "mcp:\n  allowAtlassianSupportedDomains: true\n",
            "orgs/acme.yaml:7: turns a locked false into true: "
            "mcp.allowAtlassianSupportedDomains is locked by baselines/corp.yaml:4",
        ),
        (
            "mcp:\n  authentication:\n    apiToken: true\n",
            "orgs/acme.yaml:8: turns a locked false into true: "
            "mcp.authentication.apiToken is locked by baselines/corp.yaml:5",
        ),
        (
            "mcp:\n  ownership: additive\n",
            "orgs/acme.yaml:7: makes the locked domain list additive, which would keep live "
            "domains the baseline removes: mcp.domains is locked by baselines/corp.yaml:6",
        ),
        (
            "mcp:\n  domains:\n    - pattern: https://tools.corp.example/**\n"
            "      expires: 2027-01-01\n",
            "orgs/acme.yaml:8: gives the locked domain https://tools.corp.example/** an earlier "
            "expiry: mcp.domains is locked by baselines/corp.yaml:6",
        ),
        (
            "ipAllowlists:\n  - name: Corporate egress\n    enabled: false\n    apps: [jira]\n"
            "    addresses: [91.208.44.0/24]\n",
            "orgs/acme.yaml:8: disables a locked allowlist: ipAllowlists.Corporate egress is "
            "locked by baselines/corp.yaml:7",
        ),
        (
            "ipAllowlists:\n  - name: Corporate egress\n    enabled: true\n    apps: [jira]\n"
            "    allowMobileBypass: true\n    addresses: [91.208.44.0/24]\n",
            "orgs/acme.yaml:10: gives a locked allowlist mobile bypass: ipAllowlists.Corporate "
            "egress is locked by baselines/corp.yaml:7",
        ),
        (
            "ipAllowlists:\n  - name: Corporate egress\n    enabled: true\n    apps: [jira]\n"
            "    ownership: additive\n    addresses: [91.208.44.0/24]\n",
            "orgs/acme.yaml:10: makes a locked allowlist additive, which would keep live "
            "addresses the baseline removes: ipAllowlists.Corporate egress is locked by "
            "baselines/corp.yaml:7",
        ),
        (
            "ipAllowlists:\n  - name: Corporate egress\n    enabled: true\n    apps: [jira]\n"
            "    addresses:\n      - address: 91.208.44.0/24\n        expires: 2027-01-01\n",
            "orgs/acme.yaml:11: gives the locked address 91.208.44.0/24 an earlier expiry: "
            "ipAllowlists.Corporate egress is locked by baselines/corp.yaml:7",
        ),
    ],
    ids=[
        "supported-list",
        "api-token",
        "domains-additive",
        "domain-expiry",
        "disabled",
        "mobile-bypass",
        "addresses-additive",
        "address-expiry",
    ],
)
def test_weakening_a_locked_key_is_an_error_naming_both_files(
    repo: Path, body: str, message: str
) -> None:
    """Each way of weakening what a baseline locks, reported in the org file at the line that
    weakens it, naming the baseline file and the line that locks it."""
    result = _load(repo, body)
    assert _errors(result) == [message]
    assert result.policies == []


def test_narrowing_a_locked_key_and_changing_what_is_not_locked_are_fine(repo: Path) -> None:
    """A locked true may become false, and an allowlist the baseline does not lock may be
    disabled: only weakening what is locked is refused."""
    corp = CORP.replace(
        "allowAtlassianSupportedDomains: false", "allowAtlassianSupportedDomains: true"
    ).replace(
        "guards:",
        "  - name: Lab\n    enabled: true\n    apps: [rovo]\n    addresses: [62.217.140.0/28]\n"
        "guards:",
    )
    (repo / "baselines" / "corp.yaml").write_text(corp)
    result = _load(
        repo,
        "mcp:\n  allowAtlassianSupportedDomains: false\n"
        "ipAllowlists:\n  - name: Lab\n    enabled: false\n    apps: [rovo]\n"
        "    addresses: [62.217.140.0/28]\n",
    )
    assert _errors(result) == []
    [lab] = [a for a in result.policies[0].policy.ip_allowlists or () if a.name == "Lab"]
    assert lab.enabled is False


def test_a_three_level_chain_keeps_the_bottom_locks(repo: Path) -> None:
    """org -> team -> corp: the team baseline adds a domain, and what corp locks binds the
    org file two levels up."""
    (repo / "baselines" / "team.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: Baseline\nextends: corp.yaml\n"
        "mcp:\n  domains: [https://team.corp.example/**]\n"
    )
    ok = _load(
        repo, "mcp:\n  domains: [https://app.acme.example/**]\n", extends="../baselines/team.yaml"
    )
    assert _errors(ok) == []
    mcp = ok.policies[0].policy.mcp
    assert mcp is not None
    assert [d.pattern for d in mcp.domains or ()] == [
        "https://tools.corp.example/**",
        "https://team.corp.example/**",
        "https://app.acme.example/**",
    ]
    assert ok.policies[0].where("mcp.domain:https://team.corp.example/**") == (
        "baselines/team.yaml:5"
    )
    bad = _load(
        repo, "mcp:\n  authentication: {apiToken: true}\n", extends="../baselines/team.yaml"
    )
    assert _errors(bad) == [
        "orgs/acme.yaml:7: turns a locked false into true: mcp.authentication.apiToken is "
        "locked by baselines/corp.yaml:5"
    ]


def test_a_cycle_is_an_error(repo: Path) -> None:
    """a -> b -> a is refused at the extends line that closes it, never followed forever."""
    (repo / "baselines" / "a.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: Baseline\nextends: b.yaml\n"
    )
    (repo / "baselines" / "b.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: Baseline\nextends: a.yaml\n"
    )
    result = _load(repo, "", extends="../baselines/a.yaml")
    assert [p.code for p in result.problems] == ["baseline.extends"]
    assert "extends makes a cycle" in result.problems[0].message
    assert result.policies == []


@pytest.mark.parametrize(
    ("extends", "message"),
    [
        ("../baselines/nope.yaml", "extends names ../baselines/nope.yaml, which cannot be read"),
        ("other.yaml", "extends names other.yaml, which is not a kind: Baseline file"),
    ],
)
def test_extends_must_name_a_readable_baseline(repo: Path, extends: str, message: str) -> None:
    """A missing file, or an org file, is refused at the extends line."""
    (repo / "orgs" / "other.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {id: other-org}\n"
    )
    result = _load(repo, "", extends=extends)
    assert _errors(result) == [f"orgs/acme.yaml:3: {message}"]
    assert [p.policy.org.id for p in result.policies] == ["other-org"]


def test_a_baseline_must_lock_only_what_it_sets(repo: Path) -> None:
    """A locked key that is unknown or names nothing in the baseline is the baseline's error."""
    (repo / "baselines" / "corp.yaml").write_text(
        CORP.replace("  - mcp.domains\n", "  - mcp.domain\n  - ipAllowlists.Nope\n")
    )
    result = load_policies(["baselines"], TODAY)
    assert _errors(result) == [
        "baselines/corp.yaml:6: unknown locked key 'mcp.domain'",
        "baselines/corp.yaml:7: locked key 'ipAllowlists.Nope' names nothing this baseline sets",
    ]


def test_the_whole_is_checked_merged(repo: Path) -> None:
    """A list the org file restates with no addresses is not 'enabled and empty' (the base
    gives it addresses), but an org allowlist that shuts the base's mustAllow out of compass
    is a lockout, reported at the baseline's mustAllow line."""
    restated = _load(
        repo,
        "ipAllowlists:\n  - name: Corporate egress\n    enabled: true\n    apps: [jira]\n"
        "    addresses: []\n",
    )
    assert _errors(restated) == []
    shut = _load(
        repo,
        "ipAllowlists:\n  - name: Compass\n    enabled: true\n    apps: [compass]\n"
        "    addresses: [62.217.140.7]\n",
    )
    assert _errors(shut) == [
        "baselines/corp.yaml:20: mustAllow address 91.208.44.10/32 is not admitted by any "
        "enabled allowlist covering compass, with its baselines"
    ]


def test_baselines_are_checked_by_validate_and_never_planned(repo: Path, cli: CliRunner) -> None:
    """validate checks a baseline file; plan of a repository with one plans only org files,
    shows where each value came from, and apply converges."""
    (repo / "orgs" / "acme.yaml").write_text(
        _org("mcp:\n  domains: [https://app.acme.example/**]\n")
    )
    assert cli("validate", "baselines", "orgs", cwd=repo).code == 0
    planned = cli("plan", ".", "--format", "json", cwd=repo)
    assert planned.code == 0, planned.stderr
    [org] = json.loads(planned.stdout)["orgs"]
    assert org["file"] == "orgs/acme.yaml"
    sources = {c["key"]: c["source"] for c in org["changes"]}
    assert sources["mcp.domain:https://tools.corp.example/**"] == "baselines/corp.yaml:11"
    assert sources["mcp.domain:https://app.acme.example/**"] == "orgs/acme.yaml:7"
    assert cli("apply", ".", "--yes", cwd=repo).code == 0
    assert cli("plan", ".", "--detailed-exitcode", cwd=repo).code == 0


def test_adopt_refuses_a_file_that_extends_a_baseline(repo: Path, cli: CliRunner) -> None:
    """adopt would have to decide between the org file and a baseline other orgs share: it
    says so and writes nothing, rather than rewrite either."""
    policy = repo / "orgs" / "acme.yaml"
    policy.write_text(_org("mcp:\n  domains: [https://app.acme.example/**]\n"))
    before = policy.read_text()
    result = cli("adopt", "orgs", cwd=repo)
    assert result.code == 1
    assert "orgs/acme.yaml: extends a baseline; adopt does not rewrite layered files yet" in (
        result.stderr
    )
    assert policy.read_text() == before
