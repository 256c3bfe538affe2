"""Whether to colour output, and ANSI styles for the renderers that do.

One decision for every command (https://no-color.org, https://force-color.org):
`NO_COLOR` set to anything non-empty turns colour off, and wins; otherwise
`FORCE_COLOR` set non-empty (and not `0`) turns it on, so a CI log that renders
ANSI can have it; otherwise colour follows whether the stream is a terminal.
An empty variable means nothing, as if it were not set.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["STYLES", "Paint", "use_color"]

STYLES: Mapping[str, str] = {
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "bold-red": "\x1b[1;31m",
    "bold-yellow": "\x1b[1;33m",
}
_RESET = "\x1b[0m"


def use_color(isatty: bool, environ: Mapping[str, str]) -> bool:
    """Colour for a stream that is (or is not) a terminal, given the environment."""
    if environ.get("NO_COLOR", ""):
        return False
    if environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return isatty


class Paint:
    """`paint("red", text)` wraps text in a style when enabled, and returns it unchanged when not."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, style: str, text: str) -> str:
        if not self.enabled or not text:
            return text
        return f"{STYLES[style]}{text}{_RESET}"
