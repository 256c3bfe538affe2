"""What the tool could check of an org's Rovo MCP settings, so no output claims more.

Atlassian publishes no API for the Rovo MCP settings (DESIGN sections 5 and 10): the
`rovo-mcp` endpoints are this project's own contract, and a real organization answers
404 on them. `--mcp` says what a team expects:

- `auto` (default): call the endpoints; a 404 means "not readable through any API";
- `api`: call them, and a 404 is that org's error (exit 1): the team relies on the API;
- `manual`: never call them; every MCP setting of the policy is a manual step.

Per org the plan then holds an `McpState`: `status` is `api` (planned, applied and
drift-checked through the API), `manual` (the policy manages MCP but the settings could not
be read: each setting becomes a click path in Atlassian Administration, apply never calls the
org converged while steps are pending, drift calls MCP unverifiable) or `unmanaged` (the
policy has no `mcp` section); `live` says how the read went (`read`, `unavailable` for a 404,
`not-read` under `--mcp manual`).

Pure data and words; the click paths come from `clickpath.manual_steps`, passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from rovo_reconcile.errors import RovoError
from rovo_reconcile.policy.model import McpSettings, OrgPolicy

__all__ = [
    "MCP_MODES",
    "McpLive",
    "McpMode",
    "McpState",
    "McpStatus",
    "McpUnavailable",
    "manual_mcp",
    "steps_phrase",
    "unavailable_note",
]

McpMode = Literal["auto", "api", "manual"]
McpLive = Literal["read", "unavailable", "not-read"]
McpStatus = Literal["api", "manual", "unmanaged"]
MCP_MODES: tuple[McpMode, ...] = get_args(McpMode)
_STATUSES: tuple[McpStatus, ...] = get_args(McpStatus)
_LIVES: tuple[McpLive, ...] = get_args(McpLive)


class McpUnavailable(RovoError):
    """`--mcp api`, and the org answered 404 on the MCP settings endpoints (exit 1)."""


def unavailable_note(org_id: str) -> str:
    """What the live read says of an org that answered 404 on the MCP endpoints."""
    return (
        f"org {org_id}: the Rovo MCP settings API answered 404; MCP settings are left alone "
        "and must be managed in Atlassian Administration"
    )


def steps_phrase(count: int) -> str:
    return f"{count} manual step{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class McpState:
    status: McpStatus
    live: McpLive
    manual_steps: tuple[str, ...] = ()
    """The click paths that set the policy's MCP settings by hand (status `manual` only)."""

    @property
    def pending(self) -> int:
        """Manual steps the tool cannot do or check; 0 unless the status is `manual`."""
        return len(self.manual_steps) if self.status == "manual" else 0

    @property
    def headline(self) -> str | None:
        """`MCP settings: not readable through any API; 3 manual steps`, for manual orgs."""
        if self.status != "manual":
            return None
        why = "not readable through any API" if self.live == "unavailable" else "not read"
        if self.live == "not-read":
            why += " (--mcp manual)"
        return f"MCP settings: {why}; {steps_phrase(len(self.manual_steps))}"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "live": self.live, "manual_steps": list(self.manual_steps)}

    @staticmethod
    def from_json(data: object) -> McpState | None:
        """The state a plan file recorded; None when it records none (a plan from before)."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise ValueError("mcp: expected an object or null")
        status = next((s for s in _STATUSES if s == data.get("status")), None)
        live = next((v for v in _LIVES if v == data.get("live")), None)
        steps = data.get("manual_steps")
        if status is None or live is None:
            raise ValueError(
                f"mcp: unknown status {data.get('status')!r} or live {data.get('live')!r}"
            )
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ValueError("mcp.manual_steps: expected a list of strings")
        return McpState(status, live, tuple(steps))


def manual_mcp(
    desired: OrgPolicy,
    live: McpLive,
    notes: Sequence[str],
    steps: Callable[[McpSettings], Sequence[str]],
) -> tuple[McpState, OrgPolicy, tuple[str, ...]]:
    """The org's MCP state, and the desired policy and notes to plan with.

    Where the policy manages MCP but the settings were not read, the MCP section is taken
    out of what is planned (nothing can be compared or written) and becomes `steps` (the
    click paths); the reader's 404 note is dropped, since the state says it.
    """
    if desired.mcp is None:
        return McpState("unmanaged", live), desired, tuple(notes)
    if live == "read":
        return McpState("api", live), desired, tuple(notes)
    state = McpState("manual", live, tuple(steps(desired.mcp)))
    kept = tuple(n for n in notes if n != unavailable_note(desired.org.id))
    return state, desired.model_copy(update={"mcp": None}), kept
