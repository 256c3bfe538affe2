"""Desired and live state as one set of types.

Every value is canonical (see `normalize`), so the planner compares with plain
equality. `None` on a section or setting means "not managed". Field names are
Python's; `model_dump(by_alias=True)` gives the policy file's camelCase.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "APPS",
    "SETTING_API_TOKEN",
    "SETTING_SUPPORTED_DOMAINS",
    "AddressEntry",
    "App",
    "Authentication",
    "DomainEntry",
    "Guards",
    "IpAllowlist",
    "McpSettings",
    "Org",
    "OrgPolicy",
    "Ownership",
    "allowlist_key",
    "domain_key",
    "setting_key",
]

App = Literal["jira", "jsm", "confluence", "compass", "rovo"]
Ownership = Literal["authoritative", "additive"]
"""Of a list: authoritative removes live entries the policy does not list; additive leaves
them alone and reports them as unmanaged."""
APPS: tuple[App, ...] = ("jira", "jsm", "confluence", "compass", "rovo")
DEFAULT_MAX_DELETE_PERCENT = 30


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        defer_build=True,
    )


class DomainEntry(_Frozen):
    pattern: str
    note: str | None = None
    expires: date | None = None
    written: str | None = Field(default=None, exclude=True)
    """The pattern as the policy file spells it, when that is not `pattern` (the canonical
    form): what an admin types in Atlassian Administration. Plans compare `pattern` alone; dumps
and exports leave this out."""


class Authentication(_Frozen):
    api_token: bool | None = None


class McpSettings(_Frozen):
    allow_atlassian_supported_domains: bool | None = None
    domains: tuple[DomainEntry, ...] | None = None
    authentication: Authentication | None = None
    ownership: Ownership | None = None
    """Of `domains`; None is authoritative, as the policy did not say."""


class AddressEntry(_Frozen):
    address: str
    note: str | None = None
    expires: date | None = None
    tool: str | None = None
    """The AI-tool catalogue entry (`- tool: NAME`) this address was expanded from, if any:
    a policy-side annotation like `note`, never live state."""


class IpAllowlist(_Frozen):
    name: str
    enabled: bool
    apps: tuple[App, ...]
    allow_mobile_bypass: bool = False
    addresses: tuple[AddressEntry, ...]
    ownership: Ownership | None = None
    """Of `addresses`; None is authoritative, as the policy did not say."""


class Guards(_Frozen):
    must_allow: tuple[str, ...] = ()
    max_delete_percent: int = DEFAULT_MAX_DELETE_PERCENT


class Org(_Frozen):
    id: str
    name: str | None = None


class OrgPolicy(_Frozen):
    org: Org
    mcp: McpSettings | None = None
    ip_allowlists: tuple[IpAllowlist, ...] | None = None
    guards: Guards = Field(default_factory=Guards)


# ------------------------------------------------------------------ change keys
# A change key names one managed object across desired state, live state and
# plans: `resource:identity`. The loader records where each key is defined.

SETTING_SUPPORTED_DOMAINS = "allowAtlassianSupportedDomains"
SETTING_API_TOKEN = "authentication.apiToken"


def setting_key(setting: str) -> str:
    return f"mcp.settings:{setting}"


def domain_key(pattern: str) -> str:
    return f"mcp.domain:{pattern}"


def allowlist_key(name: str) -> str:
    return f"ip_allowlist:{name}"
