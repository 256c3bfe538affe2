"""`access` answers as text for people or JSON for machines. Pure."""

from __future__ import annotations

import json
from typing import Any

from rovo_reconcile.access.answer import (
    OAUTH_ONLY_SENTENCES,
    TOKEN_BOUND_SENTENCE,
    TOKEN_READING,
    Answer,
    Control,
    combine,
)
from rovo_reconcile.access.view import OrgView

__all__ = ["FORMAT_VERSION", "render_access"]

FORMAT_VERSION = "1"
_LABELS = {"authentication": "authentication", "domain": "domain", "ip": "IP allowlist"}
_AUTH = {"oauth": "OAuth 2.1", "token": "an API token"}


def render_access(view: OrgView, answers: list[Answer], fmt: str) -> str:
    if fmt == "json":
        return _json(view, answers)
    if len(answers) == 1:
        return _one(view, answers[0])
    return _matrix(view, answers)


def _header(view: OrgView) -> str:
    return f"org {view.org_id} ({view.origin})"


def _title(answer: Answer) -> str:
    q = answer.question
    uri = f" ({q.uri})" if q.uri is not None and q.tool is not None else ""
    source = ", ".join(q.addresses) or "an unknown address"
    return f"{q.who}{uri} calling {q.app} from {source} with {_AUTH[q.auth]}"


def _one(view: OrgView, answer: Answer) -> str:
    lines = [_header(view), f"{_title(answer)}: {answer.verdict.upper()}"]
    for control in answer.controls:
        lines.extend(_control_lines(control))
    if answer.other_reading is not None:
        same = answer.other_reading == answer.verdict
        lines.append(
            f"  reading: API-token clients are taken to pass the domain rules ({TOKEN_READING}); "
            f"if they were bound by them too, the answer would be {answer.other_reading.upper()}"
            + (" as well" if same else "")
        )
    lines.extend(f"  note: {note}" for note in answer.notes)
    return "\n".join(lines) + "\n"


def _control_lines(control: Control) -> list[str]:
    label = f"{_LABELS[control.control]:<16}"
    lines = [f"  {label}{control.verdict:<12}{control.reason}"]
    lines.extend(f"  {'':<16}{'':<12}at {where}" for where in control.where)
    return lines


def _matrix(view: OrgView, answers: list[Answer]) -> str:
    auth = _AUTH[answers[0].question.auth]
    lines = [
        _header(view),
        f"Which AI tools' MCP calls get through, with {auth}; "
        "each tool calling from its published egress ranges unless --from is given:",
    ]
    app = None
    width = max(len(a.question.who) for a in answers)
    for answer in answers:
        if answer.question.app != app:
            app = answer.question.app
            lines.append("")
            lines.append(app)
        why = "; ".join(
            f"{_LABELS[c.control]}: {c.reason}" + (f" ({', '.join(c.where)})" if c.where else "")
            for c in answer.controls
            if c.verdict in ("blocked", "unknown")
        )
        if not why:
            why = "; ".join(
                f"{_LABELS[c.control]} at {', '.join(c.where)}"
                for c in answer.controls
                if c.where and c.verdict == "allowed"
            )
        lines.append(f"  {answer.question.who:<{width}}  {answer.verdict:<8} {why}")
    verdicts = [a.verdict for a in answers]
    lines.append("")
    lines.append(
        f"{verdicts.count('allowed')} allowed, {verdicts.count('blocked')} blocked, "
        f"{verdicts.count('unknown')} unknown"
    )
    return "\n".join(lines) + "\n"


def _control_json(control: Control) -> dict[str, Any]:
    return {
        "control": control.control,
        "verdict": control.verdict,
        "reason": control.reason,
        "where": list(control.where),
    }


def _answer_json(answer: Answer) -> dict[str, Any]:
    q = answer.question
    tool = q.tool
    return {
        "app": q.app,
        "tool": None
        if tool is None
        else {
            "name": tool.name,
            "display_name": tool.display_name,
            "redirect_uris": list(tool.redirect_uris),
            "egress": list(tool.egress),
            "egress_source": tool.egress_fact.source,
            "egress_retrieved": tool.egress_fact.retrieved,
            "egress_verified": tool.egress_fact.verified,
        },
        "redirect_uri": str(q.uri) if q.uri is not None else None,
        "addresses": list(q.addresses),
        "addresses_from": q.addresses_from,
        "auth": q.auth,
        "verdict": answer.verdict,
        "verdict_if_domains_bind_tokens": answer.other_reading,
        "controls": [_control_json(c) for c in answer.controls],
        "domain_if_domains_bind_tokens": None
        if answer.other_domain is None
        else _control_json(answer.other_domain),
        "notes": list(answer.notes),
    }


def _json(view: OrgView, answers: list[Answer]) -> str:
    data = {
        "format_version": FORMAT_VERSION,
        "org_id": view.org_id,
        "origin": view.origin,
        "verdict": combine([a.verdict for a in answers]),
        "token_domain_reading": {
            "assumed": TOKEN_READING,
            "because": list(OAUTH_ONLY_SENTENCES),
            "contradicted_by": TOKEN_BOUND_SENTENCE,
        },
        "answers": [_answer_json(a) for a in answers],
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
