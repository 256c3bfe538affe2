"""Acknowledged drift: the `drift --ack FILE` format.

    acknowledged:
      - org: 6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13
        key: mcp.domain:https://pilot.example.com/**
        reason: pilot approved in SEC-123
        expires: 2027-01-31
        live: v3f9a0c2b71d      # optional: the live value the drift report showed

Every acknowledgement needs a reason and an expiry date, so known drift can be
silenced for a while but never forever: from the day after `expires` the drift
counts again. `live` (the drift report prints it for each item) pins the
acknowledgement to the live value it was written for: if live drifts further on
the same key, the new drift counts. Without it, any drift on the key is covered.

A file with no entries means no acknowledgements: `acknowledged: []`, an
`acknowledged:` with only commented-out entries under it, or an empty file
(0 bytes, or only comments), so a repository can keep an empty one ready. A
missing file is the caller's to allow (`load_acks_if_present`).

The file goes through the same YAML safety as a policy (`yaml_source`), and is
checked by hand rather than with a JSON Schema: five keys do not need one, and
hand-written messages can say what to write instead. Every problem is reported
at once, each at file:line:column.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from rovo_reconcile.errors import NormalizeError, PolicyInvalid
from rovo_reconcile.policy.model import SETTING_API_TOKEN, SETTING_SUPPORTED_DOMAINS, setting_key
from rovo_reconcile.policy.normalize import normalize_domain
from rovo_reconcile.policy.problems import ERROR, Problem
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument, YamlRejected, load_document

__all__ = ["Ack", "AckInvalid", "AckSet", "load_acks", "load_acks_if_present"]

_TOP_KEY = "acknowledged"
_FIELDS = ("org", "key", "reason", "expires", "live")
_LIVE_ID = re.compile(r"v[0-9a-f]{11}", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_SETTING_KEYS = (setting_key(SETTING_SUPPORTED_DOMAINS), setting_key(SETTING_API_TOKEN))
_KEY_PREFIXES = ("mcp.settings:", "mcp.domain:", "ip_allowlist:")
_EXAMPLE_KEY = "mcp.domain:https://pilot.example.com/**"


@dataclass(frozen=True)
class Ack:
    """One acknowledged drift item: `key` in `org` may differ from the policy until `expires`."""

    org: str
    key: str
    reason: str
    expires: date
    line: int
    """Where the entry starts in the ack file, so a report can point at it."""
    live: str | None = None
    """The `live_id` of the drift acknowledged; None covers any drift on the key."""

    def active(self, today: date) -> bool:
        """Still honoured on `today`: the expiry date itself is the last day it applies."""
        return today <= self.expires


@dataclass(frozen=True)
class AckSet:
    """The acknowledgements of one file (or none), looked up by org and change key."""

    acks: tuple[Ack, ...] = ()
    file: str | None = None
    _index: dict[tuple[str, str], Ack] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {(a.org, a.key): a for a in self.acks})

    def find(self, org_id: str, key: str) -> Ack | None:
        """The acknowledgement of `key` in `org_id`, expired or not."""
        return self._index.get((org_id, key))

    def __len__(self) -> int:
        return len(self.acks)


class AckInvalid(PolicyInvalid):
    """The ack file is not valid; `problems` holds each finding with its position."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(_line(p) for p in self.problems))


def _line(problem: Problem) -> str:
    hint = f" (hint: {problem.hint})" if problem.hint else ""
    return f"{problem.file}:{problem.line}:{problem.column}: {problem.message}{hint}"


def load_acks(path: Path) -> AckSet:
    """Read and check an ack file; raises `AckInvalid` (a `PolicyInvalid`) listing every problem."""
    try:
        doc, problems = load_document(path)
    except YamlRejected as e:
        raise AckInvalid([e.problem]) from e
    checker = _Checker(doc, list(problems))
    acks = checker.check()
    if checker.problems:
        raise AckInvalid(checker.problems)
    return AckSet(tuple(acks), doc.file)


def load_acks_if_present(path: Path) -> AckSet | None:
    """`load_acks`, or None when `path` does not exist (a file that exists must be valid)."""
    if not path.exists() and not path.is_symlink():
        return None
    return load_acks(path)


class _Checker:
    def __init__(self, doc: SourceDocument, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems

    def problem(
        self, path: DataPath, code: str, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        mark = self.doc.mark(path, key=key)
        self.problems.append(Problem.at(self.doc.file, mark, ERROR, f"ack.{code}", message, hint))

    def check(self) -> list[Ack]:
        data = self.doc.data
        if data is None:
            return []  # empty, or only comments: nothing acknowledged
        if not isinstance(data, dict):
            self.problem(
                (),
                "shape",
                f"an ack file is a mapping with one key, {_TOP_KEY!r}",
                f"start the file with `{_TOP_KEY}:` followed by a list of entries",
            )
            return []
        for name in data:
            if name != _TOP_KEY:
                self.unknown((name,), name, (_TOP_KEY,))
        if _TOP_KEY not in data:
            self.problem((), "missing", f"missing {_TOP_KEY!r}, the list of acknowledged drift")
            return []
        entries = data[_TOP_KEY]
        if entries is None:
            return []  # `acknowledged:` with every entry commented out
        if not isinstance(entries, list):
            self.problem(
                (_TOP_KEY,),
                "shape",
                f"{_TOP_KEY!r} must be a list of entries",
                "write each entry as `- org: ...` on its own line",
            )
            return []
        acks: list[Ack] = []
        seen: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(entries):
            ack = self.entry((_TOP_KEY, index), entry)
            if ack is None:
                continue
            first = seen.setdefault((ack.org, ack.key), ack.line)
            if first != ack.line:
                self.problem(
                    (_TOP_KEY, index),
                    "duplicate",
                    f"{ack.key} in org {ack.org} is already acknowledged at line {first}",
                    "keep one of the two",
                )
                continue
            acks.append(ack)
        return acks

    def unknown(self, path: DataPath, name: str, allowed: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(name, allowed, n=1)
        self.problem(
            path,
            "unknown-key",
            f"unknown key {name!r}; expected {', '.join(allowed)}",
            f"did you mean {close[0]!r}?" if close else None,
            key=True,
        )

    def entry(self, path: DataPath, entry: Any) -> Ack | None:
        if not isinstance(entry, dict):
            self.problem(
                path, "shape", "an acknowledgement is a mapping of org, key, reason and expires"
            )
            return None
        for name in entry:
            if name not in _FIELDS:
                self.unknown((*path, name), name, _FIELDS)
        org = self.text(path, entry, "org")
        key = self.change_key(path, entry)
        reason = self.text(path, entry, "reason")
        expires = self.expires(path, entry)
        live = self.live(path, entry)
        if org is None or key is None or reason is None or expires is None or live is False:
            return None
        return Ack(org, key, reason, expires, self.doc.mark(path).line, live or None)

    def live(self, path: DataPath, entry: dict[str, Any]) -> str | Literal[False]:
        """The optional pin: '' when absent, False when it is not a live id."""
        value = entry.get("live", "")
        if value == "" or (isinstance(value, str) and _LIVE_ID.fullmatch(value)):
            return str(value)
        self.problem(
            (*path, "live"),
            "value",
            f"'live' must be the live id the drift report shows (v and 11 hex digits), not {value!r}",
            "copy it from the drift report, or leave 'live' out to cover any drift on the key",
        )
        return False

    def text(self, path: DataPath, entry: dict[str, Any], name: str) -> str | None:
        if name not in entry:
            self.problem(path, "missing", f"this acknowledgement has no {name!r}")
            return None
        value = entry[name]
        if not isinstance(value, str) or not value.strip():
            self.problem((*path, name), "value", f"{name!r} must be non-empty text")
            return None
        return value.strip()

    def change_key(self, path: DataPath, entry: dict[str, Any]) -> str | None:
        """The change key as plans spell it: domain patterns are made canonical."""
        key = self.text(path, entry, "key")
        if key is None:
            return None
        where = (*path, "key")
        if not key.startswith(_KEY_PREFIXES):
            self.problem(
                where,
                "value",
                f"{key!r} is not a change key: it must start with {', '.join(_KEY_PREFIXES)}",
                f"copy the key from the drift report, such as {_EXAMPLE_KEY}",
            )
            return None
        if key.startswith("mcp.settings:") and key not in _SETTING_KEYS:
            self.problem(
                where,
                "value",
                f"{key!r} is not a setting",
                f"use {' or '.join(_SETTING_KEYS)}",
            )
            return None
        if key.startswith("mcp.domain:"):
            pattern = key.removeprefix("mcp.domain:")
            try:
                return "mcp.domain:" + normalize_domain(pattern)
            except NormalizeError:
                return key  # a live domain the API kept as it is is keyed as written
        return key

    def expires(self, path: DataPath, entry: dict[str, Any]) -> date | None:
        if "expires" not in entry:
            self.problem(
                path,
                "missing",
                "this acknowledgement has no 'expires': acknowledgements must end",
                "add `expires: YYYY-MM-DD`, the last day the drift is accepted",
            )
            return None
        value = entry["expires"]
        where = (*path, "expires")
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            self.problem(
                where, "date", f"'expires' must be a date written YYYY-MM-DD, not {value!r}"
            )
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.problem(where, "date", f"{value!r} is not a real date")
            return None
