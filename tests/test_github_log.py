"""Workflow commands in a job's log: ours are escaped, and printed plans cannot pose as one."""

from __future__ import annotations

import re

from rovo_reconcile.github.log import annotation, inert


def test_inert_text_is_fenced_by_an_unguessable_stop_commands_token() -> None:
    text = "  ~ ip_allowlist\n::add-mask::secret\n::error::fake"
    first, *body, last = inert(text).splitlines()
    token = first.removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert last == f"::{token}::"
    assert body == text.splitlines()
    assert inert(text) != inert(text), "a fresh token every time"


def test_an_annotation_stays_one_line_whatever_its_message_holds() -> None:
    line = annotation("error", "rovo-reconcile: apply, now", "50% done\nsecond::line\r")
    assert line == "::error title=rovo-reconcile%3A apply%2C now::50%25 done%0Asecond::line%0D"
