"""The `apply --format json` report: a stable document for machines and CI job summaries.

    {"format_version": "1", "target": ..., "writes": 3, "exit_code": 0,
     "summary": {"applied": 2, "failed": 0, "skipped": 1, "manual_steps": 0},
     "orgs": [{"org_id", "file", "exit_code", "message", "converged",
               "ip_allowlists_converged", "mcp", "refusals", "notes",
               "outcomes": [{"key", "action", "resource", "status", "detail"}],
               "new_plan_changes"}]}

`converged` is never true while manual MCP steps are pending (`mcp.status` "manual",
`mcp.manual_steps`); `ip_allowlists_converged` says whether the IP allowlists match
(null when the policy manages none, or apply stopped before it could tell). `mcp` is
the plan's `McpState` (null for an org that could not be read).

Keys are sorted and the orgs come in the order apply reports them (by org id),
so the same result always prints the same bytes. `new_plan_changes` is null
unless the plan was stale: then it lists the changes against live as it is now,
each as in the JSON plan.
"""

from __future__ import annotations

import json
from typing import Any

from rovo_reconcile.apply import ApplyResult, OrgResult

__all__ = ["FORMAT_VERSION", "render_apply_json"]

FORMAT_VERSION = "1"


def render_apply_json(result: ApplyResult) -> str:
    counts = {"applied": 0, "failed": 0, "skipped": 0}
    for org in result.orgs:
        for outcome in org.outcomes:
            counts[outcome.status] += 1
    report = {
        "format_version": FORMAT_VERSION,
        "target": result.target,
        "writes": result.writes,
        "exit_code": result.exit_code,
        "summary": {**counts, "manual_steps": sum(len(o.manual_steps) for o in result.orgs)},
        "orgs": [_org(org) for org in result.orgs],
    }
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _org(org: OrgResult) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "file": org.file,
        "exit_code": org.exit_code,
        "message": org.message,
        "converged": org.fully_converged,
        "ip_allowlists_converged": org.ip_allowlists_converged,
        "mcp": org.mcp.to_json() if org.mcp is not None else None,
        "refusals": [{"message": r.message, "forceable": r.forceable} for r in org.refusals],
        "notes": list(org.notes),
        "outcomes": [
            {
                "key": o.change.key,
                "action": o.change.action,
                "resource": o.change.resource,
                "status": o.status,
                "detail": o.detail,
            }
            for o in org.outcomes
        ],
        "new_plan_changes": None
        if org.new_plan is None
        else [c.to_json() for c in org.new_plan.changes],
    } | ({"unmanaged": [u.to_json() for u in org.unmanaged]} if org.unmanaged else {})
