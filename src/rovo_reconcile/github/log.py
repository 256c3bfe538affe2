"""What a job prints to its log: the workflow commands GitHub should act on, and text that must
not be taken for one.

GitHub's runner reads any stdout line that starts (after spaces) with `::` as a command
(`::add-mask::`, `::error::`, `::stop-commands::`). A plan or report holds names, domains and
notes from policies and from live state, so it is printed between `::stop-commands::TOKEN`
and `::TOKEN::`, with a token nobody can guess: inside, nothing is a command.
"""

from __future__ import annotations

import secrets

from rovo_reconcile.render.report import escape_data, escape_property

__all__ = ["annotation", "inert"]


def inert(text: str) -> str:
    """`text` with workflow commands switched off around it."""
    token = secrets.token_hex(16)
    body = text if text.endswith("\n") else text + "\n"
    return f"::stop-commands::{token}\n{body}::{token}::\n"


def annotation(level: str, title: str, message: str) -> str:
    """One `::error title=...::message` line, escaped so `message` stays one annotation."""
    return f"::{level} title={escape_property(title)}::{escape_data(message)}"
