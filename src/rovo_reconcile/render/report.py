"""The `validate` report as text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json

from rovo_reconcile.color import Paint
from rovo_reconcile.policy.loader import PolicySet
from rovo_reconcile.policy.problems import Problem

__all__ = ["FORMATS", "escape_data", "escape_property", "render_report"]

FORMATS = ("text", "json", "github")


def render_report(result: PolicySet, fmt: str, *, strict: bool = False, color: bool = False) -> str:
    """The report in `fmt`; `color` adds ANSI styles to the text format, which is otherwise identical."""
    if fmt == "json":
        return _json(result, strict)
    if fmt == "github":
        return _github(result, strict)
    return _text(result, Paint(color), strict)


def _summary(result: PolicySet, strict: bool) -> str:
    files = len(result.files)
    noun = "file" if files == 1 else "files"
    errors = f"{result.errors} error{'' if result.errors == 1 else 's'}"
    warnings = f"{result.warnings} warning{'' if result.warnings == 1 else 's'}"
    if result.errors:
        verdict = "invalid"
    elif strict and result.warnings:
        verdict = "invalid under --strict"
    else:
        verdict = "valid"
    return f"{files} policy {noun} checked: {verdict} ({errors}, {warnings})"


_SEVERITY_STYLE = {"error": "bold-red", "warning": "bold-yellow"}


def _text(result: PolicySet, paint: Paint, strict: bool) -> str:
    lines = []
    for p in result.problems:
        where = paint("bold", f"{p.file}:{p.line}:{p.column}:")
        severity = paint(_SEVERITY_STYLE.get(p.severity, "bold"), f"{p.severity}:")
        lines.append(f"{where} {severity} {p.message} {paint('dim', f'[{p.code}]')}")
        if p.hint:
            lines.append(f"    {paint('dim', 'hint:')} {p.hint}")
    summary = _summary(result, strict)
    if result.errors or (strict and result.warnings):
        summary = paint("red", summary)
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _json(result: PolicySet, strict: bool) -> str:
    valid = result.errors == 0 and not (strict and result.warnings)
    report = {
        "format_version": "1",
        "valid": valid,
        "files": [
            {
                "file": f,
                "errors": _count(result.problems, f, "error"),
                "warnings": _count(result.problems, f, "warning"),
            }
            for f in result.files
        ],
        "problems": [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "severity": p.severity,
                "code": p.code,
                "message": p.message,
                "hint": p.hint,
            }
            for p in result.problems
        ],
        "summary": {
            "files": len(result.files),
            "errors": result.errors,
            "warnings": result.warnings,
        },
    }
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _count(problems: list[Problem], file: str, severity: str) -> int:
    return sum(p.file == file and p.severity == severity for p in problems)


def _github(result: PolicySet, strict: bool) -> str:
    lines = []
    for p in result.problems:
        message = p.message + (f" (hint: {p.hint})" if p.hint else "")
        props = ",".join(
            f"{k}={escape_property(v)}"
            for k, v in (
                ("file", p.file),
                ("line", str(p.line)),
                ("col", str(p.column)),
                ("title", p.code),
            )
        )
        lines.append(f"::{p.severity} {props}::{escape_data(message)}")
    lines.append(_summary(result, strict))
    return "\n".join(lines) + "\n"


def escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped as GitHub's runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (`file=`, `title=`): also `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
