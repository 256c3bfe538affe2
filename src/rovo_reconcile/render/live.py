"""The live state of one organization as a policy-shaped YAML or JSON document (`show`)."""

from __future__ import annotations

import io
import json
from typing import Any

from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.policy.model import OrgPolicy

__all__ = ["live_document", "policy_document", "render_export", "render_live"]


def policy_document(policy: OrgPolicy) -> dict[str, Any]:
    """A policy file's data for `policy`: plain strings where an entry has no note or expiry."""
    doc: dict[str, Any] = {"apiVersion": "rovo-reconcile/v1", "kind": "OrgPolicy"}
    doc["org"] = policy.org.model_dump(by_alias=True, exclude_none=True)
    if policy.mcp is not None:
        mcp = policy.mcp.model_dump(by_alias=True, exclude_none=True, mode="json")
        if "domains" in mcp:
            mcp["domains"] = [_entry(d, "pattern") for d in mcp["domains"]]
        doc["mcp"] = mcp
    if policy.ip_allowlists is not None:
        lists = []
        for allowlist in policy.ip_allowlists:
            data = allowlist.model_dump(by_alias=True, exclude_none=True, mode="json")
            data["addresses"] = [_entry(a, "address") for a in data["addresses"]]
            lists.append(data)
        doc["ipAllowlists"] = lists
    return doc


def _entry(data: dict[str, Any], key: str) -> Any:
    return data[key] if set(data) == {key} else data


def live_document(org: LiveOrg, target_label: str) -> dict[str, Any]:
    doc = policy_document(org.state)
    doc["live"] = {
        "target": target_label,
        "mcpAvailable": org.mcp_available,
        "mcpDomainIds": dict(sorted(org.domain_ids.items())),
        "ipAllowlists": [
            {
                "name": a.name,
                "id": a.id,
                "resources": [
                    {"id": r.id, "app": r.app, "applicationStatus": r.application_status}
                    for r in sorted(a.resources, key=lambda r: (r.app or "~", r.id))
                ],
                **({"partialApps": list(a.partial_apps)} if a.partial_apps else {}),
            }
            for a in sorted(org.allowlists.values(), key=lambda a: a.name)
        ],
        "workspaces": [{"id": w.id, "name": w.name, "typeKey": w.type_key} for w in org.workspaces],
        **({"notes": list(org.notes)} if org.notes else {}),
    }
    return doc


def render_live(org: LiveOrg, target_label: str, fmt: str) -> str:
    doc = live_document(org, target_label)
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    return f"# live state of org {org.org_id} on target {target_label}\n" + dump_yaml(doc)


def render_export(
    org: LiveOrg,
    target_label: str,
    *,
    schema: str = "../schemas/rovo-policy.schema.json",
    name: str | None = None,
) -> str:
    """A policy file holding exactly the live state: it plans to no changes. The first line
    is the modeline that points editors at the schema (`schema`, relative to the file)."""
    header = (
        f"# yaml-language-server: $schema={schema}\n"
        f"# Exported from org {org.org_id} on target {target_label} by rovo-reconcile export.\n"
        "# Add notes, expiry dates and guards (mustAllow, maxDeletePercent) before committing.\n"
    )
    state = org.state
    if name is not None:
        state = state.model_copy(update={"org": state.org.model_copy(update={"name": name})})
    return header + dump_yaml(policy_document(state))


def dump_yaml(data: Any) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # one line per value: long domain patterns as keys never wrap
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()
