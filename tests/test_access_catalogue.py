"""The AI-tool catalogue shipped with the package, and the maintainer script that refreshes it
(run offline here against a loopback HTTP server serving fixture pages)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rovo_reconcile.access.catalogue import CatalogueError, catalogue, parse_catalogue

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "refresh_catalogue.py"
SHIPPED = ROOT / "src" / "rovo_reconcile" / "access" / "catalogue.json"
FIXTURES = Path(__file__).parent / "access_fixtures" / "refresh"


def test_the_shipped_catalogue_says_where_every_fact_comes_from() -> None:
    tools = catalogue().tools
    assert [t.name for t in tools] == ["anthropic", "openai"]
    for tool in tools:
        for fact in (tool.supported_fact, tool.redirect_fact, tool.egress_fact):
            assert fact.retrieved == "2026-12-01"
            assert fact.evidence
            assert fact.source or not fact.verified  # a verified fact names its source
        assert tool.egress == () or tool.egress_fact.verified


def test_anthropic_ships_its_published_outbound_range() -> None:
    claude = catalogue().get("anthropic")
    assert claude is not None
    assert claude.egress == ("160.79.104.0/21",)
    assert claude.egress_fact.source == "https://platform.claude.com/docs/en/api/ip-addresses"
    assert len(claude.retired) == 5
    assert claude.redirect_uris[0] == "https://claude.ai/api/mcp/auth_callback"


def test_openai_ships_no_range_it_could_not_verify() -> None:
    chatgpt = catalogue().get("openai")
    assert chatgpt is not None
    assert chatgpt.egress == ()
    assert not chatgpt.egress_fact.verified
    assert chatgpt.egress_fact.source == "https://openai.com/chatgpt-connectors.json"
    assert not chatgpt.redirect_fact.verified


def test_the_shipped_file_is_in_the_form_the_refresh_script_writes() -> None:
    """A refresh that changes nothing leaves no diff."""
    text = SHIPPED.read_text("utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda d: d.update(format=2), "unknown catalogue format 2"),
        (lambda d: d["tools"][0]["egress"].update(cidrs=["10.0.0.1/8"]), "host bits"),
        (lambda d: d["tools"][1]["egress"].update(cidrs=["1.2.3.0/24"]), "only when verified"),
        (lambda d: d["tools"].append(d["tools"][0]), "listed twice"),
        (lambda d: d["tools"][0].pop("vendor"), "KeyError"),
    ],
)
def test_a_malformed_catalogue_is_refused(edit: object, complaint: str) -> None:
    data = json.loads(SHIPPED.read_text("utf-8"))
    edit(data)  # type: ignore[operator]
    with pytest.raises(CatalogueError, match=complaint):
        parse_catalogue(json.dumps(data))


# ------------------------------------------------------------------ scripts/refresh_catalogue.py


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server serving a copy of the fixture pages (tmp_path/site); yields
    its base URL."""
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _refresh(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    copy = tmp_path / "catalogue.json"
    if not copy.exists():
        shutil.copy(SHIPPED, copy)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--catalogue", str(copy), "--today", "2027-01-15", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, copy


def test_refresh_reads_both_sources_and_writes_a_valid_catalogue(
    tmp_path: Path, pages: str
) -> None:
    done, copy = _refresh(
        tmp_path,
        "--anthropic-url",
        f"{pages}/ip-addresses.md",
        "--openai-url",
        f"{pages}/chatgpt-connectors.json",
    )
    assert done.returncode == 0, done.stderr
    assert "anthropic: + 192.0.2.0/24" in done.stdout
    assert "openai: + 198.51.100.0/28" in done.stdout
    refreshed = parse_catalogue(copy.read_text("utf-8"))
    claude = refreshed.get("anthropic")
    chatgpt = refreshed.get("openai")
    assert claude is not None
    assert chatgpt is not None
    assert claude.egress == ("160.79.104.0/21", "192.0.2.0/24")  # not the inbound /23
    assert claude.retired == ("34.162.46.92/32", "34.162.102.82/32")
    assert claude.egress_fact.retrieved == "2027-01-15"
    assert chatgpt.egress == ("198.51.100.0/28", "203.0.113.64/27")  # IPv4, once each
    assert chatgpt.egress_fact.verified
    assert chatgpt.egress_fact.source == f"{pages}/chatgpt-connectors.json"
    raw = json.loads(copy.read_text("utf-8"))
    feed = raw["tools"][1]["egress"]
    assert feed["feed_created"] == "2026-11-30T04:12:51.000000"
    assert "1 IPv6 prefixes left out" in feed["evidence"]


def test_refresh_reads_the_html_page_too(tmp_path: Path, pages: str) -> None:
    done, copy = _refresh(
        tmp_path, "--tool", "anthropic", "--anthropic-url", f"{pages}/ip-addresses.html"
    )
    assert done.returncode == 0, done.stderr
    claude = parse_catalogue(copy.read_text("utf-8")).get("anthropic")
    assert claude is not None
    assert claude.egress == ("160.79.104.0/21",)
    assert claude.retired == ("34.162.46.92/32",)


def test_a_refresh_that_finds_the_same_ranges_reports_no_change(tmp_path: Path, pages: str) -> None:
    page = "## Outbound IP addresses\n\n160.79.104.0/21\n\n## Phased out\n\nno longer in use:\n"
    page += "\n".join(catalogue().get("anthropic").retired)  # type: ignore[union-attr]
    (tmp_path / "site" / "unchanged.md").write_text(page, "utf-8")
    done, copy = _refresh(
        tmp_path, "--tool", "anthropic", "--anthropic-url", f"{pages}/unchanged.md"
    )
    assert done.returncode == 0, done.stderr
    assert "anthropic: no change (1 ranges)" in done.stdout
    refreshed = json.loads(copy.read_text("utf-8"))["tools"][0]["egress"]
    assert refreshed["cidrs"] == ["160.79.104.0/21"]
    assert refreshed["retired"] == list(catalogue().get("anthropic").retired)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--tool", "openai", "--openai-url", "/missing.json"), "HTTP Error 404"),
        (("--tool", "anthropic", "--anthropic-url", "/chatgpt-connectors.json"), "no outbound"),
        (("--tool", "openai", "--openai-url", "/ip-addresses.md"), "JSONDecodeError"),
    ],
)
def test_a_source_that_fails_leaves_the_catalogue_unchanged(
    tmp_path: Path, pages: str, args: tuple[str, ...], complaint: str
) -> None:
    url_at = args.index(next(a for a in args if a.startswith("/")))
    full = (*args[:url_at], pages + args[url_at])
    done, copy = _refresh(tmp_path, *full)
    assert done.returncode == 1
    assert complaint in done.stderr
    assert "the catalogue was not changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert copy.read_bytes() == SHIPPED.read_bytes()


def test_refresh_fetches_plain_http_only_from_loopback(tmp_path: Path) -> None:
    done, copy = _refresh(
        tmp_path, "--tool", "openai", "--openai-url", "http://example.com/chatgpt-connectors.json"
    )
    assert done.returncode == 64
    assert "only https (or http to loopback)" in done.stderr
    assert copy.read_bytes() == SHIPPED.read_bytes()
