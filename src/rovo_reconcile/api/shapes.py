"""The documented shape of every Admin API answer the tool reads, checked at the edge.

A 2xx whose body does not have its documented shape is not an empty answer: `parse`
raises `ApiMalformed`, naming the request and the field, and the org stops before any
write. Types are strict (`"false"` is not a boolean, a string is not a list of strings);
fields the API adds and the tool does not read are ignored. Shapes follow DESIGN.md §5
and `reference/atlassian-admin-api.md`; the Rovo MCP ones are this project's own contract.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rovo_reconcile.api.errors import ApiMalformed

__all__ = [
    "CreatedPolicy",
    "IpAllowlistAnswer",
    "IpAllowlistItem",
    "McpDomainItem",
    "McpSettingsAnswer",
    "OrgItem",
    "Page",
    "PolicyItem",
    "WorkspaceItem",
    "parse",
]


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


# ------------------------------------------------------------------ pages


class PageLinks(_Shape):
    next: str | None = None


class PageMeta(_Shape):
    next: str | None = None


class Page(_Shape):
    """`{data: [object], links: {next}, meta: {next}}`: items are checked by their own shape."""

    data: list[dict[str, Any]]
    links: PageLinks | None = None
    meta: PageMeta | None = None


# ------------------------------------------------------------------ organizations


class OrgAttributes(_Shape):
    name: str


class OrgItem(_Shape):
    """One `OrgModel` of `GET /admin/v1/orgs`: `{id, type: "orgs", attributes: {name}}`."""

    id: str
    attributes: OrgAttributes


# ------------------------------------------------------------------ workspaces


class WorkspaceAttributes(_Shape):
    typeKey: str
    name: str = ""


class WorkspaceItem(_Shape):
    id: str
    attributes: WorkspaceAttributes


# ------------------------------------------------------------------ policies


class _PolicyKind(_Shape):
    type: str


class PolicyItem(_Shape):
    """Any policy of the listing: only its kind is read before it is checked in full."""

    id: str
    attributes: _PolicyKind


class Rule(_Shape):
    addresses: list[str] = Field(alias="in")
    allowMobileBypass: bool = False


class Resource(_Shape):
    id: str
    applicationStatus: str | None = None


class IpAllowlistAttributes(_Shape):
    type: Literal["ip-allowlist"]
    name: str
    status: Literal["enabled", "disabled"]
    rule: Rule
    resources: list[Resource]


class IpAllowlistItem(_Shape):
    id: str
    attributes: IpAllowlistAttributes


class IpAllowlistAnswer(_Shape):
    """One policy read by id: `{data: ip-allowlist policy}`."""

    data: IpAllowlistItem


class CreatedPolicy(_Shape):
    """The answer to a policy POST: only the new id is read from it."""

    data: PolicyItem


# ------------------------------------------------------------------ Rovo MCP (own contract)


class McpAuthentication(_Shape):
    apiToken: bool
    oauth21: bool | None = None


class McpSettingsAttributes(_Shape):
    allowAtlassianSupportedDomains: bool
    authentication: McpAuthentication


class McpSettingsData(_Shape):
    attributes: McpSettingsAttributes


class McpSettingsAnswer(_Shape):
    data: McpSettingsData


class McpDomainAttributes(_Shape):
    pattern: str


class McpDomainItem(_Shape):
    id: str
    attributes: McpDomainAttributes


# ------------------------------------------------------------------ checking

S = TypeVar("S", bound=_Shape)

_JSON_TYPES = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
    list: "an array",
    dict: "an object",
}


def parse(shape: type[S], value: object, where: str, prefix: str = "") -> S:
    """`value` as `shape`, or ApiMalformed saying `where` and which field is wrong.

    `where` names the request (`GET /admin/.../policies`), `prefix` the part of its answer
    that `value` is (`item 3`).
    """
    try:
        return shape.model_validate(value)
    except ValidationError as e:
        raise ApiMalformed(
            f"{where}: the answer does not have the documented shape: {_first(e, prefix)}"
        ) from e


def _first(error: ValidationError, prefix: str) -> str:
    """The first problem as `field: what is wrong (got a string)`, and how many more."""
    problems = error.errors(include_url=False, include_context=False)
    first = problems[0]
    field = ".".join(
        f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
    ).replace(".[", "[")
    field = " ".join(p for p in (prefix, field) if p) or "the answer"
    said = re.sub(r" or instance of \w+", "", str(first["msg"]))  # our class names mean nothing
    said = said[:1].lower() + said[1:]
    if first["type"] != "missing":
        said += f" (got {_JSON_TYPES.get(type(first.get('input')), 'something else')})"
    more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{field}: {said}{more}"
