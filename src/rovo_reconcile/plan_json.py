"""The JSON plan file (`format_version: "1"`): written by `plan --out`, read by `apply --plan`.

Nothing time-dependent goes in, keys are sorted and separators fixed, so the
same inputs give byte-identical files. Each org carries the desired state it
was planned from, so `apply --plan` can re-plan against fresh live state, and
`mcp` (`mcp_state.McpState`: `status`, `live`, `manual_steps`), added within
version 1: a file without it reads as before. Manual steps are not writes, so
`changes_digest` does not cover them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from rovo_reconcile import __version__
from rovo_reconcile.errors import UsageError
from rovo_reconcile.mcp_state import McpState
from rovo_reconcile.plan import Change, OrgPlan, Plan, Refusal, Unmanaged, policy_from_state
from rovo_reconcile.policy.model import Guards
from rovo_reconcile.policy.normalize import normalize_address

__all__ = ["FORMAT_VERSION", "dump_plan", "load_plan", "plan_chunks", "plan_data", "write_plan"]

FORMAT_VERSION = "1"


def plan_data(plan: Plan) -> dict[str, Any]:
    return {**_head(plan), "orgs": [_org_data(org) for org in plan.orgs]}


def _head(plan: Plan) -> dict[str, Any]:
    """Everything of the plan file but its orgs."""
    summary = plan.summary()
    summary.update(
        orgs=len(plan.orgs),
        orgs_with_changes=sum(bool(o.changes) for o in plan.orgs),
        orgs_failed=sum(o.error is not None for o in plan.orgs),
    )
    return {
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "target": plan.target,
        "desired_hash": plan.desired_hash,
        "changes_digest": plan.changes_digest,
        "summary": summary,
    }


def _org_data(org: OrgPlan) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "org_name": org.org_name,
        "file": org.file,
        "live_fingerprint": org.live_fingerprint,
        "guards": {
            "mustAllow": list(org.guards.must_allow),
            "maxDeletePercent": org.guards.max_delete_percent,
        },
        "desired": org.desired,
        "notes": list(org.notes),
        "error": org.error,
        "refusals": [refusal.to_json() for refusal in org.refusals],
        "changes": [change.to_json() for change in org.changes],
        "summary": org.summary(),
        "mcp": org.mcp.to_json() if org.mcp is not None else None,
    } | ({"unmanaged": [u.to_json() for u in org.unmanaged]} if org.unmanaged else {})


def dump_plan(plan: Plan) -> str:
    return _encoded(plan_data(plan)) + "\n"


def plan_chunks(plan: Plan) -> Iterator[str]:
    """`dump_plan(plan)` in pieces, an org at a time: the plan file of a thousand orgs is
    tens of megabytes, and encoding it whole took more memory than the plan itself
    (tests/test_plan_streaming.py checks the pieces join to `dump_plan`)."""
    text = _encoded({**_head(plan), "orgs": []})
    if not plan.orgs:
        yield text + "\n"
        return
    # The top level is indented by two spaces, and a JSON string holds no raw line break,
    # so this is the orgs key's own line, whatever the other keys hold.
    before, found, after = text.partition('\n  "orgs": []')
    assert found, "the plan file has a top-level orgs key"
    yield before + '\n  "orgs": ['
    for index, org in enumerate(plan.orgs):
        body = _encoded(_org_data(org)).replace("\n", "\n    ")
        yield ("," if index else "") + "\n    " + body
    yield "\n  ]" + after + "\n"


def write_plan(plan: Plan, stream: TextIO) -> None:
    """Write the plan file to `stream`, an org at a time (`plan_chunks`)."""
    for chunk in plan_chunks(plan):
        stream.write(chunk)


def _encoded(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def load_plan(text: str, origin: str) -> Plan:
    """Read a plan file; anything malformed is a usage error naming the file."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise UsageError(
                f"{origin}: plan format_version {version!r} is not supported (expected {FORMAT_VERSION!r})"
            )
        orgs = tuple(_org_from(o) for o in data["orgs"])
        plan = Plan(target=str(data["target"]), desired_hash=str(data["desired_hash"]), orgs=orgs)
        digest = data.get("changes_digest")
        if digest is not None and digest != plan.changes_digest:
            raise ValueError("its changes_digest does not match its changes (was it edited?)")
        return plan
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(
            f"{origin}: not a rovo-reconcile plan file ({type(e).__name__}: {e})"
        ) from e


_ALLOWLIST_FIELDS = {"name", "enabled", "apps", "allowMobileBypass", "addresses"}


def _change_from(data: dict[str, Any]) -> Change:
    """One change, checked well enough that apply can trust its shape."""
    action, resource, effect = data["action"], data["resource"], data["effect"]
    if action not in ("create", "update", "delete"):
        raise ValueError(f"unknown action {action!r}")
    if resource not in ("mcp.settings", "mcp.domain", "ip_allowlist"):
        raise ValueError(f"unknown resource {resource!r}")
    if effect not in ("widens", "narrows", "neutral"):
        raise ValueError(f"unknown effect {effect!r}")
    before, after = data["before"], data["after"]
    settings = resource == "mcp.settings"  # a setting is only ever updated; live may not report it
    if not settings and (
        (before is None) != (action == "create") or (after is None) != (action == "delete")
    ):
        raise ValueError(f"{data['key']}: before/after do not fit the action {action!r}")
    for value in (before, after):
        if value is None:
            continue
        if resource == "ip_allowlist" and not (
            isinstance(value, dict) and set(value) == _ALLOWLIST_FIELDS
        ):
            raise ValueError(
                f"{data['key']}: an allowlist value needs exactly {sorted(_ALLOWLIST_FIELDS)}"
            )
        if resource == "mcp.domain" and not isinstance(value, str):
            raise ValueError(f"{data['key']}: a domain value must be a string")
        if resource == "mcp.settings" and not isinstance(value, bool):
            raise ValueError(f"{data['key']}: a setting value must be true or false")
    notes = tuple(str(n) for n in data.get("notes") or ())
    written = data.get("written")
    if written is not None and not (resource == "mcp.domain" and isinstance(written, str)):
        raise ValueError(f"{data['key']}: only a domain has a written spelling, as a string")
    return Change(
        action,
        resource,
        str(data["key"]),
        before,
        after,
        effect,
        data.get("source"),
        notes,
        written,
    )


def _org_from(data: dict[str, Any]) -> OrgPlan:
    guards = Guards(
        must_allow=tuple(normalize_address(a) for a in data["guards"]["mustAllow"]),
        max_delete_percent=int(data["guards"]["maxDeletePercent"]),
    )
    desired, error = data.get("desired"), data.get("error")
    if error is None:
        # apply re-plans from `desired` to check the changes and convergence: it must be whole
        if not isinstance(desired, dict):
            raise ValueError(f"org {data['org_id']}: the desired state is missing")
        try:
            policy_from_state(desired, guards)
        except ValueError as e:  # pydantic's ValidationError and NormalizeError are ValueErrors
            raise ValueError(f"org {data['org_id']}: the desired state is not valid") from e
    return OrgPlan(
        org_id=str(data["org_id"]),
        live_fingerprint=str(data["live_fingerprint"]),
        changes=tuple(_change_from(c) for c in data["changes"]),
        file=data.get("file"),
        guards=guards,
        notes=tuple(data.get("notes") or ()),
        desired=desired,
        error=error,
        org_name=data.get("org_name"),
        refusals=tuple(
            Refusal(str(r["message"]), bool(r["forceable"])) for r in data.get("refusals") or ()
        ),
        unmanaged=tuple(
            Unmanaged(str(u["key"]), str(u["value"])) for u in data.get("unmanaged") or ()
        ),
        mcp=McpState.from_json(data.get("mcp")),
    )
