"""Progress of multi-org runs, for stderr: the core reports each org done, the CLI shows it.

The core (`live_state.read_orgs`, `apply.apply_plan`) takes an optional
`on_done` callable and calls it with an `OrgDone` as each org finishes; it never
prints. `org_progress` is the reporter the CLI passes: a line per org for a CI
log, or one line redrawn in place on a terminal, and nothing at all when the
run has a single org.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

__all__ = ["OnOrgDone", "OrgDone", "OrgProgress", "org_progress"]

_BAR = 24
"""Width of the bar on a terminal, in characters."""


@dataclass(frozen=True)
class OrgDone:
    """One org of a run finished."""

    org_id: str
    what: str
    """What happened, as the line says it: `read`, `read failed`, `applied`, `refused`, `failed`."""
    seconds: float
    """From the start of this org's work to its end, including waits for a free request slot."""
    total: int
    """Orgs in this run, so a reporter needs to be told nothing in advance."""


OnOrgDone = Callable[[OrgDone], None]


class OrgProgress:
    """Shows each `OrgDone` on `stream`: a line each, or one live line when `live`."""

    def __init__(
        self, stream: TextIO, *, live: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.live = live
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.drawn = False

    def __call__(self, event: OrgDone) -> None:
        self.done += 1
        if event.total <= 1:
            return
        elapsed = self.clock() - self.started
        count = f"[{self.done}/{event.total}]"
        if self.live:
            filled = _BAR * self.done // event.total
            bar = "#" * filled + "-" * (_BAR - filled)
            line = f"rovo-reconcile: {count} {bar} {elapsed:.1f} s; org {event.org_id} {event.what}"
            self.stream.write(f"\r\x1b[K{line}")
            self.drawn = True
        else:
            self.stream.write(
                f"rovo-reconcile: {count} org {event.org_id} {event.what} in "
                f"{event.seconds:.2f} s ({elapsed:.1f} s elapsed)\n"
            )
        self.stream.flush()

    def close(self) -> None:
        """Clear the live line, so what is printed next starts on a clean line."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


@contextmanager
def org_progress(stream: TextIO) -> Iterator[OrgProgress]:
    """A reporter for one phase of a run (reading orgs, applying them), closed at the end."""
    reporter = OrgProgress(stream, live=stream.isatty())
    try:
        yield reporter
    finally:
        reporter.close()
