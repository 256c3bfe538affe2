"""YAML bytes -> plain data (dicts, lists, str, int, float, bool, None) with positions.

The policy is security configuration, so the loader accepts plain data only and
refuses, before anything can blow up, whatever YAML can do beyond that: anchors,
aliases (and with them alias bombs), merge keys, custom tags, duplicate keys,
non-UTF-8 bytes, files over 1 MiB, nesting deeper than 64, several documents.

It reads ruamel.yaml's event stream and builds the data itself, so it stops at
the first refused event instead of materialising anything, and it resolves plain
scalars with the YAML 1.2 core schema (`on` and `yes` stay strings; dates stay
strings too, checked later by the schema).

Two paths read the events. The fast one takes them from the C parser of
`ruamel.yaml.clib` (libyaml, with the same line and column marks) and accepts only
plain data: at the first anchor, alias, tag, merge key, duplicate or non-text key,
second document, directive, deep nesting or parse error it gives up, and the exact
path (ruamel's pure-Python parser, below) reads the file again and reports the
problem with its usual message and position. A file is never accepted by one
path that the other would refuse.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rovo_reconcile.policy.problems import ERROR, Mark, Problem

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "DataPath",
    "SourceDocument",
    "YamlRejected",
    "load_document",
    "parse_text",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

DataPath = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"([-+]?)\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


@dataclass
class SourceDocument:
    """Plain data from one file, with the position of every value and every mapping key."""

    file: str
    data: Any
    values: dict[DataPath, Mark] = field(default_factory=dict)
    keys: dict[DataPath, Mark] = field(default_factory=dict)

    def mark(self, path: DataPath, *, key: bool = False) -> Mark:
        """Position of the node at `path` (its key with key=True), else of its nearest ancestor."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            # A list item has no key: its own position stands for it.
            at_key = key and end == len(path) and bool(path) and isinstance(path[-1], str)
            table = self.keys if at_key else self.values
            if prefix in table:
                return table[prefix]
        return Mark(1, 1)


class YamlRejected(Exception):
    """The file is not plain YAML data we accept; carries the located problem."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_document(path: Path, display: str | None = None) -> tuple[SourceDocument, list[Problem]]:
    """Read and parse one policy file. Raises YamlRejected; returns soft problems alongside."""
    name = display or str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as e:
        raise YamlRejected(
            Problem(name, 1, 1, ERROR, "file.unreadable", f"cannot read the file: {e.strerror}")
        ) from e
    if len(raw) > MAX_BYTES:
        raise YamlRejected(
            Problem(
                name,
                1,
                1,
                ERROR,
                "file.too-large",
                "the file is larger than 1 MiB; a policy for one organization is far smaller",
                "split it, one organization per file",
            )
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start].decode("utf-8", "replace")
        mark = _mark_at(before, len(before))
        raise YamlRejected(
            Problem.at(
                name,
                mark,
                ERROR,
                "file.encoding",
                f"the file is not UTF-8 (byte 0x{raw[e.start]:02x})",
                "save the file as UTF-8",
            )
        ) from e
    return parse_text(text.removeprefix("\ufeff"), name)


def parse_text(text: str, file: str) -> tuple[SourceDocument, list[Problem]]:
    _check_flow_depth(text, file)
    fast = _parse_plain_fast(text, file)
    if fast is not None:
        return fast, []
    return _parse_exact(text, file)


def _parse_exact(text: str, file: str) -> tuple[SourceDocument, list[Problem]]:
    """The pure-Python event stream: slower, and the reference for every refusal and mark."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    builder = _Builder(file)
    try:
        builder.run(iter(YAML(typ="safe", pure=True).parse(text)))
    except ReaderError as e:
        raise YamlRejected(
            Problem.at(
                file,
                _mark_at(text, e.position),
                ERROR,
                "yaml.character",
                f"character U+{ord(e.character) if isinstance(e.character, str) else e.character:04X} "
                "is not allowed in YAML",
                "remove it; control characters cannot appear in a policy",
            )
        ) from e
    except MarkedYAMLError as e:
        ymark = e.problem_mark or e.context_mark
        mark = Mark(ymark.line + 1, ymark.column + 1) if ymark is not None else Mark(1, 1)
        reason = "; ".join(str(part) for part in (e.context, e.problem) if part)
        if e.context and e.context_mark is not None and e.context_mark is not ymark:
            reason += f" (it started at line {e.context_mark.line + 1})"
        tab = "\t" in str(e.problem) or "\\t" in str(e.problem)
        hint = "indent with spaces: YAML does not allow tabs here" if tab else None
        raise YamlRejected(
            Problem.at(file, mark, ERROR, "yaml.syntax", f"YAML syntax error: {reason}", hint)
        ) from e
    except YAMLError as e:
        raise YamlRejected(Problem(file, 1, 1, ERROR, "yaml.syntax", f"YAML error: {e}")) from e
    except RecursionError as e:  # defence in depth; the depth limit stops us long before
        raise YamlRejected(
            Problem(file, 1, 1, ERROR, "yaml.depth", "the YAML nests too deeply")
        ) from e
    return builder.document(), builder.problems


_FLOW_SPECIAL = re.compile(r"[\"'#\[\]{}]")


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deep flow nesting (`[[[[...`) before the parser sees it.

    ruamel's scanner is quadratic in flow depth, so a 10,000-deep line would take
    seconds before the parser's own depth check could fire. Quoted strings and
    comments are skipped; a bracket inside a plain scalar can only make this
    stricter, never let a deep document through.

    A quote opens a scalar only where one starts (after a line break, `[`, `{`, `,`,
    `:`, `-` or `?`, spaces and tabs aside), and `#` starts a comment only at the start
    of a line. The scan jumps from one such character to the next with a regular
    expression, and is skipped when the text has too few brackets to nest that deep.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    index = 0
    previous = "\n"  # the last character that is not a space or tab
    search = _FLOW_SPECIAL.search
    while (found := search(text, index)) is not None:
        at = found.start()
        skipped = text[index:at].rstrip(" \t")
        if skipped:
            previous = skipped[-1]
        ch = text[at]
        if ch in "\"'":
            if previous not in "\n[{,:-?":
                previous = ch
                index = at + 1
                continue
            close = text.find(ch, at + 1)
            if close < 0:
                return
            previous = ch
            index = close + 1
        elif ch == "#":
            if previous != "\n":
                previous = ch
                index = at + 1
                continue
            newline = text.find("\n", at)
            if newline < 0:
                return
            previous = "\n"
            index = newline + 1
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlRejected(
                    Problem.at(
                        file,
                        _mark_at(text, at),
                        ERROR,
                        "yaml.depth",
                        f"the YAML nests deeper than {MAX_DEPTH} levels",
                    )
                )
            previous = ch
            index = at + 1
        else:
            depth = max(0, depth - 1)
            previous = ch
            index = at + 1


class _GiveUp(Exception):
    """The fast path met something that only the exact path may judge and report."""


_RARE_BREAKS = re.compile("[\t\x85\u2028\u2029\ufeff]")
"""Characters where libyaml and ruamel's pure parser part ways: line breaks (NEL, LS, PS)
they count differently, tabs libyaml accepts where ruamel refuses them, and byte order
marks inside the text (one at the start is removed before)."""

_DOCUMENT_END = re.compile(r"^\.\.\.(?:[ \r\n]|$)", re.MULTILINE)
"""A `...` line: libyaml takes `...` after `...` as nothing, ruamel's pure parser as a second
(empty) document, which a policy refuses. Rare in a policy, so the exact path reads it."""

_MAYBE_NOT_TEXT = frozenset("~nNtTfF0123456789+-.")
"""The first characters of every plain scalar the core schema resolves to other than text."""


@functools.cache
def _c_parser() -> Any:
    """The C parser of ruamel.yaml.clib, or None where it is not installed."""
    try:
        from _ruamel_yaml import CParser  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - an interpreter without the C extension
        return None
    return CParser


def _parse_plain_fast(text: str, file: str) -> SourceDocument | None:
    """Plain data read by the C parser, or None when the exact path must read the file."""
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.reader import Reader

    parser = _c_parser()
    if (
        parser is None
        or Reader.NON_PRINTABLE.search(text)
        or _RARE_BREAKS.search(text)
        or _DOCUMENT_END.search(text)
    ):
        return None
    try:
        return _FastBuilder(file).run(parser(text))
    except (_GiveUp, YAMLError, ValueError):
        return None


class _FastBuilder:
    """Plain data from C parser events: the `_Builder` for documents it would accept."""

    def __init__(self, file: str) -> None:
        from ruamel.yaml import events

        self.file = file
        self.values: dict[DataPath, Mark] = {}
        self.keys: dict[DataPath, Mark] = {}
        self.ev = events

    def run(self, parser: Any) -> SourceDocument:
        ev = self.ev
        get = parser.get_event
        data: Any = None
        documents = 0
        while True:
            event = get()
            kind = type(event)
            if kind is ev.DocumentStartEvent:
                documents += 1
                if documents > 1 or event.version or event.tags:
                    raise _GiveUp
                data = self.node(get, get(), (), 1)
            elif kind is ev.StreamEndEvent:
                return SourceDocument(self.file, data, self.values, self.keys)
            elif kind is not ev.StreamStartEvent and kind is not ev.DocumentEndEvent:
                raise _GiveUp

    def node(self, get: Any, event: Any, path: DataPath, depth: int) -> Any:
        ev = self.ev
        kind = type(event)
        if (
            kind not in (ev.ScalarEvent, ev.SequenceStartEvent, ev.MappingStartEvent)
            or event.anchor is not None
            or event.tag is not None
            or depth > MAX_DEPTH
        ):
            raise _GiveUp
        start = event.start_mark
        mark = Mark(start.line + 1, start.column + 1)
        if kind is ev.ScalarEvent:
            value: str = event.value
            if event.style:  # quoted or block
                self.values[path] = mark
                return value
            if not value:  # an empty value sits where its key is, not on the next line
                self.values[path] = self.keys.get(path, mark)
                return None
            self.values[path] = mark
            return _resolve_plain(value) if value[0] in _MAYBE_NOT_TEXT else value
        self.values[path] = mark
        if kind is ev.SequenceStartEvent:
            items: list[Any] = []
            end = ev.SequenceEndEvent
            while type(event := get()) is not end:
                items.append(self.node(get, event, (*path, len(items)), depth + 1))
            return items
        return self.mapping(get, path, depth)

    def mapping(self, get: Any, path: DataPath, depth: int) -> dict[str, Any]:
        ev = self.ev
        scalar, end = ev.ScalarEvent, ev.MappingEndEvent
        keys = self.keys
        result: dict[str, Any] = {}
        while type(event := get()) is not end:
            if type(event) is not scalar or event.anchor is not None or event.tag is not None:
                raise _GiveUp
            key: Any = event.value
            if not event.style:
                if key == "<<":
                    raise _GiveUp
                if not key or key[0] in _MAYBE_NOT_TEXT:
                    key = _resolve_plain(key)
                    if not isinstance(key, str):
                        raise _GiveUp
            if key in result:
                raise _GiveUp
            key_path = (*path, key)
            start = event.start_mark
            keys[key_path] = Mark(start.line + 1, start.column + 1)
            result[key] = self.node(get, get(), key_path, depth + 1)
        return result


def _mark_at(text: str, index: int) -> Mark:
    before = text[:index]
    line = before.count("\n") + 1
    return Mark(line, index - (before.rfind("\n") + 1) + 1)


class _Builder:
    """Consumes parser events and builds plain data, refusing anything else."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.values: dict[DataPath, Mark] = {}
        self.keys: dict[DataPath, Mark] = {}
        self.data: Any = None
        self.documents = 0

    def document(self) -> SourceDocument:
        return SourceDocument(self.file, self.data, self.values, self.keys)

    def reject(self, event: Any, code: str, message: str, hint: str | None = None) -> YamlRejected:
        return YamlRejected(Problem.at(self.file, _event_mark(event), ERROR, code, message, hint))

    def run(self, events: Iterator[Any]) -> None:
        from ruamel.yaml import events as ev

        for event in events:
            if isinstance(event, ev.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.reject(
                        event,
                        "yaml.documents",
                        "the file holds more than one YAML document; a policy file holds one organization",
                        "move the second document to a file of its own",
                    )
                self.data = self.node(next(events), events, (), 1)
            elif isinstance(event, (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentEndEvent)):
                continue
            else:  # pragma: no cover - the parser never yields other events here
                raise self.reject(event, "yaml.syntax", "unexpected YAML content")

    def node(self, event: Any, events: Iterator[Any], path: DataPath, depth: int) -> Any:
        from ruamel.yaml import events as ev

        if isinstance(event, ev.DocumentEndEvent):  # an empty document
            return None
        if isinstance(event, ev.AliasEvent):
            raise self.reject(
                event,
                "yaml.alias",
                f"YAML aliases (*{event.anchor}) are not allowed in a policy",
                "write the value out in full",
            )
        if getattr(event, "anchor", None):
            raise self.reject(
                event,
                "yaml.anchor",
                f"YAML anchors (&{event.anchor}) are not allowed in a policy",
                "remove the anchor and write values out in full",
            )
        if depth > MAX_DEPTH:
            raise self.reject(event, "yaml.depth", f"the YAML nests deeper than {MAX_DEPTH} levels")
        mark = _event_mark(event)
        if isinstance(event, ev.ScalarEvent) and event.value == "" and event.style is None:
            mark = self.keys.get(
                path, mark
            )  # an empty value sits where its key is, not on the next line
        self.values[path] = mark
        if isinstance(event, ev.ScalarEvent):
            return self.scalar(event)
        if isinstance(event, ev.SequenceStartEvent):
            self.check_collection_tag(event, "seq")
            items: list[Any] = []
            for item in events:
                if isinstance(item, ev.SequenceEndEvent):
                    return items
                items.append(self.node(item, events, (*path, len(items)), depth + 1))
        if isinstance(event, ev.MappingStartEvent):
            self.check_collection_tag(event, "map")
            return self.mapping(events, path, depth)
        raise self.reject(event, "yaml.syntax", "unexpected YAML content")  # pragma: no cover

    def mapping(self, events: Iterator[Any], path: DataPath, depth: int) -> dict[str, Any]:
        from ruamel.yaml import events as ev

        result: dict[str, Any] = {}
        for key_event in events:
            if isinstance(key_event, ev.MappingEndEvent):
                return result
            key = self.key(key_event, events, path, depth)
            value_event = next(events)
            if key is None or key in result:
                if key is not None:
                    first = self.keys[(*path, key)]
                    self.problems.append(
                        Problem.at(
                            self.file,
                            _event_mark(key_event),
                            ERROR,
                            "yaml.duplicate-key",
                            f"duplicate key {key!r} (first defined at line {first.line})",
                            "keep one of the two",
                        )
                    )
                self.node(value_event, events, (*path, "\0ignored"), depth + 1)
                continue
            self.keys[(*path, key)] = _event_mark(key_event)
            result[key] = self.node(value_event, events, (*path, key), depth + 1)
        raise self.reject(None, "yaml.syntax", "unterminated mapping")  # pragma: no cover

    def key(self, event: Any, events: Iterator[Any], path: DataPath, depth: int) -> str | None:
        from ruamel.yaml import events as ev

        if not isinstance(event, ev.ScalarEvent):
            # A collection or alias as a key: consume it (raising on aliases) and refuse it.
            self.node(event, events, (*path, "\0key"), depth + 1)
            self.problems.append(
                Problem.at(
                    self.file,
                    _event_mark(event),
                    ERROR,
                    "yaml.key",
                    "mapping keys must be plain text",
                )
            )
            return None
        if event.anchor:
            raise self.reject(
                event, "yaml.anchor", f"YAML anchors (&{event.anchor}) are not allowed in a policy"
            )
        if event.style is None and event.tag is None and event.value == "<<":
            raise self.reject(
                event,
                "yaml.merge-key",
                "YAML merge keys (<<) are not allowed in a policy",
                "write the merged keys out in full",
            )
        value = self.scalar(event)
        if not isinstance(value, str):
            self.problems.append(
                Problem.at(
                    self.file,
                    _event_mark(event),
                    ERROR,
                    "yaml.key",
                    f"mapping key {event.value!r} is not text",
                    f'quote it: "{event.value}"',
                )
            )
            return None
        return value

    def check_collection_tag(self, event: Any, kind: str) -> None:
        tag = _tag(event)
        if tag is not None and tag != _CORE + kind:
            raise self.reject(
                event,
                "yaml.tag",
                f"YAML tag {_shown(tag)!r} is not allowed in a policy",
                "remove the tag",
            )

    def scalar(self, event: Any) -> Any:
        tag = _tag(event)
        value: str = event.value
        if tag in (None, "!") and event.style is not None:
            return value  # quoted or block scalar
        if tag == "!" or tag == _CORE + "str":
            return value
        try:
            resolved = _resolve_plain(value)
        except ValueError:  # an integer of more digits than Python converts
            raise self.reject(
                event,
                "yaml.number",
                f"a number of {len(value)} characters is too long to read",
                "no setting takes a number that large; quote it if it is meant as text",
            ) from None
        if tag is None:
            return resolved
        expected = {
            _CORE + "int": int,
            _CORE + "float": float,
            _CORE + "bool": bool,
            _CORE + "null": type(None),
        }
        if tag not in expected:
            raise self.reject(
                event,
                "yaml.tag",
                f"YAML tag {_shown(tag)!r} is not allowed in a policy",
                "remove the tag",
            )
        want = expected[tag]
        if want is float and type(resolved) is int:
            return float(resolved)
        if type(resolved) is not want:
            raise self.reject(
                event, "yaml.tag", f"{value!r} is not a valid {tag.removeprefix(_CORE)}"
            )
        return resolved


def _shown(tag: str) -> str:
    """A tag as the user wrote it: `!!python/name` rather than its expanded form."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _tag(event: Any) -> str | None:
    tag = getattr(event, "tag", None)
    if tag is None:
        return None
    text = str(getattr(tag, "value", tag))
    return text or None


def _event_mark(event: Any) -> Mark:
    if event is None:
        return Mark(1, 1)
    return Mark(event.start_mark.line + 1, event.start_mark.column + 1)


def _resolve_plain(value: str) -> Any:
    """YAML 1.2 core schema resolution of a plain scalar."""
    if _NULL.fullmatch(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT10.fullmatch(value):
        return int(value)
    if _INT8.fullmatch(value):
        return int(value[2:], 8)
    if _INT16.fullmatch(value):
        return int(value[2:], 16)
    if _FLOAT.fullmatch(value) and any(c.isdigit() for c in value):
        return float(value)
    if match := _INF.fullmatch(value):
        return float("-inf") if match.group(1) == "-" else float("inf")
    if _NAN.fullmatch(value):
        return float("nan")
    return value
