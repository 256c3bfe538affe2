"""The catalogue of AI tools: redirect URIs and published egress ranges, with their sources.

The data is `catalogue.json` beside this module, shipped with the package and never
fetched at run time (scripts/refresh_catalogue.py refreshes it on a maintainer's machine).
Every fact carries where it was read, on which day, and whether it was verified there:
a tool may be known by its redirect URIs while its egress ranges are not (then it has no
`cidrs`, and nothing pretends otherwise).
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import normalize_address, parse_domain

__all__ = ["Catalogue", "CatalogueError", "Fact", "Tool", "catalogue", "parse_catalogue"]


class CatalogueError(ValueError):
    """The catalogue data does not have its documented shape (a bug in the shipped file)."""


@dataclass(frozen=True)
class Fact:
    """Where one fact about a tool comes from."""

    source: str | None
    retrieved: str
    verified: bool
    evidence: str

    def cite(self) -> str:
        where = self.source or "no first-party source"
        state = "" if self.verified else ", unverified"
        return f"{where}, retrieved {self.retrieved}{state}"


@dataclass(frozen=True)
class Tool:
    name: str
    """The catalogue name, as written in `- tool: NAME`."""
    display_name: str
    description: str
    vendor: str
    atlassian_supported: bool
    """Whether Atlassian names the tool as one of its supported AI partners."""
    supported_fact: Fact
    redirect_uris: tuple[str, ...]
    """Canonical redirect URIs (normalize.parse_domain), the first the one in use today."""
    redirect_fact: Fact
    egress: tuple[str, ...]
    """Canonical CIDRs the tool's calls come from; empty when none is verified."""
    retired: tuple[str, ...]
    egress_fact: Fact

    @property
    def label(self) -> str:
        return f"{self.display_name} [{self.name}]"

    def origin(self) -> str:
        """What a plan says of an address expanded from this tool."""
        return f"from catalogue: {self.name} ({self.egress_fact.cite()})"


@dataclass(frozen=True)
class Catalogue:
    tools: tuple[Tool, ...]

    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def get(self, name: str) -> Tool | None:
        folded = name.strip().casefold()
        return next((tool for tool in self.tools if tool.name == folded), None)

    def suggest(self, name: str) -> str:
        """A did-you-mean hint for an unknown tool name."""
        close = difflib.get_close_matches(name.strip().casefold(), self.names(), n=1, cutoff=0.5)
        if close:
            return f"did you mean {close[0]!r}?"
        return "catalogue tools: " + ", ".join(self.names())

    def by_redirect(self, uri: str) -> Tool | None:
        """The tool that signs in with this canonical redirect URI, if the catalogue knows it."""
        return next((tool for tool in self.tools if uri in tool.redirect_uris), None)


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue shipped in the package."""
    text = resources.files("rovo_reconcile.access").joinpath("catalogue.json").read_text("utf-8")
    return parse_catalogue(text)


def parse_catalogue(text: str) -> Catalogue:
    """Read catalogue JSON; every redirect URI and CIDR is checked and made canonical."""
    try:
        data = json.loads(text)
        if data.get("format") != 1:
            raise CatalogueError(f"unknown catalogue format {data.get('format')!r}")
        tools = tuple(_tool(entry) for entry in data["tools"])
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError, NormalizeError) as e:
        raise CatalogueError(f"malformed AI-tool catalogue: {type(e).__name__}: {e}") from e
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise CatalogueError("malformed AI-tool catalogue: a tool name is listed twice")
    return Catalogue(tools)


def _fact(raw: dict[str, Any]) -> Fact:
    source = raw["source"]
    if source is not None and not isinstance(source, str):
        raise TypeError("source must be text or null")
    return Fact(source, str(raw["retrieved"]), bool(raw["verified"]), str(raw["evidence"]))


def _tool(raw: dict[str, Any]) -> Tool:
    name = raw["name"]
    if not isinstance(name, str) or not name or name != name.casefold():
        raise TypeError(f"tool name {name!r} must be lower-case text")
    supported, redirects, egress = raw["atlassian_supported"], raw["redirect_uris"], raw["egress"]
    cidrs = tuple(normalize_address(c) for c in egress["cidrs"])
    fact = _fact(egress)
    if cidrs and not fact.verified:
        raise TypeError(f"{name}: egress ranges are shipped only when verified")
    return Tool(
        name=name,
        display_name=str(raw["display_name"]),
        description=str(raw["description"]),
        vendor=str(raw["vendor"]),
        atlassian_supported=bool(supported["value"]),
        supported_fact=_fact(supported),
        redirect_uris=tuple(str(parse_domain(uri)) for uri in redirects["values"]),
        redirect_fact=_fact(redirects),
        egress=cidrs,
        retired=tuple(normalize_address(c) for c in egress.get("retired", ())),
        egress_fact=fact,
    )
