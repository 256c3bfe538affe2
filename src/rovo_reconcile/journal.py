"""The apply journal: JSON lines recording every write, each appended with one write().

Every request that writes gets two lines: an `intent` before it is sent and an `outcome`
after its answer, tied by a `request` id (see `Journal`). The README's apply section
documents the format.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rovo_reconcile.errors import RovoError, UsageError
from rovo_reconcile.lease import org_lease

__all__ = ["Journal", "JournalEntry", "Verdict"]

Verdict = Literal["landed", "not landed", "unknown"]


@dataclass(frozen=True)
class JournalEntry:
    """One write as the journal knows it; `request` ties its intent to its outcome."""

    request: str
    org_id: str
    key: str
    method: str
    path: str


class Journal:
    """JSON lines, each appended with a single write() so lines never interleave.

    Every request that writes gets two lines: an `intent` before it is sent and an
    `outcome` after its answer, tied by a `request` id. So a run killed between send
    and answer leaves an intent without an outcome, and every write the server saw
    has an intent line. An ambiguous answer (none, 429, 5xx, or too large to read) gets
    its outcome after the re-reads that decide it, with the `verdict`: landed, not landed
    or unknown, and a `note` when a write found not landed is not sent again.
    """

    def __init__(
        self, path: Path, target: str | None = None, context: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.target = target
        """Named in every line, so one journal can serve several targets."""
        self.context = dict(context or {})
        """Merged into every line: where the run happened (commit, run_id, actor, run_url from
        `run_context.github_context`) and why (`reason` of a forced apply). The keys of the
        write itself win over a context key of the same name."""
        self.run = uuid.uuid4().hex[:12]
        """This run's id: the prefix of its request ids."""
        self._requests = itertools.count(1)

    def check_writable(self) -> None:
        """Fail before the first write, not after it, when the journal cannot be appended to."""
        try:
            self._append(b"")
        except OSError as e:
            raise UsageError(f"--journal {self.path}: cannot append to it ({e.strerror})") from e

    def intent(self, org_id: str, key: str, method: str, path: str) -> JournalEntry:
        """Record a write about to be sent (before a byte of it leaves); returns its entry."""
        entry = JournalEntry(f"{self.run}-{next(self._requests)}", org_id, key, method, path)
        self._record(entry, {"event": "intent"})
        return entry

    def outcome(
        self,
        entry: JournalEntry,
        status: int | None,
        result: Literal["ok", "error", "ambiguous"],
        verdict: Verdict | None = None,
        note: str | None = None,
    ) -> None:
        """Record what came of `entry`: the HTTP status (None: no answer) and, for an
        ambiguous answer, whether the re-read found the write landed (and, in `note`, why
        a write found not landed was not sent again)."""
        fields: dict[str, object] = {"event": "outcome", "status": status, "result": result}
        if verdict is not None:
            fields["verdict"] = verdict
        if note is not None:
            fields["note"] = note
        self._record(entry, fields)

    @contextmanager
    def lease(self, org_id: str) -> Iterator[None]:
        """Hold this org's lease on this journal's target for the block (`org_lease`)."""
        with org_lease(self.target, org_id, self.run):
            yield

    def _record(self, entry: JournalEntry, fields: Mapping[str, object]) -> None:
        line = {
            **self.context,
            "time": _now(),
            "request": entry.request,
            "org": entry.org_id,
            "key": entry.key,
            "method": entry.method,
            "path": entry.path,
            **fields,
            **({"target": self.target} if self.target is not None else {}),
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
        try:
            self._append(data)
        except OSError as e:
            sent = "was sent" if fields.get("event") == "outcome" else "was not sent: it"
            raise RovoError(
                f"{entry.method} {entry.path} {sent} could not be journalled in {self.path} "
                f"({e.strerror}); stopping this org"
            ) from e

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
