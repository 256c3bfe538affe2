"""The drift report: a read-only plan told from the live side.

A plan says what apply would do to make live match the policy; a drift report
says how live differs from the policy ("live has a domain the policy does not",
"allowlist 'X' was disabled outside Git"). Each change of the plan is one
`DriftItem`. An item named in the ack file counts as acknowledged, not as drift,
until the day after its `expires` date; from then on it counts again and the
report says the acknowledgement expired. Whether a drift *widens* access is the
plan's effect read backwards: the difference that apply would undo.

MCP settings that no API could read (`mcp_state`: a 404, or `--mcp manual`) are
reported as *unverifiable*, with the steps to check by hand: not drift (they do not
change the exit code), and never "live matches" either.

An acknowledgement that no longer matches any drift is reported too: as
*unused* when its drift has gone (delete it), and as *unmatched* when it
cannot have matched anything in this run (a typo: an org no policy names, a
section the org's policy does not manage, or a key next to a drifting key it
was surely meant to be), since such an ack silences nothing.

Pure, like every renderer: `today` is a parameter, never the clock.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, Literal

from rovo_reconcile.ack import Ack, AckSet
from rovo_reconcile.color import Paint
from rovo_reconcile.plan import Change, Effect, OrgPlan, Plan, allowlist_effect, fingerprint
from rovo_reconcile.policy.model import (
    SETTING_API_TOKEN,
    SETTING_SUPPORTED_DOMAINS,
    allowlist_key,
    domain_key,
    setting_key,
)
from rovo_reconcile.render.plan_markdown import DEFAULT_LIMIT, code_span, md_inline, md_text
from rovo_reconcile.render.plan_text import count_phrase, identity, quoted, shown, unmanaged_text

__all__ = [
    "FORMATS",
    "DriftFormat",
    "DriftItem",
    "DriftSummary",
    "UnmatchedAck",
    "drift_items",
    "drift_message",
    "drift_summary",
    "live_id",
    "render_drift",
    "unmatched_acks",
    "unused_acks",
    "unverifiable_line",
]

DriftFormat = Literal["text", "json", "markdown"]
FORMATS: tuple[DriftFormat, ...] = ("text", "json", "markdown")
FORMAT_VERSION = "1"

_REVERSED: Mapping[str, Effect] = {"widens": "narrows", "narrows": "widens", "neutral": "neutral"}


@dataclass(frozen=True)
class DriftItem:
    """How live differs from the policy for one change key of one org."""

    org_id: str
    key: str
    message: str
    acknowledged: Ack | None
    """The acknowledgement honoured today; None when the item counts as drift."""
    expired_ack: Ack | None = None
    """An acknowledgement of this item whose date has passed."""
    widens: bool = False
    """Live lets in clients the policy would not."""
    parts: tuple[str, ...] = ()
    """Each difference on its own, for reports that show them one per line; `message` joins them."""
    live: str = ""
    """`live_id` of the live value: an ack's `live` pins it to this very drift."""
    outgrown_ack: Ack | None = None
    """An acknowledgement of this key pinned to an earlier live value: live drifted further."""

    @property
    def drifted(self) -> bool:
        return self.acknowledged is None


@dataclass(frozen=True)
class DriftSummary:
    orgs: int
    drifted: int
    acknowledged: int
    widens: int
    """Unacknowledged items through which live lets in more than the policy."""
    expired_acks: int
    errors: int
    unverifiable: int = 0
    """Orgs whose MCP settings the policy manages but no API could read: not drift (exit 0),
    but never reported as matching either."""

    @property
    def clean(self) -> bool:
        """Nothing to report: `drift` exits 0 (unverifiable MCP settings are said, not counted)."""
        return self.drifted == 0 and self.errors == 0


# ------------------------------------------------------------------ items


def drift_items(plan: Plan, acks: AckSet, today: date) -> list[DriftItem]:
    """One item per change of every org, in plan order."""
    items = []
    for org in plan.orgs:
        for change in org.changes:
            live = live_id(change)
            ack = acks.find(org.org_id, change.key)
            outgrown = ack if ack is not None and ack.live not in (None, live) else None
            if outgrown is not None:
                ack = None
            active = ack if ack is not None and ack.active(today) else None
            parts = _drift_parts(change)
            items.append(
                DriftItem(
                    org_id=org.org_id,
                    key=change.key,
                    message="; ".join(parts),
                    acknowledged=active,
                    expired_ack=ack if ack is not None and active is None else None,
                    widens=_live_effect(change) == "widens",
                    parts=tuple(parts),
                    live=live,
                    outgrown_ack=outgrown,
                )
            )
    return items


def live_id(change: Change) -> str:
    """A short, stable name for the live value of a drifted key (the plan's `before`).

    `v` and 11 hex digits: the letter first keeps YAML from reading a pasted id as a number.
    """
    return (
        "v" + fingerprint({"key": change.key, "live": change.before}).removeprefix("sha256:")[:11]
    )


def _live_effect(change: Change) -> Effect:
    """What going from the policy to live did to access: the change's effect, backwards."""
    if change.resource == "ip_allowlist" and change.action == "update":
        return allowlist_effect(change.after, change.before, {})
    return _REVERSED[change.effect]


def drift_message(change: Change) -> str:
    """The change as a sentence about live (in a plan, `before` is live, `after` the policy)."""
    return "; ".join(_drift_parts(change))


@dataclass(frozen=True)
class _Words:
    """How a drift sentence shows its parts: the fixed words, domains and addresses, names."""

    prose: Callable[[str], str]
    value: Callable[[str], str]
    name: Callable[[str], str]

    def say(self, template: str, **parts: str) -> str:
        """`template` with `{part}`s filled in; only the template's own words go through `prose`."""
        return self.prose(template).format(**parts)


_PLAIN = _Words(prose=lambda text: text, value=shown, name=quoted)
_MARKDOWN = _Words(
    prose=md_text,
    value=lambda text: code_span(text, in_table=True),  # a code span is never autolinked
    name=lambda text: md_text(quoted(text)),
)


def _drift_parts(change: Change, w: _Words = _PLAIN) -> list[str]:
    name = identity(change)
    if change.resource == "mcp.settings":
        live, policy = _value(change.before), _value(change.after)
        return [w.prose(f"live {shown(name)} is {live}; the policy says {policy}")]
    if change.resource == "mcp.domain":
        if change.action == "delete":
            return [w.say("live has a domain the policy does not: {d}", d=w.value(name))]
        return [w.say("live lacks the domain {d} that the policy allows", d=w.value(name))]
    if change.action == "delete":
        return [w.say("live has an allowlist the policy does not: {n}", n=w.name(name))]
    if change.action == "create":
        return [w.say("the allowlist {n} is missing from live", n=w.name(name))]
    return _allowlist_drift(w.name(name), change.before, change.after, w)


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    return "true" if value else "false"


def _allowlist_drift(
    name: str, live: Mapping[str, Any], policy: Mapping[str, Any], w: _Words
) -> list[str]:
    parts = []
    if live["enabled"] != policy["enabled"]:
        how = "enabled" if live["enabled"] else "disabled"
        parts.append(w.say(f"allowlist {{n}} was {how} outside Git", n=name))
    extra, missing = _extra_missing(live["apps"], policy["apps"], w.prose)
    if extra:
        parts.append(
            w.say("live allowlist {n} covers apps the policy does not: {x}", n=name, x=extra)
        )
    if missing:
        parts.append(
            w.say("live allowlist {n} does not cover apps the policy lists: {x}", n=name, x=missing)
        )
    if live["allowMobileBypass"] != policy["allowMobileBypass"]:
        if live["allowMobileBypass"]:
            parts.append(
                w.say("live allowlist {n} allows mobile bypass; the policy does not", n=name)
            )
        else:
            parts.append(
                w.say("live allowlist {n} does not allow mobile bypass; the policy does", n=name)
            )
    extra, missing = _extra_missing(live["addresses"], policy["addresses"], w.value)
    if extra:
        parts.append(
            w.say("live allowlist {n} has addresses the policy does not: {x}", n=name, x=extra)
        )
    if missing:
        parts.append(
            w.say("live allowlist {n} lacks addresses the policy lists: {x}", n=name, x=missing)
        )
    return parts or [w.say("live allowlist {n} differs from the policy", n=name)]


def _extra_missing(
    live: list[Any], policy: list[Any], show: Callable[[str], str]
) -> tuple[str, str]:
    """What live has beyond the policy, and what it lacks, each in canonical order."""
    have, want = set(live), set(policy)
    extra = ", ".join(show(shown(str(x))) for x in live if x not in want)
    missing = ", ".join(show(shown(str(x))) for x in policy if x not in have)
    return extra, missing


def drift_summary(plan: Plan, items: list[DriftItem]) -> DriftSummary:
    return DriftSummary(
        orgs=len(plan.orgs),
        drifted=sum(i.drifted for i in items),
        acknowledged=sum(not i.drifted for i in items),
        widens=sum(i.drifted and i.widens for i in items),
        expired_acks=sum(i.expired_ack is not None for i in items),
        errors=sum(org.error is not None for org in plan.orgs),
        unverifiable=sum(_unverifiable(org) for org in plan.orgs),
    )


def _unverifiable(org: OrgPlan) -> bool:
    """The policy manages the org's MCP settings, and nothing could read them."""
    return org.error is None and org.mcp is not None and org.mcp.status == "manual"


def unverifiable_line(org: OrgPlan) -> str:
    """What drift says of MCP settings it could not read (empty for any other org)."""
    if not _unverifiable(org) or org.mcp is None:
        return ""
    why = "not readable through any API" if org.mcp.live == "unavailable" else "not read"
    if org.mcp.live == "not-read":
        why += " (--mcp manual)"
    settings = count_phrase(len(org.mcp.manual_steps), "setting")
    return f"MCP settings {why}: the policy's {settings} could not be checked against live"


def unused_acks(plan: Plan, acks: AckSet, items: list[DriftItem]) -> list[Ack]:
    """Acknowledgements for orgs that were read whose drift is gone: they can be deleted.

    Orgs outside this run (another shard) or whose live state could not be read
    say nothing about their acknowledgements. Those that never matched anything
    (`unmatched_acks`) are not in this list.
    """
    unmatched = {id(u.ack) for u in unmatched_acks(plan, acks, items)}
    read = {org.org_id for org in plan.orgs if org.error is None}
    used = {(i.org_id, i.key) for i in items}
    return [
        a
        for a in acks.acks
        if a.org in read and (a.org, a.key) not in used and id(a) not in unmatched
    ]


@dataclass(frozen=True)
class UnmatchedAck:
    """An acknowledgement that matches no key this run manages: most likely a typo."""

    ack: Ack
    why: str
    """Why it matches nothing, as a clause: `the policy of org X does not manage IP allowlists`."""


_SETTINGS = {
    setting_key(SETTING_SUPPORTED_DOMAINS): "allowAtlassianSupportedDomains",
    setting_key(SETTING_API_TOKEN): "apiToken",
}


def unmatched_acks(
    plan: Plan, acks: AckSet, items: list[DriftItem], *, sharded: bool = False
) -> list[UnmatchedAck]:
    """Acknowledgements that cannot have matched any drift of this run, with the reason.

    An ack names no managed key when its org has no policy (known only when the
    run is not `sharded`: another shard may hold the org), when the org's policy
    does not manage the key's section or setting, or when the key is in neither
    the policy nor the drift but is one letter or so from a key that drifts or that
    the policy names.
    Orgs that could not be read say nothing, as for `unused_acks`.
    """
    orgs = {org.org_id: org for org in plan.orgs}
    drifting: dict[str, list[str]] = {}
    for item in items:
        drifting.setdefault(item.org_id, []).append(item.key)
    used = {(i.org_id, i.key) for i in items}
    found = []
    for ack in acks.acks:
        org = orgs.get(ack.org)
        if org is None:
            if not sharded:
                found.append(UnmatchedAck(ack, f"no policy file is for org {ack.org}"))
            continue
        if org.error is not None or org.desired is None or (ack.org, ack.key) in used:
            continue
        why = _unmanaged(ack.key, org.desired)
        desired_keys = _desired_keys(org.desired)
        if why is None and ack.key not in desired_keys:
            # One letter or so from a key the policy names or that drifts: a typo. Otherwise
            # it may be a live-only entry that live no longer has (drift gone: unused).
            candidates = sorted(desired_keys) + drifting.get(ack.org, [])
            close = difflib.get_close_matches(ack.key, candidates, n=1, cutoff=0.8)
            why = (
                f"it is in neither the policy nor the drift; did you mean {close[0]}?"
                if close
                else None
            )
        if why is not None:
            found.append(UnmatchedAck(ack, why))
    return found


def _unmanaged(key: str, desired: Mapping[str, Any]) -> str | None:
    """Why the org's policy leaves `key` alone, or None when the key is in a managed section."""
    org, mcp = desired.get("org"), desired.get("mcp") or {}
    if key in _SETTINGS and mcp.get(_SETTINGS[key]) is None:
        return f"the policy of org {org} does not manage the setting {_SETTINGS[key]}"
    if key.startswith("mcp.domain:") and mcp.get("domains") is None:
        return f"the policy of org {org} does not manage MCP domains"
    if key.startswith("ip_allowlist:") and desired.get("ipAllowlists") is None:
        return f"the policy of org {org} does not manage IP allowlists"
    return None


def _desired_keys(desired: Mapping[str, Any]) -> set[str]:
    keys = {
        key for key, name in _SETTINGS.items() if (desired.get("mcp") or {}).get(name) is not None
    }
    keys.update(domain_key(d) for d in (desired.get("mcp") or {}).get("domains") or ())
    keys.update(allowlist_key(a["name"]) for a in desired.get("ipAllowlists") or ())
    return keys


# ------------------------------------------------------------------ rendering


def render_drift(
    plan: Plan,
    acks: AckSet,
    today: date,
    fmt: str,
    *,
    limit: int = DEFAULT_LIMIT,
    color: bool = False,
    sharded: bool = False,
) -> str:
    """The drift report in `fmt` (one of `FORMATS`); every format names the target.

    `limit` bounds the Markdown report (for an issue or PR comment); it is cut at
    a line boundary, least urgent sections first, with a note saying so. `color`
    adds ANSI styles to the text report, which is otherwise the same. `sharded`
    says the plan holds only some of the policies' orgs, so an ack for an org
    outside it is not a typo.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown drift format {fmt!r}; expected one of {', '.join(FORMATS)}")
    items = drift_items(plan, acks, today)
    report = _Report(
        plan,
        acks,
        items,
        drift_summary(plan, items),
        unused_acks(plan, acks, items),
        unmatched_acks(plan, acks, items, sharded=sharded),
        Paint(color),
    )
    if fmt == "json":
        return report.json()
    if fmt == "markdown":
        return report.markdown(limit)
    return report.text()


def _widen_phrase(count: int) -> str:
    return f"{count} widen{'s' if count == 1 else ''} access"


def _verdict(summary: DriftSummary) -> str:
    """`Drift: 3 items, 1 widens access; 1 acknowledged.` or the no-drift line."""
    parts = []
    if summary.drifted:
        widen = f", {_widen_phrase(summary.widens)}" if summary.widens else ""
        parts.append(f"Drift: {count_phrase(summary.drifted, 'item')}{widen}")
    elif summary.errors:
        parts.append("No drift in the orgs that could be read")
    elif summary.unverifiable:
        parts.append("No drift in what could be read")
    else:
        parts.append("No drift. Live matches the policies")
    if summary.acknowledged:
        parts.append(f"{summary.acknowledged} acknowledged")
    if summary.expired_acks:
        parts.append(f"{count_phrase(summary.expired_acks, 'acknowledgement')} expired")
    if summary.errors:
        parts.append(f"{count_phrase(summary.errors, 'org')} could not be read")
    if summary.unverifiable:
        parts.append(f"MCP settings of {count_phrase(summary.unverifiable, 'org')} unverifiable")
    return "; ".join(parts) + "."


@dataclass(frozen=True)
class _Report:
    plan: Plan
    acks: AckSet
    items: list[DriftItem]
    summary: DriftSummary
    unused: list[Ack]
    unmatched: list[UnmatchedAck]
    paint: Paint

    def where(self, ack: Ack) -> str:
        return f"{self.acks.file}:{ack.line}" if self.acks.file else f"line {ack.line}"

    # -------------------------------------------------------------- text

    def text(self) -> str:
        lines = [f"rovo-reconcile drift for target {shown(self.plan.target)}"]
        by_org: dict[str, list[DriftItem]] = {}
        for item in self.items:
            by_org.setdefault(item.org_id, []).append(item)
        for org in self.plan.orgs:
            lines.append("")
            lines.extend(self.text_org(org, by_org.get(org.org_id, [])))
        if self.unmatched:
            lines.append("")
            lines.extend(
                self.paint("yellow", f"unmatched acknowledgement at {self.where(u.ack)}: ")
                + f"{shown(u.ack.key)} in org {shown(u.ack.org)} matches no managed key "
                f"({shown(u.why)}); fix or remove it"
                for u in self.unmatched
            )
        if self.unused:
            lines.append("")
            lines.extend(
                f"unused acknowledgement at {self.where(a)}: {shown(a.key)} in org "
                f"{shown(a.org)} no longer drifts; remove it"
                for a in self.unused
            )
        lines.append("")
        verdict = _verdict(self.summary)
        lines.append(self.paint("bold-red", verdict) if self.summary.drifted else verdict)
        return "\n".join(lines) + "\n"

    def text_org(self, org: OrgPlan, items: list[DriftItem]) -> list[str]:
        where = f" ({shown(org.file)})" if org.file else ""
        paint = self.paint
        lines = [paint("bold", f"org {shown(org.title)}{where}")]
        unverifiable = unverifiable_line(org)
        if org.error is not None:
            lines.append(f"  {paint('bold-red', 'error:')} {shown(org.error)}")
        elif not items:
            lines.append(
                f"  {paint('green', 'no drift in what could be read' if unverifiable else 'no drift')}"
            )
        if unverifiable and org.mcp is not None:
            lines.append(f"  {paint('yellow', 'unverifiable')}  {unverifiable}")
            lines.extend(f"{'':16}check by hand: {shown(step)}" for step in org.mcp.manual_steps)
        for item in items:
            label = "drift" if item.drifted else "acknowledged"
            padding = " " * (12 - len(label))
            label = paint("red", label) if item.drifted else paint("green", label)
            tag = f"  {paint('bold-red', '[WIDENS]')}" if item.widens else ""
            first, *more = item.parts or (item.message,)
            lines.append(f"  {label}{padding}  {first}{tag}")
            lines.extend(f"{'':16}{part}" for part in more)
            lines.append(f"{'':16}key {shown(item.key)}, live {item.live}")
            if item.acknowledged is not None:
                ack = item.acknowledged
                lines.append(f"{'':16}until {ack.expires}: {shown(ack.reason)}")
            if item.expired_ack is not None:
                ack = item.expired_ack
                lines.append(
                    f"{'':16}the acknowledgement at {self.where(ack)} expired on "
                    f"{ack.expires}: {shown(ack.reason)}"
                )
            if item.outgrown_ack is not None:
                ack = item.outgrown_ack
                lines.append(
                    f"{'':16}the acknowledgement at {self.where(ack)} was for live {ack.live}; "
                    "live has changed since"
                )
        lines.extend(f"  note: {shown(note)}" for note in org.notes)
        lines.extend(f"  {shown(unmanaged_text(u))}" for u in org.unmanaged)
        return lines

    # -------------------------------------------------------------- json

    def json(self) -> str:
        orgs = {org.org_id: org for org in self.plan.orgs}
        data = {
            "format_version": FORMAT_VERSION,
            "target": self.plan.target,
            "items": [
                {
                    "org": i.org_id,
                    "file": orgs[i.org_id].file,
                    "key": i.key,
                    "message": i.message,
                    "widens": i.widens,
                    "live": i.live,
                    "acknowledged": _ack_json(i.acknowledged),
                    "expired_ack": _ack_json(i.expired_ack),
                    "outgrown_ack": _ack_json(i.outgrown_ack),
                }
                for i in self.items
            ],
            "errors": [
                {"org": o.org_id, "file": o.file, "error": o.error}
                for o in self.plan.orgs
                if o.error is not None
            ],
            "notes": [{"org": o.org_id, "note": n} for o in self.plan.orgs for n in o.notes],
            "mcp": [
                {
                    "org": o.org_id,
                    "file": o.file,
                    "status": _mcp_status(o),
                    "live": o.mcp.live,
                    "manual_steps": list(o.mcp.manual_steps) if _unverifiable(o) else [],
                }
                for o in self.plan.orgs
                if o.error is None and o.mcp is not None
            ],
            "unused_acks": [
                {"org": a.org, "key": a.key, "line": a.line, "expires": a.expires.isoformat()}
                for a in self.unused
            ],
            "unmatched_acks": [
                {
                    "org": u.ack.org,
                    "key": u.ack.key,
                    "line": u.ack.line,
                    "expires": u.ack.expires.isoformat(),
                    "why": u.why,
                }
                for u in self.unmatched
            ],
            "summary": {
                "orgs": self.summary.orgs,
                "drifted": self.summary.drifted,
                "acknowledged": self.summary.acknowledged,
                "widens": self.summary.widens,
                "expired_acks": self.summary.expired_acks,
                "errors": self.summary.errors,
                "mcp_unverifiable": self.summary.unverifiable,
            },
        }
        unmanaged = [{"org": o.org_id, **u.to_json()} for o in self.plan.orgs for u in o.unmanaged]
        if unmanaged:  # additive lists only: reports without them stay as they were
            data["unmanaged"] = unmanaged
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    # -------------------------------------------------------------- markdown

    def markdown(self, limit: int) -> str:
        """Sections in order of urgency, so cutting from the end drops the least urgent."""
        lines = [self.markdown_summary(), ""]
        for section in (
            self.md_drift,
            self.md_errors,
            self.md_unverifiable,
            self.md_unmatched,
            self.md_acknowledged,
            self.md_notes,
            self.md_unused,
        ):
            lines.extend(section())
        return _fit(lines, limit)

    def md_drift(self) -> list[str]:
        drifted = [i for i in self.items if i.drifted]
        if not drifted:
            return []
        lines = ["### Drift", "", "| org | how live differs | notes |", "| --- | --- | --- |"]
        for item in drifted:
            status = ["**widens access**"] if item.widens else []
            if item.expired_ack is not None:
                ack = item.expired_ack
                status.append(
                    f"acknowledgement expired {ack.expires} ({md_text(self.where(ack))}): "
                    f"{md_inline(ack.reason, in_table=True)}"
                )
            if item.outgrown_ack is not None:
                status.append(
                    f"live changed since the acknowledgement at "
                    f"{md_text(self.where(item.outgrown_ack))}"
                )
            key = (  # names come from people: escaped; patterns and settings: code, never linked
                md_text(item.key)
                if item.key.startswith("ip_allowlist:")
                else code_span(item.key, in_table=True)
            )
            status.append(f"key {key}, live {code_span(item.live)}")
            org = code_span(item.org_id, in_table=True)
            lines.append(f"| {org} | {self.md_parts(item)} | {'; '.join(status)} |")
        return [*lines, ""]

    def md_parts(self, item: DriftItem) -> str:
        """The differences of one item in one table cell, a line each, domains in code spans."""
        change = self.changes.get((item.org_id, item.key))
        parts = _drift_parts(change, _MARKDOWN) if change is not None else [md_text(item.message)]
        return "<br>".join(parts)

    @cached_property
    def changes(self) -> dict[tuple[str, str], Change]:
        return {(org.org_id, c.key): c for org in self.plan.orgs for c in org.changes}

    def md_errors(self) -> list[str]:
        failed = [(o.org_id, o.error) for o in self.plan.orgs if o.error is not None]
        if not failed:
            return []
        rows = [f"- {code_span(org)}: {md_inline(error)}" for org, error in failed]
        return ["### Could not be read", "", *rows, ""]

    def md_unverifiable(self) -> list[str]:
        rows = []
        for org in self.plan.orgs:
            line = unverifiable_line(org)
            if line and org.mcp is not None:
                rows.append(f"- {code_span(org.org_id)}: {md_inline(line)}")
                rows.extend(
                    f"  - check by hand: {md_inline(step)}" for step in org.mcp.manual_steps
                )
        return ["### MCP settings not verifiable", "", *rows, ""] if rows else []

    def md_unmatched(self) -> list[str]:
        rows = [
            f"- {md_text(self.where(u.ack))}: {code_span(u.ack.key)} in {code_span(u.ack.org)} "
            f"matches no managed key ({md_inline(u.why)}); fix or remove it"
            for u in self.unmatched
        ]
        return ["### Acknowledgements that match nothing", "", *rows, ""] if rows else []

    def md_acknowledged(self) -> list[str]:
        rows = []
        for item in self.items:
            if (ack := item.acknowledged) is not None:
                org = code_span(item.org_id, in_table=True)
                reason = md_inline(ack.reason, in_table=True)
                rows.append(f"| {org} | {self.md_parts(item)} | {ack.expires} | {reason} |")
        if not rows:
            return []
        head = ["### Acknowledged", "", "| org | how live differs | until | reason |"]
        return [*head, "| --- | --- | --- | --- |", *rows, ""]

    def md_notes(self) -> list[str]:
        rows = [f"- {code_span(o.org_id)}: {md_inline(n)}" for o in self.plan.orgs for n in o.notes]
        rows += [
            f"- {code_span(o.org_id)}: {md_inline(unmanaged_text(u))}"
            for o in self.plan.orgs
            for u in o.unmanaged
        ]
        return ["### Notes", "", *rows, ""] if rows else []

    def md_unused(self) -> list[str]:
        rows = [
            f"- {md_text(self.where(a))}: {code_span(a.key)} in {code_span(a.org)} "
            "no longer drifts; remove it"
            for a in self.unused
        ]
        return ["### Unused acknowledgements", "", *rows, ""] if rows else []

    def markdown_summary(self) -> str:
        s = self.summary
        parts = []
        if s.drifted:
            widens = f" ({_widen_phrase(s.widens)})" if s.widens else ""
            parts.append(f"**{count_phrase(s.drifted, 'item')} drifted**{widens}")
        elif s.errors:
            parts.append("no drift in the orgs that could be read")
        elif s.unverifiable:
            parts.append("no drift in what could be read")
        else:
            parts.append("no drift, live matches the policies")
        if s.acknowledged:
            parts.append(f"{s.acknowledged} acknowledged")
        if s.expired_acks:
            parts.append(f"{count_phrase(s.expired_acks, 'acknowledgement')} expired")
        if s.errors:
            parts.append(f"**{count_phrase(s.errors, 'org')} could not be read**")
        if s.unverifiable:
            parts.append(f"**MCP settings of {count_phrase(s.unverifiable, 'org')} unverifiable**")
        target = code_span(self.plan.target)
        scope = count_phrase(s.orgs, "org")
        return f"**rovo-reconcile drift** for target {target}: {', '.join(parts)} ({scope})."


def _mcp_status(org: OrgPlan) -> str:
    """`verified` (read and compared through the API), `unverifiable` or `unmanaged`."""
    assert org.mcp is not None
    if org.mcp.status == "manual":
        return "unverifiable"
    return "verified" if org.mcp.status == "api" else "unmanaged"


def _ack_json(ack: Ack | None) -> dict[str, str | None] | None:
    if ack is None:
        return None
    return {"reason": ack.reason, "expires": ack.expires.isoformat(), "live": ack.live}


def _fit(lines: list[str], limit: int) -> str:
    """Whole lines up to `limit` characters; sections come in priority order, so cut the end."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    note = (
        "\n> **Note:** the rest of this report was cut to stay under GitHub's size limit; "
        "the full report is in the job log.\n"
    )
    kept, used = [], len(note)
    for line in lines:
        if used + len(line) + 1 > limit:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept) + "\n" + note
