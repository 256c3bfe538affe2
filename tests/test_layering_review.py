"""Review of shared baselines (issue 8): the ways an org file, a broken chain or a hostile
`extends` could slip past the checks, each refused at file:line and never with a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rovo_reconcile.policy.loader import load_policies

from .conftest import CliRunner
from .test_layering import CORP, ORG, TODAY, _errors, _load, _org, repo

__all__ = ["repo"]  # the fixture, shared with test_layering


def test_a_symlink_loop_is_a_located_problem_never_an_internal_error(
    repo: Path, cli: CliRunner
) -> None:
    """A *.yaml symlink loop in a policy directory, and one named by extends, are reported at
    a file and line; `validate` exits 1 with no internal error."""
    os.symlink("loop-b.yaml", repo / "baselines" / "loop-a.yaml")
    os.symlink("loop-a.yaml", repo / "baselines" / "loop-b.yaml")
    os.symlink("self.yaml", repo / "orgs" / "self.yaml")
    result = _load(repo, "", extends="../baselines/loop-a.yaml")
    assert "orgs/acme.yaml:3: extends names ../baselines/loop-a.yaml, which cannot be read" in (
        _errors(result)
    )
    validated = cli("validate", "orgs", "baselines", cwd=repo)
    assert validated.code == 1, validated.stderr
    assert "internal error" not in validated.stderr + validated.stdout
    assert "orgs/self.yaml:1:1" in validated.stdout


def test_extends_reads_only_a_relative_yaml_file_and_never_shows_another_files_text(
    repo: Path, cli: CliRunner
) -> None:
    """`extends: ../.env` or an absolute path would read any file the runner can and print its
    text in the schema error (a secret in a PR comment). Only a relative path to a .yaml or
    .yml file is followed; anything else is refused at the extends line, unread."""
    secret = repo / ".env"
    secret.write_text("ATLASSIAN_ADMIN_API_KEY=not-for-your-eyes\n")
    (repo / "baselines" / "abs.yaml").write_text(CORP)
    for extends in ("../.env", str(secret), str(repo / "baselines" / "abs.yaml")):
        (repo / "orgs" / "acme.yaml").write_text(_org("", extends=extends))
        validated = cli("validate", "orgs", cwd=repo)
        assert validated.code == 1, extends
        assert "not-for-your-eyes" not in validated.stdout + validated.stderr
        assert validated.stdout.startswith("orgs/acme.yaml:3:10: error: extends names "), (
            validated.stdout
        )
        assert "a relative path to a .yaml or .yml file" in validated.stdout


TEAM_TOKENS_ON = (
    "apiVersion: rovo-reconcile/v1\nkind: Baseline\nextends: corp.yaml\n"
    "mcp:\n  authentication: {apiToken: true}\n"
)
WEAKENED = (
    "baselines/team.yaml:5: turns a locked false into true: mcp.authentication.apiToken is "
    "locked by baselines/corp.yaml:5"
)


def test_a_baseline_two_orgs_share_reports_its_problem_once(repo: Path) -> None:
    """A middle baseline that weakens the bottom one's lock is one error in that baseline,
    not one per org file that extends it."""
    (repo / "baselines" / "team.yaml").write_text(TEAM_TOKENS_ON)
    (repo / "orgs" / "beta.yaml").write_text(
        _org("", extends="../baselines/team.yaml").replace(ORG, "beta-org")
    )
    result = _load(repo, "", extends="../baselines/team.yaml")
    assert _errors(result) == [WEAKENED]
    assert result.policies == []


def test_a_baseline_is_checked_with_its_chain_when_validated_alone(repo: Path) -> None:
    """`validate baselines/` (a security team's CI) checks each baseline's extends chain too:
    a broken extends and a weakened lock are errors though no org file extends them yet."""
    (repo / "baselines" / "team.yaml").write_text(TEAM_TOKENS_ON)
    (repo / "baselines" / "lab.yaml").write_text(
        "apiVersion: rovo-reconcile/v1\nkind: Baseline\nextends: nope.yaml\n"
    )
    result = load_policies(["baselines"], TODAY)
    assert _errors(result) == [
        "baselines/lab.yaml:3: extends names nope.yaml, which cannot be read",
        WEAKENED,
    ]


def test_an_allowlist_named_like_a_baselines_in_another_case_is_an_error(repo: Path) -> None:
    """Names match case-insensitively for duplicates in one file; across files the merge
    matched them exactly, so 'corporate egress' (disabled) slipped past the lock on
    'Corporate egress' as a second list. It is refused, naming the baseline's spelling."""
    result = _load(
        repo,
        "ipAllowlists:\n  - name: corporate egress\n    enabled: false\n    apps: [jira]\n"
        "    addresses: [62.217.140.7]\n",
    )
    assert _errors(result) == [
        "orgs/acme.yaml:7: allowlist name 'corporate egress' is the baseline allowlist "
        "'Corporate egress' (baselines/corp.yaml:15) spelt another way; names are the key "
        "that matches live allowlists"
    ]


def test_a_baselines_locked_list_is_checked_in_the_same_round_as_its_schema_errors(
    repo: Path,
) -> None:
    """One-round validation holds for a baseline: an unknown locked key is reported beside
    the schema errors, and a lock on a part the schema refused is not called 'names nothing'."""
    (repo / "baselines" / "corp.yaml").write_text(
        CORP.replace("  - mcp.domains\n", "  - mcp.domains\n  - mcp.domain\n")
        .replace("https://tools.corp.example/**", "1")
        .replace("apps: [jira, confluence]", "apps: [jria]")
    )
    result = load_policies(["baselines"], TODAY)
    assert [(p.line, p.code) for p in result.problems] == [
        (7, "baseline.locked-unknown"),
        (12, "schema.oneOf"),
        (18, "schema.enum"),
    ]


def test_planning_baselines_alone_is_a_usage_error_not_live_matches(
    repo: Path, cli: CliRunner
) -> None:
    """A baseline is never planned on its own; `plan baselines/` used to say 'No changes.
    Live matches the policies.' having compared nothing. It says what to plan instead."""
    for command in ("plan", "drift"):
        planned = cli(command, "baselines", cwd=repo)
        assert planned.code == 64, planned.stdout
        assert "Live matches" not in planned.stdout
        assert "a baseline is planned only through the org files that extend it" in (planned.stderr)


def test_a_lock_on_a_malformed_section_is_left_to_the_schemas_error(repo: Path) -> None:
    """`authentication: null` is the schema's error; the lock on apiToken beneath it is not
    also 'names nothing', and an empty locked item is not also an unknown key."""
    (repo / "baselines" / "corp.yaml").write_text(
        CORP.replace("  authentication:\n    apiToken: false\n", "  authentication:\n").replace(
            "  - mcp.domains\n", "  - ''\n"
        )
    )
    result = load_policies(["baselines"], TODAY)
    assert [(p.line, p.code) for p in result.problems] == [
        (6, "schema.minLength"),
        (12, "schema.type"),
    ]


def test_a_layered_org_with_an_additive_shared_list_plans_applies_and_drifts(
    repo: Path, cli: CliRunner
) -> None:
    """End to end on the sandbox: another team's address in the baseline's additive list
    survives `apply --plan` of a layered org; the saved plan is byte-identical run to run,
    names the baseline as the source of what it defines, and converges; drift is clean."""
    (repo / "baselines" / "corp.yaml").write_text(
        CORP.replace(
            "guards:",
            "  - name: Shared\n    enabled: true\n    ownership: additive\n"
            "    apps: [jira]\n    addresses: [62.217.140.0/28]\nguards:",
        )
    )
    (repo / "theirs.yaml").write_text(
        f"apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {{id: {ORG}}}\nipAllowlists:\n"
        "  - {name: Shared, enabled: true, apps: [jira], addresses: [185.199.108.7]}\n"
    )
    assert cli("apply", "theirs.yaml", "--yes", cwd=repo).code == 0
    (repo / "orgs" / "acme.yaml").write_text(_org(""))
    first = cli("plan", "orgs", "--format", "json", "--out", "a.json", cwd=repo)
    assert first.code == 0, first.stderr
    assert cli("plan", "orgs", "--format", "json", "--out", "b.json", cwd=repo).code == 0
    assert (repo / "a.json").read_bytes() == (repo / "b.json").read_bytes()
    [org] = json.loads((repo / "a.json").read_text())["orgs"]
    sources = {c["key"]: c["source"] for c in org["changes"]}
    assert sources["ip_allowlist:Shared"] == "baselines/corp.yaml:19"
    assert org["unmanaged"] == [{"key": "ip_allowlist:Shared", "value": "185.199.108.7/32"}]
    applied = cli("apply", "--plan", "a.json", cwd=repo)
    assert applied.code == 0, applied.stdout + applied.stderr
    assert "converged" in applied.stdout
    drift = cli("drift", "orgs", cwd=repo)
    assert drift.code == 0, drift.stdout
    assert "unmanaged: 185.199.108.7/32 in allowlist 'Shared'" in drift.stdout


def test_a_policy_that_is_one_line_of_text_is_refused_without_showing_it(
    repo: Path, cli: CliRunner
) -> None:
    """The other way to read another file: a committed symlink `orgs/x.yaml` pointing at a
    credentials file. A document that is only text is refused without quoting that text."""
    (repo / ".git-credentials").write_text("https://bot:ghp_notforyoureyes@github.com\n")
    os.symlink("../.git-credentials", repo / "orgs" / "x.yaml")
    validated = cli("validate", "orgs", cwd=repo)
    assert validated.code == 1
    assert "notforyoureyes" not in validated.stdout + validated.stderr
    assert validated.stdout.startswith("orgs/x.yaml:1:1: error: the document must be a mapping")
