"""Located problems: what `validate` reports, one per finding, each at file:line:column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ERROR", "WARNING", "Mark", "Problem", "Severity"]

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based line and column in a source file."""

    line: int
    column: int


@dataclass(frozen=True, order=True)
class Problem:
    """One finding. Field order is the report's sort order: file, line, column, errors first."""

    file: str
    line: int
    column: int
    severity: Severity
    code: str
    message: str
    hint: str | None = None

    @classmethod
    def at(
        cls,
        file: str,
        mark: Mark,
        severity: Severity,
        code: str,
        message: str,
        hint: str | None = None,
    ) -> Problem:
        return cls(file, mark.line, mark.column, severity, code, message, hint)
