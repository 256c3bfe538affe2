"""Where each MCP change is made by hand in Atlassian Administration.

Atlassian publishes no API for the Rovo MCP settings, so every MCP change in a
plan also carries the manual click-path, for orgs where the API is not there.
A domain to add is shown as the policy file spells it, which is what the admin
types (the plan's keys and the API use its canonical form, the same pattern).
"""

from __future__ import annotations

from rovo_reconcile.plan import Change
from rovo_reconcile.policy.model import (
    SETTING_API_TOKEN,
    SETTING_SUPPORTED_DOMAINS,
    McpSettings,
    setting_key,
)

__all__ = ["MCP_PAGE", "click_path", "manual_steps"]

MCP_PAGE = "Atlassian Administration > Apps > AI settings > Rovo MCP server"


def click_path(change: Change) -> str | None:
    """The manual steps for one MCP change; None for changes that have an API."""
    if change.key == setting_key(SETTING_SUPPORTED_DOMAINS):
        verb = "select" if change.after else "deselect"
        return f'{MCP_PAGE}: {verb} "Allow Atlassian supported domains"'
    if change.key == setting_key(SETTING_API_TOKEN):
        return f"{MCP_PAGE} > Authentication: turn API token {'on' if change.after else 'off'}"
    if change.resource == "mcp.domain" and change.action == "create":
        return f"{MCP_PAGE} > Add domain: {change.written or change.after}"
    if change.resource == "mcp.domain" and change.action == "delete":
        return f"{MCP_PAGE}: on {change.before}, select Delete"
    return None


def manual_steps(mcp: McpSettings) -> list[str]:
    """Every step that sets `mcp` by hand (when the MCP API cannot even be read)."""
    steps = []
    if mcp.allow_atlassian_supported_domains is not None:
        verb = "select" if mcp.allow_atlassian_supported_domains else "deselect"
        steps.append(f'{MCP_PAGE}: {verb} "Allow Atlassian supported domains"')
    if mcp.authentication is not None and mcp.authentication.api_token is not None:
        state = "on" if mcp.authentication.api_token else "off"
        steps.append(f"{MCP_PAGE} > Authentication: turn API token {state}")
    if mcp.domains is not None:
        patterns = ", ".join(d.written or d.pattern for d in mcp.domains) or "(none)"
        steps.append(
            f"{MCP_PAGE}: keep exactly these domains, adding and deleting as needed: {patterns}"
        )
    return steps
