"""Output helpers: the colour decision, progress lines, GitHub context, Markdown free text, journal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rovo_reconcile.apply import Journal
from rovo_reconcile.color import Paint, use_color
from rovo_reconcile.progress import OrgDone, OrgProgress
from rovo_reconcile.render.plan_markdown import md_inline
from rovo_reconcile.run_context import github_context


@pytest.mark.parametrize(
    ("isatty", "environ", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # an empty NO_COLOR means nothing (no-color.org)
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (False, {"FORCE_COLOR": "0"}, False),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # NO_COLOR wins
        (False, {"FORCE_COLOR": "1", "NO_COLOR": ""}, True),
    ],
)
def test_use_color(isatty: bool, environ: dict[str, str], expected: bool) -> None:
    """One decision: a terminal, unless NO_COLOR (non-empty); FORCE_COLOR (non-empty, not 0) forces."""
    assert use_color(isatty, environ) is expected


def test_paint_off_returns_text_unchanged() -> None:
    """With colour off, painting is the identity, so uncoloured reports stay byte-identical."""
    assert Paint(False)("red", "drift") == "drift"
    assert Paint(True)("red", "drift") == "\x1b[31mdrift\x1b[0m"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _event(org: str, total: int, what: str = "read", seconds: float = 0.41) -> OrgDone:
    return OrgDone(org, what, seconds, total)


def test_progress_prints_a_line_per_org_with_count_and_elapsed_time() -> None:
    """For a CI log: `[k/n] org X read in 0.41 s (3.2 s elapsed)`, one line each."""
    stream, clock = io.StringIO(), _Clock()
    progress = OrgProgress(stream, live=False, clock=clock)
    clock.now += 3.2
    progress(_event("org-a", 2))
    clock.now += 1.0
    progress(_event("org-b", 2, "read failed", 1.5))
    progress.close()
    assert stream.getvalue().splitlines() == [
        "rovo-reconcile: [1/2] org org-a read in 0.41 s (3.2 s elapsed)",
        "rovo-reconcile: [2/2] org org-b read failed in 1.50 s (4.2 s elapsed)",
    ]


def test_progress_is_silent_for_a_single_org() -> None:
    """A one-org run prints no progress at all."""
    stream = io.StringIO()
    progress = OrgProgress(stream, live=True, clock=_Clock())
    progress(_event("org-a", 1))
    progress.close()
    assert stream.getvalue() == ""


def test_progress_on_a_terminal_redraws_one_line_and_clears_it() -> None:
    """On a terminal: one line redrawn with \\r, no newline, erased at the end."""
    stream = io.StringIO()
    progress = OrgProgress(stream, live=True, clock=_Clock())
    progress(_event("org-a", 4))
    progress(_event("org-b", 4))
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") == 3
    assert "[2/4] ############------------" in text
    assert text.endswith("\r\x1b[K")


def test_github_context_from_the_environment() -> None:
    """commit, run id, actor and a run link from GITHUB_*; nothing outside GitHub."""
    assert github_context({}) == {}
    env = {
        "GITHUB_SHA": "0123abc",
        "GITHUB_RUN_ID": "42",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/policies",
    }
    assert github_context(env) == {
        "commit": "0123abc",
        "run_id": "42",
        "actor": "octocat",
        "run_url": "https://github.com/acme/policies/actions/runs/42",
    }
    assert github_context({"GITHUB_ACTOR": "octocat", "GITHUB_SHA": ""}) == {"actor": "octocat"}


def test_journal_context_is_in_every_line_and_cannot_hide_the_write(tmp_path: Path) -> None:
    """Context keys (commit, reason) join each line; the write's own keys win a clash."""
    journal = Journal(tmp_path / "j.jsonl", "sandbox", {"reason": "break-glass", "org": "x"})
    journal.outcome(journal.intent("org-1", "ip_allowlist:A", "PUT", "/p/1"), 202, "ok")
    lines = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert [entry["event"] for entry in lines] == ["intent", "outcome"]
    for entry in lines:
        assert entry["reason"] == "break-glass"
        assert entry["org"] == "org-1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "set by hand: Add domain: https://x.example/**",
            "set by hand: Add domain: `https://x.example/**`",
        ),
        (
            "keep exactly these domains: https://a.example/**, http://127.0.0.1:*/**.",
            "keep exactly these domains: `https://a.example/**`, `http://127.0.0.1:*/**`.",
        ),
        ("no URL <b>here</b>", "no URL &#60;b&#62;here&#60;/b&#62;"),
    ],
)
def test_md_inline_puts_urls_in_code_spans(text: str, expected: str) -> None:
    """Free text keeps its escaping; a URL or domain pattern in it becomes code, never a link."""
    assert md_inline(text) == expected
