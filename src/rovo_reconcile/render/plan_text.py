"""The text plan: what `rovo-reconcile plan` prints, read like `terraform plan`.

One line per change (`+` create, `~` update, `-` delete) with its effect, widening
in capitals so it stands out in a wall of text, and where the policy says so.
Under an allowlist change, only the fields that change; under an MCP change, the
manual click-path, since Atlassian publishes no API for those settings.

An org whose MCP settings could not be read (`mcp_state`) gets a line saying so
(`MCP settings: not readable through any API; 2 manual steps`) and the click paths
that set them by hand; the summary counts those steps instead of saying live matches.

Names and live values come from people and from the API, so every one of them is
shown with control and bidirectional-override characters escaped: a crafted
allowlist name must not be able to move the cursor, recolour the terminal or
reorder what a reviewer reads.

The line builders (`change_title`, `change_details`) are shared with the
Markdown and drift renderers, so all three describe a change in the same words.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from rovo_reconcile.clickpath import click_path
from rovo_reconcile.plan import Change, OrgPlan, Plan, Refusal, Unmanaged

__all__ = [
    "SYMBOLS",
    "change_details",
    "change_title",
    "count_phrase",
    "identity",
    "manual_lines",
    "manual_phrase",
    "quoted",
    "refusal_text",
    "render_plan_text",
    "shown",
    "summary_line",
    "unmanaged_text",
]

SYMBOLS: Mapping[str, str] = {"create": "+", "update": "~", "delete": "-"}

_RESET = "\x1b[0m"
_COLORS: Mapping[str, str] = {
    "+": "\x1b[32m",  # green
    "~": "\x1b[33m",  # yellow
    "-": "\x1b[31m",  # red
    "widens": "\x1b[1;31m",  # bold red
    "error": "\x1b[1;31m",
    "heading": "\x1b[1m",
}
_TITLE_COLUMN = 72
"""Effects line up in a column, unless a title is longer than this."""

# Characters that change how text is displayed rather than what it says.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(text: str) -> str:
    """`text` with control and bidi-override characters escaped, safe to print anywhere."""
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_escape_char(c) for c in text)


def _escape_char(char: str) -> str:
    if char.isprintable() and char not in _BIDI:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def quoted(text: str) -> str:
    """A name in double quotes, with quotes, backslashes and control characters escaped."""
    return shown(json.dumps(text, ensure_ascii=False))


def identity(change: Change) -> str:
    """The key without its resource prefix: a pattern, an allowlist name or a setting."""
    return change.key.removeprefix(change.resource + ":")


def change_title(change: Change, *, quote: Callable[[str], str] = quoted) -> str:
    """`mcp.domain https://a.example.com/**`, `ip_allowlist "Office"`, or a setting with its values."""
    if change.resource == "mcp.settings":
        return f"mcp.settings {shown(identity(change))}: {_value(change.before)} -> {_value(change.after)}"
    if change.resource == "ip_allowlist":
        return f"ip_allowlist {quote(identity(change))}"
    return f"{change.resource} {shown(identity(change))}"


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shown(str(value))


def change_details(change: Change) -> list[str]:
    """The lines shown under a change, indented relative to it.

    An allowlist update lists only what differs (enabled, apps, mobile bypass,
    addresses: additions before removals, as apply performs them); a created or
    deleted allowlist is shown whole; an MCP change gets its manual click-path.
    """
    if change.resource == "ip_allowlist":
        if change.action == "update":
            return _allowlist_diff(change.before, change.after)
        if change.action == "create":
            return _allowlist_whole(change.after, "+")
        return _allowlist_whole(change.before, "-")
    path = click_path(change)
    return [f"manual: {shown(path)}"] if path else []


def _allowlist_whole(value: Mapping[str, Any], mark: str) -> list[str]:
    addresses = [str(a) for a in value["addresses"]]
    lines = [
        f"enabled: {_value(value['enabled'])}",
        f"apps: {', '.join(shown(str(a)) for a in value['apps']) or '(none)'}",
        f"allowMobileBypass: {_value(value['allowMobileBypass'])}",
        f"addresses:{'' if addresses else ' (none)'}",
    ]
    lines.extend(f"  {mark} {shown(a)}" for a in addresses)
    return lines


def _allowlist_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if before["enabled"] != after["enabled"]:
        lines.append(f"enabled: {_value(before['enabled'])} -> {_value(after['enabled'])}")
    lines.extend(_list_diff("apps", before["apps"], after["apps"]))
    if before["allowMobileBypass"] != after["allowMobileBypass"]:
        lines.append(
            f"allowMobileBypass: {_value(before['allowMobileBypass'])}"
            f" -> {_value(after['allowMobileBypass'])}"
        )
    lines.extend(_list_diff("addresses", before["addresses"], after["addresses"]))
    return lines


def _list_diff(label: str, before: list[Any], after: list[Any]) -> list[str]:
    """Additions then removals, each in the list's own (canonical) order."""
    old, new = set(before), set(after)
    added = [x for x in after if x not in old]
    removed = [x for x in before if x not in new]
    if not (added or removed):
        return []
    return [
        f"{label}:",
        *(f"  + {shown(str(x))}" for x in added),
        *(f"  - {shown(str(x))}" for x in removed),
    ]


def count_phrase(count: int, noun: str) -> str:
    """`1 org`, `3 orgs`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def manual_phrase(plan: Plan) -> str:
    """`MCP: 3 manual steps pending in 1 org.`, or "" when there are none."""
    steps, orgs = plan.manual
    if not steps:
        return ""
    return f"MCP: {count_phrase(steps, 'manual step')} pending in {count_phrase(orgs, 'org')}."


def manual_lines(org: OrgPlan) -> list[str]:
    """The org's MCP headline and its click paths (`manual: ...`), the second indented."""
    if org.mcp is None or org.mcp.headline is None:
        return []
    return [org.mcp.headline, *(f"    manual: {shown(step)}" for step in org.mcp.manual_steps)]


def summary_line(plan: Plan) -> str:
    """`Plan: 1 to create, 2 to update, 0 to delete; 1 widens access.` or the no-change line,
    and the manual MCP steps still pending: a plan never says live matches while it cannot
    tell."""
    counts = plan.summary()
    failed = sum(org.error is not None for org in plan.orgs)
    failure = f"{count_phrase(failed, 'org')} could not be planned." if failed else ""
    refused = sum(bool(org.refusals) for org in plan.orgs)
    if refused:
        failure = f"{failure} Apply will refuse {count_phrase(refused, 'org')}.".lstrip()
    manual = manual_phrase(plan)
    if not any(counts[a] for a in ("create", "update", "delete")):
        if failed:
            line = f"No changes in the orgs that could be read; {failure}"
            return f"{line} {manual}" if manual else line
        if manual:
            return f"No changes through the API. {manual}"
        return "No changes. Live matches the policies."
    line = (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete; {counts['widens']} widen{'s' if counts['widens'] == 1 else ''} access."
    )
    return " ".join(part for part in (line, failure, manual) if part)


# ------------------------------------------------------------------ the text plan


class _Paint:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if self.enabled else text


def render_plan_text(plan: Plan, *, color: bool = False) -> str:
    """The whole plan as text; `color` adds ANSI colours, and without it there are none."""
    paint = _Paint(color)
    lines = [f"rovo-reconcile plan for target {shown(plan.target)}"]
    for org in plan.orgs:
        lines.append("")
        lines.extend(_org_lines(org, paint))
    lines.append("")
    lines.append(_painted_summary(plan, paint))
    return "\n".join(lines) + "\n"


def unmanaged_text(entry: Unmanaged) -> str:
    """`unmanaged: 192.0.2.9/32 in allowlist 'Office' (additive: left alone)`."""
    resource, _, name = entry.key.partition(":")
    where = "the MCP domains" if resource == "mcp.domain" else f"allowlist {name!r}"
    return f"unmanaged: {entry.value} in {where} (additive: left alone)"


def refusal_text(refusal: Refusal) -> str:
    """`apply will refuse: ... (--force overrides)`, the words every renderer uses."""
    override = " (--force overrides)" if refusal.forceable else ""
    return f"apply will refuse: {refusal.message}{override}"


def _org_lines(org: OrgPlan, paint: _Paint) -> list[str]:
    where = f" ({shown(org.file)})" if org.file else ""
    lines = [paint("heading", f"org {shown(org.title)}{where}")]
    if org.error is not None:
        lines.append(f"  {paint('error', 'error:')} {shown(org.error)}")
    elif not org.changes:
        lines.append("  no changes through the API" if org.manual_steps else "  no changes")
    titles = [f"{SYMBOLS[c.action]} {change_title(c)}" for c in org.changes]
    width = max((len(t) for t in titles if len(t) <= _TITLE_COLUMN), default=0)
    for change, title in zip(org.changes, titles, strict=True):
        symbol, _, rest = title.partition(" ")
        effect = paint("widens", "[WIDENS]") if change.effect == "widens" else f"[{change.effect}]"
        source = f"  {shown(change.source)}" if change.source else ""
        padding = " " * max(0, width - len(title))
        lines.append(f"  {paint(symbol, symbol)} {rest}{padding}  {effect}{source}")
        for detail in change_details(change):
            lines.append("      " + _paint_marker(detail, paint))
        lines.extend(f"      note: {shown(note)}" for note in change.notes)
    lines.extend(f"  {line}" for line in manual_lines(org))
    lines.extend(f"  note: {shown(note)}" for note in org.notes)
    lines.extend(f"  {shown(unmanaged_text(u))}" for u in org.unmanaged)
    lines.extend(f"  {paint('error', shown(refusal_text(r)))}" for r in org.refusals)
    return lines


def _paint_marker(line: str, paint: _Paint) -> str:
    """Colour the `+`/`-` of an address or app line the way the change lines are coloured."""
    stripped = line.lstrip(" ")
    if stripped[:2] in ("+ ", "- "):
        indent = line[: len(line) - len(stripped)]
        return f"{indent}{paint(stripped[0], stripped[0])}{stripped[1:]}"
    return line


def _painted_summary(plan: Plan, paint: _Paint) -> str:
    line = summary_line(plan)
    widens = plan.summary()["widens"]
    if widens:
        phrase = f"{widens} widen access"
        line = line.replace(phrase, paint("widens", phrase), 1)
    return line
