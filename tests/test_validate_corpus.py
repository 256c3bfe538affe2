"""`validate` over a corpus of policies: every valid one accepted, every invalid one refused.

Each file in tests/corpus/invalid/ holds exactly one problem and says which on its first line:

    # expect: severity=error code=address.host-bits line=12 gist="host bits set" hint="did you mean"

`gist` and `hint` are case-insensitive substrings of the reported message and hint.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from rovo_reconcile.cli import run
from rovo_reconcile.policy.rules import MAX_ENTRIES_PER_APP
from rovo_reconcile.policy.yaml_source import MAX_BYTES, MAX_DEPTH

from .conftest import ROOT, CliRunner

CORPUS = ROOT / "tests" / "corpus"
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
ORG_DUPLICATE = CORPUS / "invalid" / "org-duplicate"

HEADER = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n  id: {org}\n"

# Validator bugs the corpus has found; each test expects the correct behaviour.

# The problem codes the corpus must cover, one file each at least (DESIGN.md section 3).
REQUIRED_CODES = {
    "yaml.anchor",
    "yaml.alias",
    "yaml.merge-key",
    "yaml.tag",
    "yaml.duplicate-key",
    "yaml.documents",
    "yaml.depth",
    "yaml.syntax",
    "yaml.character",
    "file.encoding",
    "schema.empty",
    "schema.required",
    "schema.additionalProperties",
    "schema.type",
    "schema.const",
    "schema.enum",
    "schema.format",
    "schema.pattern",
    "schema.maximum",
    "schema.minItems",
    "domain.no-protocol",
    "domain.http-not-loopback",
    "domain.userinfo",
    "domain.backslash",
    "domain.whitespace",
    "domain.control-character",
    "domain.query",
    "domain.fragment",
    "domain.idna",
    "domain.wildcard-label",
    "domain.wildcard-public-suffix",
    "domain.duplicate",
    "domain.shadowed",
    "address.host-bits",
    "address.ipv6",
    "address.any",
    "address.duplicate",
    "address.netmask",
    "address.leading-zeros",
    "address.non-public",
    "address.overlap",
    "allowlist.duplicate-name",
    "allowlist.enabled-empty",
    "guard.lockout",
    "mcp.api-token-bypass",
}

_EXPECT_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|(\S+))')


@dataclass(frozen=True)
class Expect:
    """The one problem a corpus file declares on its first line."""

    severity: str
    code: str
    line: int
    gist: str
    hint: str | None
    also: frozenset[str] = frozenset()
    """Codes of warnings that come with the problem by nature (an expired entry warns)."""

    @classmethod
    def of(cls, path: Path) -> Expect:
        first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
        assert first.startswith("# expect: "), f"{path.name}: no '# expect:' first line"
        fields = {m[1]: m[2] or m[3] for m in _EXPECT_FIELD.finditer(first)}
        assert fields["severity"] in ("error", "warning"), path.name
        return cls(
            severity=fields["severity"],
            code=fields["code"],
            line=int(fields["line"]),
            gist=fields["gist"],
            hint=fields.get("hint"),
            also=frozenset(fields["also"].split(",")) if "also" in fields else frozenset(),
        )

    @property
    def exit_code(self) -> int:
        return 1 if self.severity == "error" else 0

    def check(self, problem: dict[str, Any]) -> None:
        assert (problem["severity"], problem["code"], problem["line"]) == (
            self.severity,
            self.code,
            self.line,
        ), problem
        assert self.gist.lower() in problem["message"].lower(), problem
        if self.hint is not None:
            assert problem["hint"] is not None, problem
            assert self.hint.lower() in problem["hint"].lower(), problem


def _invalid_params() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in INVALID]


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `rovo-reconcile validate ARGS...` in-process; return the exit code and stdout."""
    code = run(["validate", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out


def validate_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run `validate --format json ARGS...` in-process; return the exit code and the report."""
    code, out = validate(capsys, "--format", "json", *args)
    report: dict[str, Any] = json.loads(out)
    return code, report


def policy(org: str, body: str = "") -> str:
    """A policy document: the required header for `org`, then `body`."""
    return HEADER.format(org=org) + body


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_complete() -> None:
    """The corpus has enough cases and covers every required problem code."""
    assert 3 <= len(VALID) <= 6
    assert len(INVALID) >= 60
    declared = {Expect.of(path).code for path in INVALID}
    assert declared >= REQUIRED_CODES, sorted(REQUIRED_CODES - declared)


@pytest.mark.parametrize("path", _invalid_params())
def test_invalid_case_reports_exactly_its_problem(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each invalid corpus file yields exactly its one declared problem and exit code."""
    expect = Expect.of(path)
    code, report = validate_json(capsys, str(path))
    extras = [p for p in report["problems"] if p["code"] in expect.also]
    assert sorted(p["code"] for p in extras) == sorted(expect.also)
    main = [p for p in report["problems"] if p["code"] not in expect.also]
    assert [p["file"] for p in main] == [str(path)], report["problems"]
    expect.check(main[0])
    assert code == expect.exit_code
    assert report["valid"] is (expect.severity == "warning")
    strict_code, strict_report = validate_json(capsys, "--strict", str(path))
    assert strict_code == 1
    assert strict_report["valid"] is False
    assert strict_report["problems"] == report["problems"]


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_case_has_no_problems_under_strict(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each valid corpus file passes `--strict` with no problem at all."""
    code, report = validate_json(capsys, "--strict", str(path))
    assert report["problems"] == []
    assert report["valid"] is True
    assert code == 0


def test_valid_corpus_at_once_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """The valid corpus as one directory: distinct orgs, no problems, every file read."""
    code, report = validate_json(capsys, "--strict", str(CORPUS / "valid"))
    assert code == 0
    assert report["summary"] == {"files": len(VALID), "errors": 0, "warnings": 0}


def test_whole_invalid_corpus_reports_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    """All invalid files in one run: each file's problem is reported, none dropped."""
    code, report = validate_json(capsys, str(CORPUS / "invalid"))
    assert code == 1
    with_problems = {p["file"] for p in report["problems"]}
    expected = {str(p) for p in INVALID} | {str(ORG_DUPLICATE / "b-second.yaml")}
    assert expected <= with_problems
    assert report["summary"]["files"] == len(INVALID) + 2


def test_duplicate_org_across_two_files(capsys: pytest.CaptureFixture[str]) -> None:
    """Two files governing one organization: the second is refused, naming the first."""
    second = ORG_DUPLICATE / "b-second.yaml"
    expect = Expect.of(second)
    code, report = validate_json(capsys, str(ORG_DUPLICATE))
    assert code == 1
    assert [p["file"] for p in report["problems"]] == [str(second)]
    expect.check(report["problems"][0])
    assert f"{ORG_DUPLICATE / 'a-first.yaml'}:5" in report["problems"][0]["message"]


def test_zero_byte_file_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A zero-byte file is refused as empty at 1:1."""
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    code, report = validate_json(capsys, str(path))
    assert code == 1
    [problem] = report["problems"]
    assert (problem["code"], problem["line"], problem["column"]) == ("schema.empty", 1, 1)


def _allowlists(counts: list[int]) -> tuple[str, list[int]]:
    """Enabled allowlists covering jira with `counts` distinct public /24s; and their lines."""
    lines: list[str] = ["ipAllowlists:"]
    address_lines: list[int] = []
    block = 0
    for index, count in enumerate(counts):
        lines += [f"  - name: List {index}", "    enabled: true"]
        lines += ["    apps: [jira, confluence]" if index == 0 else "    apps: [jira]"]
        lines += ["    addresses:"]
        for _ in range(count):
            lines.append(f"      - 52.{16 + block // 256}.{block % 256}.0/24")
            address_lines.append(len(lines) + 4)  # the 4 header lines come first
            block += 1
    return "\n".join(lines) + "\n", address_lines


def test_more_than_500_entries_for_one_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """501 entries over the allowlists covering jira: one error, at the 501st entry."""
    body, address_lines = _allowlists([300, MAX_ENTRIES_PER_APP + 1 - 300])
    path = tmp_path / "many.yaml"
    path.write_text(policy("many", body), encoding="utf-8")
    code, report = validate_json(capsys, str(path))
    assert code == 1
    [problem] = report["problems"]
    assert problem["code"] == "allowlist.app-limit"
    assert problem["line"] == address_lines[MAX_ENTRIES_PER_APP]
    assert "more than 500 entries" in problem["message"]
    assert "jira" in problem["message"]
    assert "confluence" not in problem["message"]


def test_exactly_500_entries_for_one_app_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """500 entries over the allowlists covering jira are within the limit."""
    body, _ = _allowlists([300, MAX_ENTRIES_PER_APP - 300])
    path = tmp_path / "many.yaml"
    path.write_text(policy("many", body), encoding="utf-8")
    code, report = validate_json(capsys, "--strict", str(path))
    assert report["problems"] == []
    assert code == 0


# --------------------------------------------------------------------------- the report


MULTI = """\
mcp:
  domains:
    - https://*.com/**
    - http://app.example-corp.com/**
ipAllowlists:
  - name: Office
    enabled: true
    apps: [jira]
    addresses:
      - 10.0.0.1/8
      - 192.168.0.0/16
guards:
  mustAllow: [52.14.0.1]
"""


def test_json_problems_sorted_by_file_line_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several files with several problems, given out of order: all reported, sorted."""
    multi = tmp_path / "multi.yaml"
    multi.write_text(policy("multi", MULTI), encoding="utf-8")
    names = ["yaml-anchor", "address-overlap", "schema-unknown-app", "domain-query"]
    paths = [str(multi), *(str(CORPUS / "invalid" / f"{n}.yaml") for n in names)]
    code, report = validate_json(capsys, *reversed(paths))
    assert code == 1
    problems = report["problems"]
    keys = [(p["file"], p["line"], p["column"]) for p in problems]
    assert keys == sorted(keys)
    assert {p["file"] for p in problems} == set(paths)
    assert [(p["line"], p["code"]) for p in problems if p["file"] == str(multi)] == [
        (7, "domain.wildcard-public-suffix"),
        (8, "domain.http-not-loopback"),
        (14, "address.host-bits"),
        (15, "address.non-public"),
        (17, "guard.lockout"),
    ]
    errors = sum(p["severity"] == "error" for p in problems)
    assert report["summary"] == {
        "files": len(paths),
        "errors": errors,
        "warnings": len(problems) - errors,
    }
    assert sorted(f["file"] for f in report["files"]) == sorted(paths)


def test_text_report_has_position_severity_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """Text: `file:line:column: error: message [code]`, then an indented `hint:` line."""
    path = CORPUS / "invalid" / "address-host-bits.yaml"
    code, out = validate(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{path}:12:9: error: '10.0.0.1/8' has host bits set [address.host-bits]"
    assert lines[1] == "    hint: did you mean 10.0.0.0/8?"
    assert lines[-1] == "1 policy file checked: invalid (1 error, 0 warnings)"


def test_text_report_shows_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """Text: a warning-only file says `warning:` and stays valid."""
    path = CORPUS / "invalid" / "address-non-public.yaml"
    code, out = validate(capsys, str(path))
    assert code == 0
    assert re.match(rf"{re.escape(str(path))}:12:\d+: warning: 192\.168\.1\.0/24 ", out)
    assert out.endswith("1 policy file checked: valid (0 errors, 1 warning)\n")


def test_github_report_prints_workflow_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """GitHub: one `::error file=...,line=...,col=...::` command per problem, hint appended."""
    error = CORPUS / "invalid" / "address-host-bits.yaml"
    warning = CORPUS / "invalid" / "address-non-public.yaml"
    code, out = validate(capsys, "--format", "github", str(error), str(warning))
    assert code == 1
    lines = out.splitlines()
    escaped = str(error).replace(":", "%3A").replace(",", "%2C")
    assert lines[0] == (
        f"::error file={escaped},line=12,col=9,title=address.host-bits::"
        "'10.0.0.1/8' has host bits set (hint: did you mean 10.0.0.0/8?)"
    )
    assert re.fullmatch(
        r"::warning file=[^,]+,line=12,col=9,title=address\.non-public::.+", lines[1]
    )
    assert lines[2] == "2 policy files checked: invalid (1 error, 1 warning)"


def test_github_report_escapes_properties_and_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub: `%`, `,` and `:` are escaped in properties, `%` in the message."""
    weird = tmp_path / "we%ird,na:me.yaml"
    weird.write_text(
        policy("weird", "mcp:\n  domains:\n    - https://a%20b.example-corp.com/**\n"),
        encoding="utf-8",
    )
    code, out = validate(capsys, "--format", "github", str(weird))
    assert code == 1
    command = out.splitlines()[0]
    head, _, data = command.partition("::")[2].partition("::")
    props = dict(item.split("=", 1) for item in head.removeprefix("error ").split(","))
    assert props["file"].endswith("we%25ird%2Cna%3Ame.yaml")
    assert props["file"] == (str(weird).replace("%", "%25").replace(":", "%3A").replace(",", "%2C"))
    assert (props["line"], props["col"], props["title"]) == ("7", "7", "domain.idna")
    assert "a%2520b.example-corp.com" in data
    assert "%20" not in data.replace("%2520", "")


SNAPSHOT_FILES = [
    "tests/corpus/invalid/address-host-bits.yaml",
    "tests/corpus/invalid/domain-shadowed.yaml",
    "tests/corpus/invalid/yaml-duplicate-key.yaml",
]


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_report_snapshot(
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    snapshot: SnapshotAssertion,
) -> None:
    """The text, json and github renderings of one report over three corpus files."""
    monkeypatch.chdir(ROOT)
    code, out = validate(capsys, "--format", fmt, *SNAPSHOT_FILES)
    assert code == 1
    assert out == snapshot


# --------------------------------------------------------------------------- YAML safety


def _bomb() -> str:
    levels = [f"  l0: &l0 {'lol' * 8}"]
    for i in range(1, 10):
        levels.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n" + "\n".join(levels) + "\n"


def _alias_only_bomb() -> str:
    items = ", ".join(["*lol"] * 100_000)
    return f"apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n  name: [{items}]\n"


def _block_mappings(depth: int) -> str:
    # One space of indentation per level: the deepest block mapping that fits in 1 MiB is
    # about 1,400 levels, so 10,000 levels of block mappings can only be refused as too large.
    return "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "end\n"


SAFETY_CASES: dict[str, tuple[str, str, int]] = {
    # name: (text, code, line)
    "billion-laughs": (_bomb(), "yaml.anchor", 4),
    "alias-bomb-without-anchor": (_alias_only_bomb(), "yaml.alias", 4),
    "one-mib-plus-one-byte": ("#" * MAX_BYTES + "\n", "file.too-large", 1),
    "flow-sequences-10000-deep": ("org: " + "[" * 10_000 + "]" * 10_000 + "\n", "yaml.depth", 1),
    "flow-mappings-10000-deep": (
        "org: " + "{a: " * 10_000 + "b" + "}" * 10_000 + "\n",
        "yaml.depth",
        1,
    ),
    "block-sequences-10000-deep": ("org:\n" + "- " * 10_000 + "end\n", "yaml.depth", 2),
    "block-mappings-1000-deep": (_block_mappings(1000), "yaml.depth", MAX_DEPTH + 1),
    "block-mappings-10000-deep": (_block_mappings(10_000), "file.too-large", 1),
}


@pytest.mark.parametrize("name", list(SAFETY_CASES))
def test_yaml_safety_case_is_refused_fast(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alias bombs, oversized files and deep nesting: one clear error in under a second."""
    text, expected_code, expected_line = SAFETY_CASES[name]
    warm = tmp_path / "warm.yaml"
    warm.write_text(policy("warm"), encoding="utf-8")
    validate_json(capsys, str(warm))  # imports are not what this measures
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    code, report = validate_json(capsys, str(path))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{name} took {elapsed:.2f} s"
    assert code == 1
    [problem] = report["problems"]
    assert (problem["code"], problem["line"]) == (expected_code, expected_line), problem
    if expected_code == "yaml.depth":
        assert f"deeper than {MAX_DEPTH} levels" in problem["message"]
    if expected_code == "file.too-large":
        assert "larger than 1 MiB" in problem["message"]


def test_exactly_one_mib_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file of exactly 1 MiB is not refused for its size."""
    path = tmp_path / "big.yaml"
    head = policy("big")
    path.write_text(head + "#" * (MAX_BYTES - len(head) - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == MAX_BYTES
    code, report = validate_json(capsys, str(path))
    assert report["problems"] == []
    assert code == 0


# --------------------------------------------------------------------------- end to end


def test_e2e_broken_policy_names_file_and_line(cli: CliRunner) -> None:
    """The real CLI: exit 1, `file:line:` in stdout, no traceback anywhere."""
    result = cli("validate", "tests/corpus/invalid/address-host-bits.yaml", cwd=ROOT)
    assert result.code == 1
    assert "tests/corpus/invalid/address-host-bits.yaml:12:9: error:" in result.stdout
    assert "hint: did you mean 10.0.0.0/8?" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_e2e_whole_corpus_without_traceback(cli: CliRunner) -> None:
    """The real CLI over the whole corpus: a report, exit 1, no traceback, no stderr."""
    result = cli("validate", "tests/corpus", cwd=ROOT)
    assert result.code == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    assert f"{len(VALID) + len(INVALID) + 2} policy files checked: invalid" in result.stdout


def test_e2e_github_format(cli: CliRunner) -> None:
    """The real CLI with --format github prints workflow commands."""
    result = cli(
        "validate", "--format", "github", "tests/corpus/invalid/yaml-anchor.yaml", cwd=ROOT
    )
    assert result.code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(
        "::error file=tests/corpus/invalid/yaml-anchor.yaml,line=4,col=6,title=yaml.anchor::"
    )


def test_e2e_directory_is_searched_recursively(cli: CliRunner, tmp_path: Path) -> None:
    """A directory: *.yaml and *.yml found at any depth, hidden directories and others skipped."""
    root = tmp_path / "policies"
    deep = root / "team-a" / "nested" / "deeper"
    deep.mkdir(parents=True)
    shutil.copy(CORPUS / "valid" / "minimal.yaml", root / "minimal.yaml")
    shutil.copy(CORPUS / "valid" / "allowlists.yaml", root / "team-a" / "allowlists.yml")
    shutil.copy(CORPUS / "invalid" / "address-host-bits.yaml", deep / "broken.yaml")
    hidden = root / ".git"
    hidden.mkdir()
    shutil.copy(CORPUS / "invalid" / "yaml-anchor.yaml", hidden / "ignored.yaml")
    (root / "README.md").write_text("not a policy: [\n", encoding="utf-8")
    result = cli("validate", "policies", cwd=tmp_path)
    assert result.code == 1
    assert "policies/team-a/nested/deeper/broken.yaml:12:9: error:" in result.stdout
    assert "ignored.yaml" not in result.stdout
    assert result.stdout.endswith("3 policy files checked: invalid (1 error, 0 warnings)\n")
