#!/usr/bin/env python3
"""Refresh the AI-tool catalogue (src/rovo_reconcile/access/catalogue.json) from its sources.

For maintainers, on a machine with network access; rovo-reconcile itself never fetches it.

    .venv/bin/python scripts/refresh_catalogue.py            # fetch, check, write, show changes
    .venv/bin/python scripts/refresh_catalogue.py --dry-run  # fetch and show, write nothing

Sources:
- anthropic: Anthropic's "IP addresses" page; the ranges under its outbound heading are the
  egress of Claude's MCP tool calls, those it lists as no longer in use are kept as `retired`.
- openai: OpenAI's chatgpt-connectors.json (`creationTime` and `prefixes`, each with an
  `ipv4Prefix` or an `ipv6Prefix`); IPv4 prefixes only, as Atlassian allowlists take IPv4.

It fails closed: a source that cannot be fetched, or whose content does not have the
expected shape (no outbound section, no prefixes, a catch-all range), stops the run with
exit 1 and the catalogue is left as it was. Review the diff and commit it; each refreshed
fact records its source, the day it was read and `verified: true`.
Exit codes: 0 done, 1 a source failed, 64 bad usage.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "src" / "rovo_reconcile" / "access" / "catalogue.json"
ANTHROPIC_URL = "https://platform.claude.com/docs/en/api/ip-addresses.md"
ANTHROPIC_PAGE = "https://platform.claude.com/docs/en/api/ip-addresses"
OPENAI_URL = "https://openai.com/chatgpt-connectors.json"
MAX_BYTES = 2 * 1024 * 1024
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)(?![\d.])")


class SourceError(Exception):
    """A source could not be read, or its content is not what this script understands."""


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "::1") or (
        parts.hostname is not None and parts.hostname.startswith("127.")
    )
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SystemExit(f"refresh_catalogue: {url}: only https (or http to loopback) is fetched")


def fetch(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "rovo-reconcile-refresh"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body: bytes = answer.read(MAX_BYTES + 1)
    except OSError as e:
        raise SourceError(f"{url}: {e}") from e
    if len(body) > MAX_BYTES:
        raise SourceError(f"{url}: larger than {MAX_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


class _Text(HTMLParser):
    """HTML to lines, headings marked with '#' as in the Markdown version of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n# ")
        elif tag in ("p", "div", "li", "br", "tr", "pre", "code"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]|p|div|li|tr|pre", tag):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _lines(page: str) -> list[str]:
    if "<html" in page.lower() or "<h2" in page.lower():
        parser = _Text()
        parser.feed(page)
        page = "".join(parser.parts)
    return [line.strip() for line in page.splitlines() if line.strip()]


def parse_anthropic(page: str) -> tuple[list[str], list[str]]:
    """(outbound CIDRs, retired CIDRs) of Anthropic's IP-addresses page."""
    section = ""
    found: dict[str, list[str]] = {"outbound": [], "retired": []}
    for line in _lines(page):
        lower = line.lower()
        if line.startswith("#"):
            if "outbound" in lower:
                section = "outbound"
            elif "inbound" in lower:
                section = "inbound"
            elif "no longer" in lower or "phased out" in lower or "deprecated" in lower:
                section = "retired"
            elif not re.search(r"ipv[46]", lower):
                section = ""
            continue
        if "no longer in use" in lower:
            section = "retired"
        if section in found:
            found[section].extend(_canonical(text) for text in _IPV4.findall(line))
    outbound = sorted(set(found["outbound"]), key=_order)
    if not outbound:
        raise SourceError("the Anthropic page has no outbound IPv4 range under an outbound heading")
    return outbound, sorted(set(found["retired"]) - set(outbound), key=_order)


def parse_openai(text: str) -> tuple[str, list[str], int]:
    """(creationTime, IPv4 prefixes, IPv6 prefixes left out) of chatgpt-connectors.json."""
    try:
        data = json.loads(text)
        created = data["creationTime"]
        prefixes = data["prefixes"]
        if not isinstance(created, str) or not isinstance(prefixes, list) or not prefixes:
            raise TypeError("creationTime must be text and prefixes a non-empty list")
        ipv4: list[str] = []
        ipv6 = 0
        for entry in prefixes:
            if set(entry) == {"ipv4Prefix"}:
                ipv4.append(_canonical(entry["ipv4Prefix"]))
            elif set(entry) == {"ipv6Prefix"}:
                ipv6 += 1
            else:
                raise TypeError(f"a prefix entry must name one prefix, not {sorted(entry)}")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise SourceError(f"chatgpt-connectors.json: {type(e).__name__}: {e}") from e
    if not ipv4:
        raise SourceError("chatgpt-connectors.json holds no IPv4 prefix")
    return created, sorted(set(ipv4), key=_order), ipv6


def _canonical(text: str) -> str:
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as e:
        raise SourceError(f"{text!r} is not an IPv4 network: {e}") from e
    if net.prefixlen == 0:
        raise SourceError(f"{text!r} would admit every address")
    return f"{net.network_address}/{net.prefixlen}"


def _order(cidr: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), net.prefixlen


def _tool(catalogue: dict[str, Any], name: str) -> dict[str, Any]:
    for tool in catalogue["tools"]:
        if tool["name"] == name:
            found: dict[str, Any] = tool
            return found
    raise SystemExit(f"refresh_catalogue: the catalogue has no tool {name!r}")


def refresh(
    catalogue: dict[str, Any], tools: list[str], urls: dict[str, str], today: str, timeout: float
) -> list[str]:
    """Update `catalogue` in place from the sources of `tools`; the changes, in words."""
    changes: list[str] = []
    if "anthropic" in tools:
        outbound, retired = parse_anthropic(fetch(urls["anthropic"], timeout))
        egress = _tool(catalogue, "anthropic")["egress"]
        changes += _diff("anthropic", egress["cidrs"], outbound)
        egress.update(
            cidrs=outbound,
            retired=retired,
            source=ANTHROPIC_PAGE if urls["anthropic"] == ANTHROPIC_URL else urls["anthropic"],
            retrieved=today,
            verified=True,
            evidence=f"Read on {today}: the outbound section lists {', '.join(outbound)}"
            + (f"; no longer in use: {', '.join(retired)}" if retired else "")
            + ".",
        )
    if "openai" in tools:
        created, ipv4, ipv6 = parse_openai(fetch(urls["openai"], timeout))
        egress = _tool(catalogue, "openai")["egress"]
        changes += _diff("openai", egress["cidrs"], ipv4)
        egress.update(
            cidrs=ipv4,
            source=urls["openai"],
            retrieved=today,
            verified=True,
            feed_created=created,
            evidence=f"Read on {today}: creationTime {created}, {len(ipv4)} IPv4 prefixes"
            + (f" ({ipv6} IPv6 prefixes left out: Atlassian allowlists take IPv4)" if ipv6 else "")
            + ".",
        )
    return changes


def _diff(name: str, before: list[str], after: list[str]) -> list[str]:
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    lines = [f"{name}: + {c}" for c in added] + [f"{name}: - {c}" for c in removed]
    return lines or [f"{name}: no change ({len(after)} ranges)"]


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE)
    parser.add_argument("--tool", action="append", choices=["anthropic", "openai"])
    parser.add_argument("--anthropic-url", default=ANTHROPIC_URL)
    parser.add_argument("--openai-url", default=OPENAI_URL)
    parser.add_argument("--today", default=datetime.now(UTC).date().isoformat())
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--dry-run", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 64 if e.code else 0
    urls = {"anthropic": args.anthropic_url, "openai": args.openai_url}
    tools = args.tool or ["anthropic", "openai"]
    try:
        for tool in tools:
            _check_url(urls[tool])
        datetime.strptime(args.today, "%Y-%m-%d")
    except (SystemExit, ValueError) as e:
        print(f"refresh_catalogue: {e}", file=sys.stderr)
        return 64
    catalogue = json.loads(args.catalogue.read_text("utf-8"))
    try:
        changes = refresh(catalogue, tools, urls, args.today, args.timeout)
    except SourceError as e:
        print(f"refresh_catalogue: {e}; the catalogue was not changed", file=sys.stderr)
        return 1
    text = json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n"
    sys.path.insert(0, str(ROOT / "src"))
    from rovo_reconcile.access.catalogue import CatalogueError, parse_catalogue

    try:
        parse_catalogue(text)  # the shape rovo-reconcile reads, checked before it is written
    except CatalogueError as e:
        print(f"refresh_catalogue: {e}; the catalogue was not changed", file=sys.stderr)
        return 1
    print("\n".join(changes))
    if not args.dry_run:
        _write(args.catalogue, text)
        print(f"wrote {args.catalogue}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
