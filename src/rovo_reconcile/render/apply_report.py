"""The `apply` summary: every change as applied, failed or skipped, org by org.

An org whose MCP settings no API could read is never reported "converged": the IP
allowlists may be (`IP allowlists converged; MCP: 2 manual steps pending`), and the
click paths follow (DESIGN section 10).
"""

from __future__ import annotations

from rovo_reconcile.apply import ApplyResult, OrgResult
from rovo_reconcile.mcp_state import steps_phrase
from rovo_reconcile.plan import Change, Plan
from rovo_reconcile.render.plan_text import (
    count_phrase,
    render_plan_text,
    shown,
    unmanaged_text,
)

__all__ = ["render_apply"]

_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


def render_apply(result: ApplyResult, *, journal: str | None = None) -> str:
    lines = [f"rovo-reconcile apply on target {result.target}", ""]
    for org in result.orgs:
        lines.extend(_org_lines(org, result.target))
        lines.append("")
    counts = {"applied": 0, "failed": 0, "skipped": 0}
    for org in result.orgs:
        for outcome in org.outcomes:
            counts[outcome.status] += 1
    summary = f"Apply: {counts['applied']} applied, {counts['failed']} failed, {counts['skipped']} skipped"
    summary += f"; {result.writes} write{'' if result.writes == 1 else 's'} sent."
    if not any(org.outcomes or org.message for org in result.orgs):
        summary = "Apply: nothing to do; 0 writes sent."
    manual = [len(org.manual_steps) for org in result.orgs if org.manual_steps]
    if manual:
        summary = summary.removesuffix(".").replace("nothing to do", "nothing to write")
        summary += (
            f"; MCP: {steps_phrase(sum(manual))} pending in {count_phrase(len(manual), 'org')}."
        )
    lines.append(summary)
    if journal and result.writes:
        lines.append(f"Journal: {journal}")
    # Names and messages come from people and from the API: no control character may split a
    # line (a CI log would read a line starting with `::` as a workflow command).
    return "\n".join(shown(line) for line in lines) + "\n"


def _org_lines(org: OrgResult, target: str) -> list[str]:
    where = f" ({org.file})" if org.file else ""
    name = f"{org.org_name} ({org.org_id})" if org.org_name else org.org_id
    lines = [f"org {name}{where}"]
    for outcome in org.outcomes:
        line = f"  {outcome.status:<8} {_describe(outcome.change)}"
        if outcome.detail:
            line += f": {outcome.detail}"
        lines.append(line)
    if org.message:
        lines.append(f"  {'refused' if org.exit_code == 3 else 'error'}: {org.message}")
    pending = org.manual_steps
    if pending and org.mcp is not None:
        lines.append(f"  {_manual_verdict(org)}")
        lines.append(f"  {org.mcp.headline}")
        lines.extend(f"      manual: {step}" for step in pending)
    elif org.converged:
        lines.append("  converged: live matches the policy")
    elif not org.outcomes and not org.message:
        lines.append("  nothing to write")
    lines.extend(f"  note: {note}" for note in org.notes)
    lines.extend(f"  {unmanaged_text(u)}" for u in org.unmanaged)
    if org.live_changes:
        lines.append("  live changed since the plan:")
        lines.extend(f"    {line}" for line in org.live_changes)
    if org.new_plan is not None:
        lines.append("  the plan against live state as it is now:")
        text = render_plan_text(Plan(target, "", (org.new_plan,)))
        lines.extend("    " + line if line else "" for line in text.rstrip("\n").splitlines())
    return lines


def _manual_verdict(org: OrgResult) -> str:
    """`IP allowlists converged; MCP: 2 manual steps pending`, never a plain "converged"."""
    manual = f"MCP: {steps_phrase(len(org.manual_steps))} pending"
    if not org.manages_allowlists:
        return f"{manual} (the policy manages no IP allowlists)"
    if org.ip_allowlists_converged:
        return f"IP allowlists converged; {manual}"
    return f"IP allowlists did not converge; {manual}" if org.message is None else manual


def _describe(change: Change) -> str:
    identity = change.key.partition(":")[2]
    if change.resource == "ip_allowlist":
        identity = f'"{identity}"'
    return f"{_SYMBOL[change.action]} {change.resource} {identity}"
