"""Issue 11 item 5: the shadowing check decides glob coverage without backtracking, and
compares only plausible pairs, so no policy under 1 MiB can make `validate` hang.

No timed assertions: the two end-to-end cases run the real CLI in a subprocess whose bound
(the `cli` fixture's) the old check overran by hours; `bench/shadowing.py` prints the times.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.cli import run
from rovo_reconcile.policy import normalize
from rovo_reconcile.policy.normalize import (
    DomainPattern,
    find_shadowing,
    parse_domain,
    pattern_covers,
)

from .conftest import CliRunner

HEADER = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n  id: {org}\nmcp:\n  domains:\n"


def _policy(path: Path, domains: list[str]) -> Path:
    path.write_text(
        HEADER.format(org=path.stem) + "".join(f"    - {d}\n" for d in domains), encoding="utf-8"
    )
    return path


def _validate_json(cli: CliRunner, path: Path) -> tuple[int, dict[str, object]]:
    result = cli("validate", "--format", "json", str(path))
    assert "Traceback" not in result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return result.code, report


# --------------------------------------------------------------------------- the cases


def test_backtracking_pair_is_decided_at_once(cli: CliRunner, tmp_path: Path) -> None:
    """`/**a**a**a**a**a**a**a**ab` beside `/aaa...a` (80 a's): the old regex backtracked for
    about half an hour; now it is one pass, and the answer is right (not covered)."""
    path = _policy(
        tmp_path / "backtrack.yaml",
        ["https://example.com/" + "**a" * 8 + "b", "https://example.com/" + "a" * 80],
    )
    code, report = _validate_json(cli, path)
    assert code == 0
    assert report["problems"] == []


def test_twenty_thousand_domains_are_checked(cli: CliRunner, tmp_path: Path) -> None:
    """20,000 domains under 1 MiB (4,000 took 224 s before): every shadowed one reported,
    the first wildcard of its team named."""
    domains = []
    for i in range(20_000):
        team = i // 10
        if i % 10 == 0:
            domains.append(f"https://*.t{team}.example.com/**")
        else:
            domains.append(f"https://a{i}.t{team}.example.com/v{i % 3}/**")
    path = _policy(tmp_path / "many.yaml", domains)
    assert path.stat().st_size < 1024 * 1024
    code, report = _validate_json(cli, path)
    assert code == 0
    problems = report["problems"]
    assert isinstance(problems, list)
    assert {p["code"] for p in problems} == {"domain.shadowed"}
    assert len(problems) == 18_000
    last = problems[-1]
    assert last["line"] == 7 + 19_999
    assert last["message"] == (
        "https://a19999.t1999.example.com/v1/** is already allowed by "
        f"https://*.t1999.example.com/** (line {7 + 19_990})"
    )


# --------------------------------------------------------------------------- coverage itself


def _covers(broad: str, narrow: str) -> bool:
    return pattern_covers(parse_domain(broad), parse_domain(narrow))


@pytest.mark.parametrize(
    ("broad", "narrow", "expected"),
    [
        ("/**", "/a/b/c", True),
        ("/**", "/a*/**", True),
        ("/**", "", True),  # `https://x.example.com` is `https://x.example.com/`
        ("/*", "/a", True),
        ("/*", "/a*b", True),
        ("/*", "/a/b", False),
        ("/*", "/**", False),
        ("/a*", "/a**", False),  # the old check said True: `**` reaches past a `/`
        ("/a/**", "/a/b/**", True),
        ("/a/**", "/ab/**", False),
        ("/*/b", "/x/b", True),
        ("/*/b", "/x/y/b", False),
        ("/**/b", "/x/y/b", True),
        ("/{a,b,c}/**", "/{a,b}/**", True),  # the old check said False
        ("/{a,b}/**", "/{a,c}/**", False),
        ("/{a,b}/**", "/a/x", True),
        ("/**a**a**a**a**a**a**a**ab", "/" + "a" * 80, False),
        ("/**a**a**a**ab", "/xaxaxaxab", True),
    ],
)
def test_path_coverage(broad: str, narrow: str, expected: bool) -> None:
    """Glob coverage as language inclusion: `*` stays in a segment, `**` goes anywhere."""
    assert _covers(f"https://x.example.com{broad}", f"https://x.example.com{narrow}") is expected


def test_too_many_brace_alternatives_are_not_judged() -> None:
    """Braces multiply: past MAX_ALTERNATIVES a path is not compared (no warning, no blow-up)."""
    groups = "/{a,b}" * 7  # 128 alternatives
    assert not _covers("https://x.example.com/**", f"https://x.example.com{groups}")
    assert _covers("https://x.example.com/**", "https://x.example.com" + "/{a,b}" * 6)
    nested = "/" + "{" * 5000 + "a" + "}" * 5000
    assert not _covers("https://x.example.com/**", f"https://x.example.com{nested}")


_SEGMENT = st.sampled_from(["a", "b", "/", "*", "**", "{a,b}", "ab"])


def _glob_regex(glob: str) -> re.Pattern[str]:
    """The meaning of a glob as a regex, for short strings only (the old check's reading)."""
    out = []
    for token in re.findall(r"\*\*|\*|\{[^{}]*\}|.", glob, re.DOTALL):
        if token == "**":
            out.append(".*")
        elif token == "*":
            out.append("[^/]*")
        elif token.startswith("{") and len(token) > 1:
            out.append("(?:" + "|".join(map(re.escape, token[1:-1].split(","))) + ")")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out), re.DOTALL)


def _instances(glob: str, fills: list[str]) -> list[str]:
    """Strings the glob admits: each wildcard filled with each of `fills` in turn."""
    out = []
    for fill in fills:
        text = glob.replace("**", "\0").replace("*", fill.replace("/", "")).replace("\0", fill)
        for alternative in ("a", "b"):
            out.append(text.replace("{a,b}", alternative))
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(_SEGMENT, max_size=6), st.lists(_SEGMENT, max_size=6))
def test_coverage_is_sound(broad_parts: list[str], narrow_parts: list[str]) -> None:
    """Whenever coverage is claimed, every sampled string of the narrow glob matches the broad."""
    broad, narrow = "/" + "".join(broad_parts), "/" + "".join(narrow_parts)
    if not normalize._path_covers(broad, narrow):
        return
    regex = _glob_regex(broad)
    for text in _instances(narrow, ["", "a", "b", "ab/ba", "x/y/"]):
        assert regex.fullmatch(text), (broad, narrow, text)


# --------------------------------------------------------------------------- the index


_PATTERNS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["https", "vscode"]),
    st.sampled_from(
        [
            "a.example.com",
            "b.example.com",
            "x.a.example.com",
            "*.example.com",
            "*.a.example.com",
            "{a,b}.example.com",
            "{a,c}.example.com",
        ]
    ),
    st.sampled_from(["", ":8443", ":*"]),
    st.sampled_from(["", "/", "/**", "/a", "/a/**", "/a*", "/*", "/{a,b}/**", "/*/b", "/**/b"]),
)


def _all_pairs(patterns: list[DomainPattern]) -> dict[int, int]:
    found = {}
    for j, narrow in enumerate(patterns):
        for i, broad in enumerate(patterns):
            if i != j and pattern_covers(broad, narrow):
                found[j] = i
                break
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERNS, max_size=12, unique=True))
def test_index_finds_what_all_pairs_find(texts: list[str]) -> None:
    """The indexed search reports exactly what comparing every pair reports, same broad pattern."""
    patterns = list(dict.fromkeys(parse_domain(t) for t in texts))
    shadowing = find_shadowing(patterns)
    assert shadowing.complete
    assert shadowing.covered_by == _all_pairs(patterns)


def test_work_cap_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When every pair is plausible and the work cap runs out, one warning says the check
    stopped; what was found before is still reported."""
    monkeypatch.setattr(normalize, "SHADOWING_WORK_CAP", 1000)
    domains = ["https://api.example.com/**"] + [
        f"https://api.example.com/*q{i}z" for i in range(50)
    ]
    path = _policy(tmp_path / "capped.yaml", domains)
    code = run(["validate", "--format", "json", str(path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    codes = [p["code"] for p in report["problems"]]
    assert codes.count("domain.shadowing-unchecked") == 1
    assert 0 < codes.count("domain.shadowed") < 50
    [capped] = [p for p in report["problems"] if p["code"] == "domain.shadowing-unchecked"]
    assert capped["line"] == 6  # the `domains:` key
    assert "too many overlapping wildcard patterns (51)" in capped["message"]
