"""Issue 11 item 12: IDN homographs and non-web schemes are no longer accepted silently.

- A host label that mixes scripts (`https://\u0430pple.com/**`, a Cyrillic a) or is spelled
  wholly in Cyrillic or Greek letters that look Latin: a warning that shows the A-label.
- `javascript:`, `vbscript:` and `data:` patterns: an error (a sign-in redirect to one runs
  script). `ws://` to a host that is not loopback: an error, as plain `http://` already is.
- `file:`, `ftp:`, `mailto:` and other schemes no MCP client signs in from: a warning.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from rovo_reconcile.cli import run
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import domain_warnings, parse_domain

from .conftest import ROOT


def _warnings(text: str) -> list[tuple[str, str]]:
    return [(w.code, w.message) for w in domain_warnings(parse_domain(text))]


def test_mixed_script_label_warns_with_its_a_label() -> None:
    """A Cyrillic a in a Latin word: the warning names both scripts and the xn-- form."""
    [(code, message)] = _warnings("https://\u0430pple.com/**")
    assert code == "domain.homograph"
    assert "(xn--pple-43d)" in message
    assert "mixes Cyrillic and Latin letters" in message


def test_whole_script_lookalike_label_warns() -> None:
    """All-Cyrillic letters that read as a Latin word: the warning spells the Latin reading."""
    [(code, message)] = _warnings("https://\u0430\u0440\u0440\u04cf\u0435.com/**")
    assert code == "domain.homograph"
    assert "xn--80ak6aa92e" in message
    assert "'apple'" in message


def test_each_brace_alternative_is_checked() -> None:
    """A homograph hidden in one alternative of the leftmost label is found too."""
    [(code, _)] = _warnings("https://{\u0430pple,beta}.example-corp.com/**")
    assert code == "domain.homograph"


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example-corp.com/**",
        "https://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/**",  # Russian, one script
        "https://\u4f8b\u3048.jp/**",  # Han and Hiragana: a Japanese label
        "https://m\u00fcnchen.de/**",  # Latin with a diacritic
        "https://\u03b5\u03bb\u03bb\u03ac\u03b4\u03b1.gr/**",  # Greek, not all look-alikes
        "vscode://anysphere.cursor-retrieval/**",  # a private-use scheme
        "ws://127.0.0.1:*/**",
        "ws://localhost:6274/**",
        "wss://mcp.example-corp.com/**",
    ],
)
def test_ordinary_patterns_have_no_warning(text: str) -> None:
    assert _warnings(text) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("javascript://app.example-corp.com/**", "domain.script-scheme"),
        ("JavaScript://app.example-corp.com/**", "domain.script-scheme"),
        ("vbscript://app.example-corp.com/**", "domain.script-scheme"),
        ("data://app.example-corp.com/**", "domain.script-scheme"),
        ("ws://mcp.example-corp.com/**", "domain.ws-not-loopback"),
        ("ws://*.example-corp.com/**", "domain.ws-not-loopback"),
    ],
)
def test_script_schemes_and_public_ws_are_errors(text: str, code: str) -> None:
    with pytest.raises(NormalizeError) as info:
        parse_domain(text)
    assert info.value.code == code
    assert info.value.hint is not None


@pytest.mark.parametrize("scheme", ["file", "ftp", "mailto", "tel", "about", "blob"])
def test_non_web_schemes_warn(scheme: str) -> None:
    [(code, message)] = _warnings(f"{scheme}://share.example-corp.com/**")
    assert code == "domain.non-web-scheme"
    assert message.startswith(f"{scheme}: ")


NEW_CORPUS = [
    "tests/corpus/invalid/domain-homograph-mixed-script.yaml",
    "tests/corpus/invalid/domain-homograph-whole-script.yaml",
    "tests/corpus/invalid/domain-non-web-scheme.yaml",
    "tests/corpus/invalid/domain-script-scheme.yaml",
    "tests/corpus/invalid/domain-ws-not-loopback.yaml",
]


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_new_corpus_report_snapshot(
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    snapshot: SnapshotAssertion,
) -> None:
    """The three renderings of the report over the corpus files this issue added."""
    monkeypatch.chdir(ROOT)
    assert run(["validate", "--format", fmt, *NEW_CORPUS]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == snapshot
