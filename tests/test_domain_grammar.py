"""Issue 10: the domain grammar Atlassian documents ("cover multiple domains, subdomains,
ports, or paths" with wildcards or braces; HTTP, HTTPS and protocol-specific rows).

One table of cases, each either accepted (with its canonical form), accepted with a
warning (its code), or refused (its code, message and file:line:column through the real
CLI). Then shadowing over the new forms, the manual step that shows a pattern as written,
and the round trip through the sandbox and the emulator: what a policy says, created live
either by apply or by hand, plans to no changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.clickpath import MCP_PAGE, manual_steps
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.plan_json import dump_plan, load_plan
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.policy.normalize import (
    MAX_ALTERNATIVES,
    _canonical_brace_host,
    _canonical_host,
    _parse_domain_exact,
    domain_warnings,
    find_shadowing,
    normalize_domain,
    parse_domain,
    pattern_covers,
)

from .conftest import TODAY, CliRunner
from .emulator_fixture import admin_emulator, ui_adds_domain

# --------------------------------------------------------------------------- the table

ACCEPTED = [  # (as written, canonical)
    # private-use redirect schemes (RFC 8252 section 7.1), and protocol-specific rows
    ("com.example.app:/oauth2redirect", "com.example.app:/oauth2redirect"),
    ("Com.Example.App:/OAuth2Redirect", "com.example.app:/OAuth2Redirect"),
    ("vscode:/callback", "vscode:/callback"),
    ("com.example.app:/cb/{b,a}", "com.example.app:/cb/{a,b}"),
    ("com.example.app:/", "com.example.app:/"),
    (
        "vscode://vscode.github-authentication/did-authenticate",
        "vscode://vscode.github-authentication/did-authenticate",
    ),
    (
        "cursor://Anysphere.Cursor-Mcp/oauth/callback",
        "cursor://anysphere.cursor-mcp/oauth/callback",
    ),
    # braces across labels, whole hosts, TLDs and ports
    ("https://{example.org,example.com}/**", "https://{example.com,example.org}/**"),
    ("https://{b,a,b}.example.com/**", "https://{a,b}.example.com/**"),
    ("https://{a.example.com,B.example.com}/**", "https://{a,b}.example.com/**"),
    ("https://app.example.{com,org}/**", "https://{app.example.com,app.example.org}/**"),
    ("https://app.{eu,us}.example.com/**", "https://{app.eu,app.us}.example.com/**"),
    ("https://app-{eu,us}.example.com/**", "https://{app-eu,app-us}.example.com/**"),
    ("https://app{,-eu}.example.com/**", "https://{app,app-eu}.example.com/**"),
    ("https://{*,app}.example.com/**", "https://{*,app}.example.com/**"),
    ("https://{app}.example.com/**", "https://app.example.com/**"),
    ("https://{bücher,shop}.example/**", "https://{shop,xn--bcher-kva}.example/**"),
    ("https://app.example.com:{8443,8080}/**", "https://app.example.com:{8080,8443}/**"),
    ("https://app.example.com:{443,08443}/**", "https://app.example.com:{443,8443}/**"),
    ("https://app.example.com:{443}/x", "https://app.example.com/x"),
    ("https://{a,b}.example.com:{2,1}/**", "https://{a,b}.example.com:{1,2}/**"),
    ("http://{localhost,127.0.0.1}:*/**", "http://{127.0.0.1,localhost}:*/**"),
    # one origin, with or without its slash
    ("https://example.com/", "https://example.com"),
    ("HTTPS://Example.com:443/", "https://example.com"),
    ("http://127.0.0.1:6274/", "http://127.0.0.1:6274"),
    ("wss://mcp.example.com:443/", "wss://mcp.example.com"),
    ("vscode://callback.example/", "vscode://callback.example/"),  # not a web URL: kept
]

WARNED = [  # (as written, canonical, code, gist of the message)
    (
        "http://mcp.example.com/cb",
        "http://mcp.example.com/cb",
        "domain.http-not-loopback",
        "plain http to 'mcp.example.com' is not encrypted",
    ),
    (
        "http://{localhost,mcp.example.com}:8080/",
        "http://{localhost,mcp.example.com}:8080",
        "domain.http-not-loopback",
        "plain http to 'mcp.example.com' is not encrypted",
    ),
    ("ftp://files.example.com/**", "ftp://files.example.com/**", "domain.non-web-scheme", "ftp:"),
    ("mailto:/security", "mailto:/security", "domain.non-web-scheme", "mailto:"),
]

_GROUPS = "{a,b}" * 7  # 128 hosts
_NESTED = "{" * 300 + "a" + "}" * 300

REFUSED = [  # (as written, code, gist of the message, part of the hint or None)
    ("javascript:alert(1)", "domain.script-scheme", "javascript: URLs run code", "https://"),
    ("data:text/html,x", "domain.script-scheme", "data: URLs run code", None),
    ("vbscript:msgbox", "domain.script-scheme", "vbscript: URLs run code", None),
    ("mailto:security@example.com", "domain.opaque", "names neither a host", "https://"),
    ("urn:ietf:wg:oauth:2.0:oob", "domain.opaque", "names neither a host", "https://"),
    ("com.example.app:oauth2redirect", "domain.opaque", "nor a path", "com.example.app:/path"),
    ("https:/app.example.com/cb", "domain.no-host", "has no host", "https://app.example.com/cb"),
    ("https:app.example.com", "domain.no-host", "has no host", "https://app.example.com?"),
    ("C:/Users/me/callback", "domain.file-path", "is a Windows file path", None),
    ("app.example.com/**", "domain.no-protocol", "has no protocol", "https://app.example.com"),
    ("localhost:3000/callback", "domain.no-protocol", "has no protocol", "https://localhost:3000"),
    ("https://{app,}.example.com/**", "domain.braces", "has an empty label", None),
    ("https://{a.example.com:1,b.example.com}/", "domain.braces", "hosts or for ports", None),
    ("https://{a,b.example.com/**", "domain.braces", "unbalanced braces", None),
    (f"https://{_GROUPS}.example.com/**", "domain.braces-too-many", "more than 64 hosts", None),
    (f"https://{_NESTED}.example.com/", "domain.braces-too-many", "more than 64 hosts", None),
    (
        "https://{a,b,c,d,e,f,g,h}.example.com:{1,2,3,4,5,6,7,8,9}/**",
        "domain.braces-too-many",
        "more than 64 host and port combinations",
        "split the pattern",
    ),
    ("https://app.example.com:{*,8080}/**", "domain.bad-port", ":* alone", ":{8080,8443}"),
    ("https://app.example.com:{8080,x}/**", "domain.bad-port", "'x' is not a port", None),
    ("https://{*,app}.com/**", "domain.wildcard-public-suffix", "*.com would match", None),
    ("ws://mcp.example.com/**", "domain.ws-not-loopback", "plain ws", "wss://"),
]


@pytest.mark.parametrize(("written", "canonical"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_patterns_have_one_canonical_form(written: str, canonical: str) -> None:
    """Accepted, with no warning, as its canonical form, which is its own canonical form."""
    pattern = parse_domain(written)
    assert str(pattern) == canonical
    assert normalize_domain(canonical) == canonical
    assert domain_warnings(pattern) == []


@pytest.mark.parametrize(
    ("written", "canonical", "code", "gist"), WARNED, ids=[c[0] for c in WARNED]
)
def test_warned_patterns_are_accepted_with_their_warning(
    written: str, canonical: str, code: str, gist: str
) -> None:
    """Accepted as canonical, with exactly one warning of that code."""
    pattern = parse_domain(written)
    assert str(pattern) == canonical
    [warning] = domain_warnings(pattern)
    assert (warning.code, gist in warning.message) == (code, True), warning.message


def _policy_text(org: str, patterns: list[str]) -> str:
    lines = ["apiVersion: rovo-reconcile/v1", "kind: OrgPolicy", "org:", f"  id: {org}", "mcp:"]
    lines.append("  domains:")
    lines += [f"    - {json.dumps(p, ensure_ascii=False)}" for p in patterns]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def table_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every case of the table in a file of its own, its pattern on line 7, validated by
    one run of the real CLI; the problems by file."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("grammar")
    cases = [c[0] for c in ACCEPTED] + [c[0] for c in WARNED] + [c[0] for c in REFUSED]
    for number, written in enumerate(cases):
        (folder / f"case{number:03}.yaml").write_text(
            _policy_text(f"grammar-{number}", [written]), encoding="utf-8"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile", "validate", "--format", "json", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ROVO_RECONCILE_NOW": TODAY},
    )
    assert proc.returncode == 1, proc.stderr  # the refused cases are errors
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["files"] == len(cases)
    by_case: dict[str, list[dict[str, Any]]] = {written: [] for written in cases}
    for problem in report["problems"]:
        number = int(Path(problem["file"]).stem.removeprefix("case"))
        by_case[cases[number]].append(problem)
    return by_case


@pytest.mark.parametrize("written", [c[0] for c in ACCEPTED])
def test_cli_accepts_without_a_problem(
    written: str, table_report: dict[str, list[dict[str, Any]]]
) -> None:
    assert table_report[written] == []


@pytest.mark.parametrize(
    ("written", "code", "gist"), [(c[0], c[2], c[3]) for c in WARNED], ids=[c[0] for c in WARNED]
)
def test_cli_warns_at_the_pattern(
    written: str, code: str, gist: str, table_report: dict[str, list[dict[str, Any]]]
) -> None:
    [problem] = table_report[written]
    assert (problem["severity"], problem["code"], problem["line"], problem["column"]) == (
        "warning",
        code,
        7,
        7,
    )
    assert gist in problem["message"]


@pytest.mark.parametrize(("written", "code", "gist", "hint"), REFUSED, ids=[c[1] for c in REFUSED])
def test_cli_refuses_with_a_true_reason_at_the_pattern(
    written: str,
    code: str,
    gist: str,
    hint: str | None,
    table_report: dict[str, list[dict[str, Any]]],
) -> None:
    [problem] = table_report[written]
    assert (problem["severity"], problem["code"], problem["line"], problem["column"]) == (
        "error",
        code,
        7,
        7,
    )
    assert gist in problem["message"]
    assert "has no protocol" not in problem["message"] or code == "domain.no-protocol"
    if hint is not None:
        assert hint in (problem["hint"] or ""), problem


def test_text_report_names_file_line_and_column(cli: CliRunner, tmp_path: Path) -> None:
    """The text report of a private-use pattern without its slash: position, reason, hint."""
    path = tmp_path / "opaque.yaml"
    path.write_text(_policy_text("opaque", ["com.example.app:oauth2redirect"]), "utf-8")
    result = cli("validate", str(path))
    assert result.code == 1
    assert result.stdout.splitlines()[:2] == [
        f"{path}:7:7: error: 'com.example.app:oauth2redirect' names neither a host "
        "(com.example.app://host/...) nor a path (com.example.app:/...), so no sign-in "
        "redirect can match it [domain.opaque]",
        "    hint: an app's private-use scheme is written com.example.app:/path (RFC 8252)",
    ]


def test_http_to_a_remote_host_is_valid_unless_strict(cli: CliRunner, tmp_path: Path) -> None:
    """Atlassian's own list has HTTP rows: a warning (exit 0), an error only under --strict;
    loopback http has no warning at all."""
    path = tmp_path / "http.yaml"
    path.write_text(
        _policy_text("http", ["http://127.0.0.1:*/**", "http://mcp.example.com/cb"]), "utf-8"
    )
    plain = cli("validate", str(path))
    assert plain.code == 0, plain.stdout
    assert plain.stdout.count("warning:") == 1
    assert f"{path}:8:7: warning: plain http to 'mcp.example.com'" in plain.stdout
    assert "hint: use https://mcp.example.com/cb" in plain.stdout
    assert cli("validate", "--strict", str(path)).code == 1


# --------------------------------------------------------------------------- properties

_SCHEMES = st.sampled_from(["https", "HTTP", "wss", "vscode", "com.example.app", "ftp"])
_LABELS = st.sampled_from(["a", "b", "app", "*", "example", "com", "org", "bücher", "1"])
_HOST_PART = st.one_of(
    _LABELS,
    st.lists(_LABELS, min_size=1, max_size=3).map(lambda ls: "{" + ",".join(ls) + "}"),
    st.lists(_LABELS, min_size=1, max_size=3).map(
        lambda ls: "{" + ",".join(f"{x}.example.com" for x in ls) + "}"
    ),
)
_HOSTS = st.lists(_HOST_PART, min_size=1, max_size=4).map(".".join)
_PORTS = st.sampled_from(["", ":443", ":8080", ":*", ":{80,443}", ":{8443,8080,8443}", ":{1}"])
_PATHS = st.sampled_from(["", "/", "/**", "/cb", "/{b,a}/**", "/x/*"])
_AUTHORITY_FORM = st.builds(lambda s, h, p, x: f"{s}://{h}{p}{x}", _SCHEMES, _HOSTS, _PORTS, _PATHS)
_PATH_FORM = st.builds(lambda s, x: f"{s}:/{x.lstrip('/')}", _SCHEMES, _PATHS)
_PATTERNS = st.one_of(_AUTHORITY_FORM, _PATH_FORM)


def _outcome(parse: Any, text: str) -> object:
    try:
        return parse(text)
    except NormalizeError as e:
        return (e.code, e.message, e.hint)


@settings(max_examples=600, deadline=None)
@given(_PATTERNS)
def test_new_forms_normalise_idempotently_and_fast_path_agrees(text: str) -> None:
    """Either a coded refusal or a canonical form that maps to itself; the fast path for
    plain https gives what the exact parse gives."""
    outcome = _outcome(parse_domain, text)
    assert outcome == _outcome(_parse_domain_exact, text)
    if isinstance(outcome, tuple):
        return
    canonical = str(outcome)
    assert parse_domain(canonical) == outcome
    assert str(parse_domain(canonical)) == canonical


_CLOSE_PATTERNS = st.one_of(
    st.builds(
        lambda s, h, p, x: f"{s}://{h}{p}{x}",
        st.sampled_from(["https", "vscode"]),
        st.sampled_from(
            [
                "a.example.com",
                "*.example.com",
                "{a,b}.example.com",
                "{a.example.com,example.org}",
                "example.org",
                "{*,x}.example.com",
            ]
        ),
        st.sampled_from(["", ":443", ":8080", ":*", ":{8080,8443}", ":{443,8080}"]),
        st.sampled_from(["", "/", "/**", "/a", "/a/**", "/*", "/{a,b}/**"]),
    ),
    st.builds(
        lambda s, x: f"{s}:{x}",
        st.sampled_from(["vscode", "com.example.app"]),
        st.sampled_from(["/", "/**", "/a", "/a/**", "/*", "/{a,b}/**"]),
    ),
)


_FRONT_GROUPS = st.builds(
    lambda labels, rest: "{" + ",".join(labels) + "}." + rest,
    st.lists(
        st.one_of(
            # [a-z0-9-]{1,6}, drawn as text (from_regex is several times dearer to draw)
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=6),
            st.sampled_from(["xn--bcher-kva", "ab--c", "a" * 64, "255", "*", "A", "b.c"]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["example.com", "1.2.3", "2.3.4", "com", "a..b", "x" * 250, "EXAMPLE.com"]),
)


@settings(max_examples=500, deadline=None)
@given(_FRONT_GROUPS)
def test_front_group_route_is_the_general_brace_host(host: str) -> None:
    """`{app,api}.example.com`, built directly, is what spelling the hosts out gives."""
    assert _outcome(_canonical_host, host) == _outcome(_canonical_brace_host, host)


@settings(max_examples=400, deadline=None)
@given(st.lists(_CLOSE_PATTERNS, min_size=1, max_size=8))
def test_shadowing_index_finds_what_all_pairs_find(texts: list[str]) -> None:
    """The indexed shadowing check reports exactly the pairs a plain all-pairs check does,
    over brace hosts, port groups and private-use patterns."""
    patterns = []
    for text in texts:
        try:
            patterns.append(parse_domain(text))
        except NormalizeError:
            continue
    expected = {}
    for j, narrow in enumerate(patterns):
        for i, broad in enumerate(patterns):
            if i != j and pattern_covers(broad, narrow):
                expected[j] = i
                break
    found = find_shadowing(patterns)
    assert found.complete
    assert found.covered_by == expected


# --------------------------------------------------------------------------- shadowing


@pytest.mark.parametrize(
    ("broad", "narrow", "covered"),
    [
        ("https://host.example.com/**", "https://host.example.com", True),
        ("https://host.example.com/**", "https://host.example.com/", True),
        ("https://host.example.com/*", "https://host.example.com", True),
        ("https://*.example.com/**", "https://{a,b}.example.com/**", True),
        ("https://{example.com,example.org}/**", "https://example.org/cb", True),
        ("https://{example.com,example.org}/**", "https://{example.org,example.net}/cb", False),
        ("https://app.example.com:{8080,8443}/**", "https://app.example.com:8080/x", True),
        ("https://app.example.com:{8080,8443}/**", "https://app.example.com:9090/x", False),
        ("https://app.example.com:{8080,8443}/**", "https://app.example.com:*/x", False),
        ("https://app.example.com:*/**", "https://app.example.com:{8080,8443}/x", True),
        ("https://app.example.com:{443,8443}/**", "https://app.example.com/x", True),
        ("com.example.app:/**", "com.example.app:/oauth2redirect", True),
        ("com.example.app:/**", "com.example.other:/oauth2redirect", False),
        ("vscode://callback.example/**", "vscode:/callback", False),
    ],
)
def test_coverage_over_the_new_forms(broad: str, narrow: str, covered: bool) -> None:
    assert pattern_covers(parse_domain(broad), parse_domain(narrow)) is covered


@pytest.mark.parametrize("origin", ["https://host.example.com", "https://host.example.com/"])
def test_origin_with_or_without_slash_is_shadowed_by_all_paths(
    origin: str, cli: CliRunner, tmp_path: Path
) -> None:
    """Both spellings of one origin are reported as already allowed by `/**`."""
    path = tmp_path / "origin.yaml"
    path.write_text(_policy_text("origin", ["https://host.example.com/**", origin]), "utf-8")
    result = cli("validate", "--format", "json", str(path))
    assert result.code == 0, result.stdout
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["code"], problem["line"]) == ("domain.shadowed", 8)
    assert problem["message"] == (
        "https://host.example.com is already allowed by https://host.example.com/** (line 7)"
    )


def test_origin_with_and_without_slash_is_one_pattern(cli: CliRunner, tmp_path: Path) -> None:
    """`https://host` and `https://host/` are the same URL: listing both is a duplicate."""
    path = tmp_path / "twice.yaml"
    path.write_text(
        _policy_text("twice", ["https://host.example.com", "https://host.example.com/"])
    )
    result = cli("validate", "--format", "json", str(path))
    assert result.code == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["code"], problem["line"], problem["column"]) == ("domain.duplicate", 8, 7)


def test_hostile_braces_are_refused_without_spelling_them_out() -> None:
    """Braces that would stand for 2**400 hosts, within the schema's 2,000 characters: the
    expansion stops at the cap."""
    text = "https://" + "{a,b}" * 390 + ".example.com/"
    assert len(text) <= 2000
    with pytest.raises(NormalizeError) as info:
        parse_domain(text)
    assert info.value.code == "domain.braces-too-many"
    assert f"more than {MAX_ALTERNATIVES} hosts" in info.value.message


# --------------------------------------------------------------------------- as written, live


ROUND_TRIP = [
    "com.example.app:/oauth2redirect",
    "Com.Example.Tool:/cb/{b,a}",
    "vscode:/callback",
    "https://{example.org,example.com}/**",
    "https://app.example.net:{8443,8080}/**",
    "https://{b,a}.example.net/**",
    "https://app.{example.io,example.dev}/mcp/**",
    "https://tool.example.com/",
    "http://mcp.example.org/cb",
    "https://{bücher,shop}.example/**",
]


def test_round_trip_table_is_distinct() -> None:
    assert len({normalize_domain(p) for p in ROUND_TRIP}) == len(ROUND_TRIP)


def _manual(pattern: str) -> str:
    return f"manual: {MCP_PAGE} > Add domain: {pattern}"


def test_plan_shows_each_pattern_as_written_then_apply_converges(
    cli: CliRunner, tmp_path: Path
) -> None:
    """On the sandbox: the plan's manual step shows each pattern exactly as written (text,
    Markdown, JSON), apply creates them, and the next plan has no changes."""
    policy = tmp_path / "grammar.yaml"
    policy.write_text(_policy_text("grammar-round-trip", ROUND_TRIP), encoding="utf-8")
    text = cli("plan", str(policy), "--detailed-exitcode")
    assert text.code == 2, text.stdout + text.stderr
    markdown = cli("plan", str(policy), "--format", "markdown")
    saved = tmp_path / "plan.json"
    assert cli("plan", str(policy), "--out", str(saved)).code == 0
    changes = json.loads(saved.read_text("utf-8"))["orgs"][0]["changes"]
    for written in ROUND_TRIP:
        canonical = normalize_domain(written)
        assert _manual(written) in text.stdout
        assert f"mcp.domain {canonical}" in text.stdout
        assert f"Add domain: {written}" in markdown.stdout
        [change] = [c for c in changes if c["after"] == canonical]
        assert change.get("written") == (None if written == canonical else written)
    applied = cli("apply", "--plan", str(saved))
    assert applied.code == 0, applied.stdout + applied.stderr
    again = cli("plan", str(policy), "--detailed-exitcode")
    assert again.code == 0, again.stdout + again.stderr
    show = cli("show", "--org", "grammar-round-trip", "--format", "json")
    assert show.code == 0, show.stderr
    assert sorted(json.loads(show.stdout)["mcp"]["domains"]) == sorted(
        normalize_domain(p) for p in ROUND_TRIP
    )


def test_patterns_added_by_hand_as_written_plan_to_no_changes(
    cli: CliRunner, tmp_path: Path
) -> None:
    """A colleague types each pattern into Atlassian Administration as the policy writes it
    (the emulator keeps the string as sent): the policy then plans to no changes."""
    key = "grammar-key"
    policy = tmp_path / "grammar.yaml"
    policy.write_text(_policy_text("grammar-by-hand", ROUND_TRIP), encoding="utf-8")
    with admin_emulator(tmp_path, key) as emu:
        for written in ROUND_TRIP:
            ui_adds_domain(emu, key, "grammar-by-hand", written)
        result = cli(
            "plan",
            str(policy),
            "--api-url",
            emu.url,
            "--detailed-exitcode",
            env={"ATLASSIAN_ADMIN_API_KEY": key},
        )
    assert result.code == 0, result.stdout + result.stderr
    assert "kept as it is" not in result.stderr  # every live pattern normalised


def test_manual_steps_list_the_patterns_as_written(tmp_path: Path) -> None:
    """When MCP cannot be read at all, the steps list the patterns as the policy writes them."""
    from datetime import date

    path = tmp_path / "steps.yaml"
    path.write_text(_policy_text("steps", ["HTTPS://App.Example.com/", "vscode:/cb"]), "utf-8")
    loaded = load_policies([str(path)], date.fromisoformat(TODAY))
    [policy] = loaded.policies
    assert policy.policy.mcp is not None
    [*_, domains] = manual_steps(policy.policy.mcp)
    assert domains.endswith("adding and deleting as needed: HTTPS://App.Example.com/, vscode:/cb")


def test_saved_plan_keeps_the_written_spelling(cli: CliRunner, tmp_path: Path) -> None:
    """A plan file carries the spelling, so `apply --plan` shows the same manual step."""
    policy = tmp_path / "saved.yaml"
    policy.write_text(_policy_text("saved", ["HTTPS://App.Example.com/"]), "utf-8")
    saved = tmp_path / "plan.json"
    assert cli("plan", str(policy), "--out", str(saved)).code == 0
    plan = load_plan(saved.read_text("utf-8"), str(saved))
    [change] = plan.orgs[0].changes
    assert (change.after, change.written) == ("https://app.example.com", "HTTPS://App.Example.com/")
    assert dump_plan(plan) == saved.read_text("utf-8")
