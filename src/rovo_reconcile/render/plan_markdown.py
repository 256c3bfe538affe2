"""The Markdown plan: a pull-request comment a reviewer can take in at a glance.

A summary line first, then every change that widens access in a table of its
own, then one collapsed `<details>` block per org holding the text plan's lines
in a ```diff fence. GitHub refuses comments over 65,535 characters, and a CI job
that cannot post its plan hides it, so when the text would pass `limit` the
per-org blocks are dropped from the end, with a note that says how many and
where the full plan is. The summary and the widening table always stay.

Allowlist names, domains, notes and errors come from people and from the API,
so nothing from them may close a fence, end a `<details>` or inject HTML:

- allowlist names are shown as JSON string literals whose `<`, `>`, `&`, a
  backtick and `|` are `\\u` escapes, so a name is never markup anywhere;
- text in a fence or code span is literal; the fence is longer than any run of
  backticks inside it, and control characters are escaped (no stray newlines);
- text in Markdown or HTML context is escaped with character references;
- domain patterns, addresses and URLs are shown in code spans, never as
  escaped text: GitHub autolinks a bare `https://...` and the link swallows the
  character references (`https://x.example/&#42;&#42;` becomes a broken link).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from rovo_reconcile.plan import Change, OrgPlan, Plan
from rovo_reconcile.render.plan_text import (
    SYMBOLS,
    change_details,
    change_title,
    count_phrase,
    manual_lines,
    manual_phrase,
    refusal_text,
    shown,
    unmanaged_text,
)

__all__ = [
    "DEFAULT_LIMIT",
    "FULL_PLAN_AT",
    "MIN_LIMIT",
    "code_span",
    "fenced",
    "html_safe_quoted",
    "md_inline",
    "md_text",
    "render_plan_markdown",
]

DEFAULT_LIMIT = 65_000
"""Below GitHub's 65,535 so a workflow can add its own marker line."""
MIN_LIMIT = 2_000
"""Room for the summary, a clipped widening table and the notes."""
_CLIP = 200
"""Longest name or target shown in the always-present part of the comment."""

_HTML_SAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "`": "\\u0060", "|": "\\u007c"}
_MD_SPECIAL = re.compile(r"[\\`*_\[\]<>|~&$@#]")
"""Marks that can start markup, math (`$`), a mention (`@`) or a reference (`#`)."""


def html_safe_quoted(name: str) -> str:
    """A name as a JSON string literal that is inert in Markdown and HTML."""
    text = shown(json.dumps(name, ensure_ascii=False))
    return "".join(_HTML_SAFE.get(c, c) for c in text)


def md_text(text: str) -> str:
    """`text` for Markdown or HTML context, each mark that could be markup made a character reference.

    A reference renders as the character itself and never as structure.
    """
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", shown(text))


_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)\S*[^\s,;:.!?)\]'\"]")
"""A URL or domain pattern in free text; trailing punctuation is the sentence's, not the URL's."""


def md_inline(text: str, *, in_table: bool = False) -> str:
    """Free text (a note, an error, a reason) for Markdown: like `md_text`, with every URL or
    domain pattern in it shown as a code span, which GitHub never autolinks."""
    text = shown(text)
    out, at = [], 0
    for match in _URL.finditer(text):
        out.append(md_text(text[at : match.start()]))
        out.append(code_span(match.group(), in_table=in_table))
        at = match.end()
    out.append(md_text(text[at:]))
    return "".join(out)


def code_span(text: str, *, in_table: bool = False) -> str:
    """`text` as inline code, whatever backticks it holds (CommonMark's variable delimiters)."""
    text = shown(text)
    if in_table:
        text = text.replace("|", "\\|")  # GFM splits cells on `|` even inside code
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(text: str, info: str = "text") -> str:
    """`text` in a fenced code block longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


FULL_PLAN_AT = "in the job log and in the `--out` plan file"
"""Where a cut comment says the full plan is; a CI job names its artifact and summary instead."""

Reverts = frozenset[tuple[str, str]]
"""(org id, change key) of changes that would be made without the PR: they undo live drift."""


def render_plan_markdown(
    plan: Plan,
    *,
    limit: int = DEFAULT_LIMIT,
    preface: str = "",
    full_plan_at: str = FULL_PLAN_AT,
    reverts: Reverts | None = None,
) -> str:
    """The plan as a PR comment of at most `limit` characters.

    `preface` (Markdown the caller vouches for: a marker, the commit, the run) goes first;
    `reverts`, when known, tells apart changes that undo live drift from those the PR makes.
    Guard refusals and widening changes are kept before any per-org detail is.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, not {limit}")
    head = _GAP.join(p for p in (preface.strip("\n"), _summary(plan), _refusals(plan)) if p)
    widening = [(org, c) for org in plan.orgs for c in org.changes if c.effect == "widens"]
    blocks = [
        _org_block(org, reverts)
        for org in plan.orgs
        if org.changes or org.notes or org.error is not None or org.manual_steps
    ]
    cut_note = _cut_note(len(blocks), full_plan_at)
    # Four parts at most, joined by blank lines; the cut note is reserved at its longest.
    reserve = len(head) + len(_ORGS_HEADING) + len(cut_note) + 3 * len(_GAP) + 1
    if reserve > limit - MIN_LIMIT // 2:  # hundreds of refusals: keep the start of the list
        head = head[: limit - MIN_LIMIT - len(_HEAD_CUT)] + _HEAD_CUT
        reserve = len(head) + len(_ORGS_HEADING) + len(cut_note) + 3 * len(_GAP) + 1
    widening_part = _widening(widening, limit - reserve, full_plan_at, reverts)
    budget = limit - reserve - len(widening_part)
    kept: list[str] = []
    for block in blocks:
        if len(block) + len(_GAP) > budget:
            break  # cut from here on, so the note can speak of "the last N orgs"
        kept.append(block)
        budget -= len(block) + len(_GAP)

    parts = [head, widening_part]
    if kept:
        parts.append(_ORGS_HEADING + _GAP.join(kept))
    if len(kept) < len(blocks):
        parts.append(_cut_note(len(blocks) - len(kept), full_plan_at))
    text = _GAP.join(p for p in parts if p) + "\n"
    assert len(text) <= limit, "the reserve above keeps the comment within the limit"
    return text


_GAP = "\n\n"
_HEAD_CUT = "\n\n> **Note:** the list above was cut to stay under GitHub's comment size limit."
_ORGS_HEADING = "### Changes by org" + _GAP


def _summary(plan: Plan) -> str:
    counts = plan.summary()
    failed = sum(org.error is not None for org in plan.orgs)
    with_changes = sum(bool(org.changes) for org in plan.orgs)
    scope = [count_phrase(len(plan.orgs), "org"), f"{with_changes} with changes"]
    if failed:
        scope.append(f"{failed} could not be planned")
    refused = sum(bool(org.refusals) for org in plan.orgs)
    if refused:
        scope.append(f"**apply will refuse {refused}**")
    if with_changes:
        widens = f"{counts['widens']} widen access"
        verdict = (
            f"{counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete; {f'**{widens}**' if counts['widens'] else widens}"
        )
    elif failed:
        verdict = "no changes in the orgs that could be read"
    elif plan.manual[0]:
        verdict = "no changes through the API"
    else:
        verdict = "no changes, live matches the policies"
    target = code_span(_clip(plan.target))
    manual = manual_phrase(plan)  # MCP settings no API could read: never "live matches"
    manual = f" **{manual.removesuffix('.')}**, by hand (see below)." if manual else ""
    return f"**rovo-reconcile plan** for target {target}: {verdict} ({', '.join(scope)}).{manual}"


def _org_label(org: OrgPlan, *, in_table: bool = False) -> str:
    """The org's id in a code span, after its name when the policy gives one."""
    ident = code_span(_clip(org.org_id), in_table=in_table)
    if not org.org_name:
        return ident
    return f"{md_text(_clip(org.org_name))} ({ident})"


def _refusals(plan: Plan) -> str:
    """Every guard refusal, in full: the reason a merge would not apply."""
    items = [
        f"- {_org_label(org)}: {md_text(refusal_text(r))}"
        for org in plan.orgs
        for r in org.refusals
    ]
    if not items:
        return ""
    return "### :no_entry: Apply will refuse\n\n" + "\n".join(items)


def _origin(org: OrgPlan, change: Change, reverts: Reverts | None) -> str:
    if reverts is None:
        return ""
    if (org.org_id, change.key) in reverts:
        return " *(reverts live drift)*"
    return " *(this PR)*"


def _widening(
    items: list[tuple[OrgPlan, Change]], budget: int, full_plan_at: str, reverts: Reverts | None
) -> str:
    """The widening table, clipped to `budget` characters with a note when it had to be."""
    if not items:
        return ""
    head = (
        f"### Widening changes ({len(items)})\n\n"
        "These let more clients in. Review them first.\n\n"
        "| org | change | source |\n| --- | --- | --- |"
    )
    rows = [_widening_row(org, change, reverts) for org, change in items]
    used = len(head) + len(_GAP) + len(_widening_note(len(items), full_plan_at))
    shown_rows: list[str] = []
    for row in rows:
        if used + 1 + len(row) > budget:
            break
        shown_rows.append(row)
        used += 1 + len(row)
    text = "\n".join([head, *shown_rows])
    if len(shown_rows) < len(rows):
        text += _GAP + _widening_note(len(rows) - len(shown_rows), full_plan_at)
    return text


def _widening_row(org: OrgPlan, change: Change, reverts: Reverts | None) -> str:
    title = f"{SYMBOLS[change.action]} {change_title(change, quote=html_safe_quoted)}"
    why = _why(change)
    change_cell = code_span(_clip(title), in_table=True) + (f" {why}" if why else "")
    change_cell += _origin(org, change, reverts)
    for note in change.notes:
        change_cell += f"<br>{md_text(_clip(note))}"
    if change.source:
        source = code_span(_clip(change.source), in_table=True)
    else:
        source = "only in live" if change.action == "delete" else ""
    return f"| {_org_label(org, in_table=True)} | {change_cell} | {source} |"


def _why(change: Change) -> str:
    """What makes an allowlist change widen, so the table can be read without the details."""
    if change.resource != "ip_allowlist" or change.action == "create":
        return ""
    before = change.before
    if change.action == "delete":
        return "(deletes an enabled allowlist)"
    after = change.after
    reasons = []
    if before["enabled"] and not after["enabled"]:
        reasons.append("disables it")
    added = [a for a in after["addresses"] if a not in set(before["addresses"])]
    if added:
        reasons.append(
            f"adds {code_span(str(added[0]), in_table=True)}"
            if len(added) == 1
            else f"adds {len(added)} addresses"
        )
    dropped = [a for a in before["apps"] if a not in set(after["apps"])]
    if dropped:
        reasons.append("stops covering " + ", ".join(md_text(str(a)) for a in dropped))
    if after["allowMobileBypass"] and not before["allowMobileBypass"]:
        reasons.append("allows mobile bypass")
    return "(" + "; ".join(reasons) + ")" if reasons else ""


def _widening_note(count: int, full_plan_at: str) -> str:
    return (
        f"> **Note:** {count} more widening {'change is' if count == 1 else 'changes are'} "
        "not listed here, to stay under GitHub's comment size limit. "
        f"The full plan is {full_plan_at}."
    )


def _org_block(org: OrgPlan, reverts: Reverts | None) -> str:
    where = f" ({md_text(org.file)})" if org.file else ""
    name = f"{md_text(org.title)}{where}"  # HTML <summary>: no Markdown code spans
    if org.error is not None:
        return f"- **{name}: could not be planned:** {md_inline(org.error)}"
    widens = sum(c.effect == "widens" for c in org.changes)
    counts = count_phrase(len(org.changes), "change") if org.changes else "no changes"
    if widens:
        counts += f", {widens} widen access"
    if org.manual_steps:
        counts += f", {count_phrase(len(org.manual_steps), 'manual MCP step')}"
    body = "\n".join(_diff_lines(org, reverts))
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    return (
        f"<details><summary>{name}: {counts}</summary>\n\n"
        f"{fence}diff\n{body}\n{fence}\n\n</details>"
    )


def _diff_lines(org: OrgPlan, reverts: Reverts | None) -> Iterable[str]:
    for change in org.changes:
        effect = "[WIDENS]" if change.effect == "widens" else f"[{change.effect}]"
        source = f"  {shown(change.source)}" if change.source else ""
        title = change_title(change, quote=html_safe_quoted)
        origin = _origin(org, change, reverts).strip(" *")
        yield f"{SYMBOLS[change.action]} {title}  {effect}{source}" + (
            f"  {origin}" if origin else ""
        )
        for detail in change_details(change):
            yield "    " + detail
        for note in change.notes:
            yield f"    note: {shown(note)}"
    yield from manual_lines(org)
    for note in org.notes:
        yield f"note: {shown(note)}"
    for entry in org.unmanaged:
        yield shown(unmanaged_text(entry))
    for refusal in org.refusals:
        yield shown(refusal_text(refusal))


def _cut_note(count: int, full_plan_at: str) -> str:
    return (
        f"> **Note:** the details of {count_phrase(count, 'org')} were cut to stay under "
        f"GitHub's comment size limit. The full plan is {full_plan_at}."
    )
