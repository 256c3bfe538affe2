"""Request bodies in, typed values out - or a 400 that names the offending field.

The emulator is stricter than it needs to be on purpose: a client bug (a typo
in a key, a boolean sent as a string, an address with host bits) should fail
loudly here rather than be silently ignored and show up later as a perpetual
diff. Values are kept as sent; normalisation only decides validity and, for MCP
domains, the duplicate key - with the same functions the client uses.
"""

from __future__ import annotations

import json
from typing import Any

from rovo_reconcile.emulator.responses import Problem
from rovo_reconcile.emulator.store import PolicyWrite
from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import normalize_address, normalize_domain

__all__ = [
    "MAX_BODY_BYTES",
    "SettingsPatch",
    "bad_request",
    "parse_domain",
    "parse_json",
    "parse_policy",
    "parse_settings_patch",
]

MAX_BODY_BYTES = 1 << 20
_MAX_NAME = 255
_POLICY_STATUSES = ("enabled", "disabled")
_POLICY_ATTRIBUTES = {"type", "name", "status", "rule", "resources", "createdAt", "updatedAt"}
_RULE_KEYS = {"in", "allowMobileBypass"}

SettingsPatch = tuple[bool | None, bool | None]
"""(allowAtlassianSupportedDomains, apiToken); None leaves the setting alone."""


def bad_request(detail: str) -> Problem:
    return Problem(400, "ADMIN-400-24", "Invalid request body", detail)


def parse_json(raw: bytes, *, required: bool) -> Any:
    """The decoded body; an empty body is `{}` unless the endpoint needs one."""
    if len(raw) > MAX_BODY_BYTES:
        raise bad_request(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise bad_request("a JSON request body is required")
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad_request(f"the request body is not valid JSON: {e}") from e


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{where}: expected a JSON object")
    return value


def _envelope(body: Any, data_type: str) -> dict[str, Any]:
    """`{"data": {"type": data_type, "attributes": {...}}}` -> the data object."""
    data = _object(_object(body, "body").get("data"), "data")
    if data.get("type") != data_type:
        raise bad_request(f"data.type: expected {data_type!r}, got {data.get('type')!r}")
    _object(data.get("attributes"), "data.attributes")
    return data


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"{where}: expected true or false, got {json.dumps(value)}")
    return value


def _unknown_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise bad_request(f"{where}: unknown field {unknown[0]!r}")


# --------------------------------------------------------------------------- policies


def parse_policy(body: Any, *, path_id: str | None = None) -> PolicyWrite:
    """The policy of a create (POST) or full replacement (PUT) request."""
    data = _envelope(body, "policy")
    if path_id is not None and data.get("id") not in (None, path_id):
        raise bad_request(f"data.id: {data.get('id')!r} does not match the policy id in the path")
    attrs: dict[str, Any] = data["attributes"]
    _unknown_keys(attrs, _POLICY_ATTRIBUTES, "data.attributes")
    if attrs.get("type") != "ip-allowlist":
        raise bad_request(
            f"data.attributes.type: the emulator supports only 'ip-allowlist', got {attrs.get('type')!r}"
        )
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise bad_request(
            f"data.attributes.name: expected a non-empty string of at most {_MAX_NAME} characters"
        )
    status = attrs.get("status")
    if status not in _POLICY_STATUSES:
        raise bad_request(
            f"data.attributes.status: expected 'enabled' or 'disabled', got {status!r}"
        )
    return PolicyWrite(
        type="ip-allowlist",
        name=name,
        status=status,
        rule=_rule(attrs.get("rule")),
        resources=_resources(attrs.get("resources", [])),
    )


def _rule(value: Any) -> dict[str, Any]:
    rule = _object(value, "data.attributes.rule")
    _unknown_keys(rule, _RULE_KEYS, "data.attributes.rule")
    entries = rule.get("in")
    if not isinstance(entries, list):
        raise bad_request(
            "data.attributes.rule.in: expected a list of IPv4 addresses or CIDR blocks"
        )
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"data.attributes.rule.in[{i}]"
        try:
            canonical = normalize_address(entry)
        except NormalizeError as e:
            hint = f" ({e.hint})" if e.hint else ""
            raise bad_request(f"{where}: {e.message}{hint}") from e
        if canonical in seen:
            raise bad_request(f"{where}: {entry!r} duplicates rule.in[{seen[canonical]}]")
        seen[canonical] = i
    bypass = _bool(rule.get("allowMobileBypass", False), "data.attributes.rule.allowMobileBypass")
    return {"in": list(entries), "allowMobileBypass": bypass}


def _resources(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise bad_request('data.attributes.resources: expected a list of {"id": ...} objects')
    ids: list[str] = []
    for i, item in enumerate(value):
        where = f"data.attributes.resources[{i}]"
        resource_id = _object(item, where).get("id")
        if not isinstance(resource_id, str) or not resource_id:
            raise bad_request(f"{where}.id: expected a non-empty string")
        if resource_id in ids:
            raise bad_request(f"{where}.id: {resource_id!r} is listed twice")
        ids.append(resource_id)
    return tuple(ids)


# --------------------------------------------------------------------------- MCP (our own contract)


def parse_settings_patch(body: Any) -> SettingsPatch:
    attrs: dict[str, Any] = _envelope(body, "rovo-mcp-settings")["attributes"]
    _unknown_keys(attrs, {"allowAtlassianSupportedDomains", "authentication"}, "data.attributes")
    allow: bool | None = None
    api_token: bool | None = None
    if "allowAtlassianSupportedDomains" in attrs:
        allow = _bool(
            attrs["allowAtlassianSupportedDomains"],
            "data.attributes.allowAtlassianSupportedDomains",
        )
    if "authentication" in attrs:
        auth = _object(attrs["authentication"], "data.attributes.authentication")
        _unknown_keys(auth, {"oauth21", "apiToken"}, "data.attributes.authentication")
        if "oauth21" in auth and not _bool(
            auth["oauth21"], "data.attributes.authentication.oauth21"
        ):
            raise bad_request(
                "data.attributes.authentication.oauth21: OAuth 2.1 is always on and cannot be turned off"
            )
        if "apiToken" in auth:
            api_token = _bool(auth["apiToken"], "data.attributes.authentication.apiToken")
    return allow, api_token


def parse_domain(body: Any) -> tuple[str, str]:
    """(pattern as sent, canonical pattern) of a domain to add."""
    attrs: dict[str, Any] = _envelope(body, "rovo-mcp-domain")["attributes"]
    _unknown_keys(attrs, {"pattern"}, "data.attributes")
    pattern = attrs.get("pattern")
    if not isinstance(pattern, str):
        raise bad_request("data.attributes.pattern: expected a string")
    try:
        canonical = normalize_domain(pattern)
    except NormalizeError as e:
        hint = f" ({e.hint})" if e.hint else ""
        raise bad_request(f"data.attributes.pattern: {e.message}{hint}") from e
    return pattern, canonical
