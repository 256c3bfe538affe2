"""Edit a YAML file's text where it must change and nowhere else.

ruamel.yaml composes the file into nodes that know where they start and end in the
text; the edits here replace those spans (a scalar, a list entry's lines, a key's
line) and leave every other character as it was: comments, blank lines, key order,
quoting, flow or block style, indentation, line endings.

Why not ruamel's round-trip dump: it re-emits the whole file, so it evens out
indentation, re-spaces `key:   value`, drops CRLF, and keeps each comment on the
entry *before* it, so deleting an entry takes the next entry's comment with it. A
diff of its output shows lines nobody changed. Span edits cannot.

New entries copy their neighbours: the same indentation, plain string or mapping,
quoting, flow or block, and a blank line between entries where the list has them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rovo_reconcile.policy.yaml_source import YamlRejected, parse_text

__all__ = ["Flow", "Value", "YamlText", "render_scalar"]


class Flow(list):  # type: ignore[type-arg]
    """A list value to write in flow style (`[a, b]`); a plain list is written as a block."""


Value = str | bool | int | list["Value"] | dict[str, "Value"]


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str
    order: int
    """Queue order: of two insertions at one place, the one queued first comes first."""


def render_scalar(value: str | bool | int, *, flow: bool = False, quote: str | None = None) -> str:
    """A scalar as YAML text that the policy loader reads back as `value`.

    Strings are plain where that reads back unchanged (inside `[...]` too, with `flow`),
    else quoted; `quote` asks for the neighbours' quoting (`'` or `"`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if quote == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if quote != '"' and _reads_back(value, flow):
        return value
    return json.dumps(value, ensure_ascii=False)


def _reads_back(text: str, flow: bool) -> bool:
    if not text or text != text.strip() or "\n" in text:
        return False
    source = f"x: [{text}]\n" if flow else f"x: {text}\n"
    try:
        doc, problems = parse_text(source, "<value>")
    except YamlRejected:
        return False
    return not problems and doc.data == {"x": [text] if flow else text}


class YamlText:
    """One file's text, its composed nodes, and the edits queued on it (`result` applies them)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.root: Node = YAML(typ="rt").compose(text)
        self._line_starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self._line_starts.append(index + 1)
        self._edits: list[_Edit] = []
        self.seq_offset = self._guess_seq_offset()

    # ------------------------------------------------------------------ finding nodes

    @staticmethod
    def get(node: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
        """The (key, value) nodes of `key` in mapping `node`, or None."""
        if not isinstance(node, MappingNode):
            return None
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node, value_node
        return None

    def at(self, *keys: str) -> tuple[ScalarNode, Node] | None:
        """The (key, value) nodes at a path of mapping keys from the root."""
        found: tuple[ScalarNode, Node] | None = None
        node: Node | None = self.root
        for key in keys:
            found = self.get(node, key)
            if found is None:
                return None
            node = found[1]
        return found

    @staticmethod
    def scalar(node: Node | None) -> str | None:
        return node.value if isinstance(node, ScalarNode) else None

    def entry_value(self, item: Node, key: str) -> tuple[str | None, ScalarNode | None]:
        """A list entry's main value: the plain string itself, or the mapping's `key` scalar."""
        if isinstance(item, ScalarNode):
            return item.value, item
        found = self.get(item, key)
        if found is not None and isinstance(found[1], ScalarNode):
            return found[1].value, found[1]
        return None, None

    # ------------------------------------------------------------------ positions

    def _line(self, index: int) -> int:
        low, high = 0, len(self._line_starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._line_starts[middle] <= index:
                low = middle
            else:
                high = middle - 1
        return low

    def _line_text(self, line: int) -> str:
        if line < 0 or line >= len(self._line_starts):
            return ""
        end = self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.text)
        return self.text[self._line_starts[line] : end].rstrip("\r\n")

    def _blank(self, line: int) -> bool:
        return 0 <= line < len(self._line_starts) and not self._line_text(line).strip()

    def _comment_only(self, line: int) -> bool:
        return self._line_text(line).lstrip().startswith("#")

    def _line_start(self, line: int) -> int:
        return self._line_starts[line] if line < len(self._line_starts) else len(self.text)

    def _after_line(self, line: int) -> int:
        """The index just past `line`'s line break (the end of the text on its last line)."""
        return self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.text)

    def _end(self, node: Node) -> int:
        """Just past the node's last character that is not white space."""
        if isinstance(node, MappingNode) and not node.flow_style and node.value:
            key, value = node.value[-1]
            return max(self._end(key), self._end(value))
        if isinstance(node, SequenceNode) and not node.flow_style and node.value:
            return self._end(node.value[-1])
        end: int = node.end_mark.index
        while end > node.start_mark.index and self.text[end - 1] in " \t\r\n":
            end -= 1
        return end

    def _last_line(self, node: Node) -> int:
        end = self._end(node)
        return self._line(max(end - 1, node.start_mark.index))

    def _colon_after(self, key: ScalarNode) -> int:
        return self.text.index(":", key.end_mark.index)

    def _guess_seq_offset(self) -> int:
        """How far this file indents a block list's dash past its key (0 or 2, usually)."""

        def walk(node: Node, key_column: int | None) -> int | None:
            if isinstance(node, SequenceNode):
                if not node.flow_style and node.value and key_column is not None:
                    return max(0, int(node.start_mark.column) - key_column)
                for item in node.value:
                    if (found := walk(item, None)) is not None:
                        return found
            elif isinstance(node, MappingNode):
                for key, value in node.value:
                    if (found := walk(value, int(key.start_mark.column))) is not None:
                        return found
            return None

        found = walk(self.root, None)
        return 2 if found is None else found

    # ------------------------------------------------------------------ edits

    def _queue(self, start: int, end: int, text: str) -> None:
        self._edits.append(_Edit(start, end, text, len(self._edits)))

    def result(self) -> str:
        """The text with every queued edit made; overlapping edits are a bug of ours."""
        edits = sorted(self._edits, key=lambda e: (e.start, e.end, e.order))
        for first, second in itertools.pairwise(edits):
            if second.start < first.end:
                raise AssertionError(f"overlapping edits {first} and {second}")
        text = self.text
        for edit in reversed(edits):
            text = text[: edit.start] + edit.text + text[edit.end :]
        return text

    def set_scalar(self, node: Node, value: str | bool | int) -> None:
        """Replace a scalar, keeping its quoting and, for true/false, its capitals."""
        assert isinstance(node, ScalarNode)
        old = self.text[node.start_mark.index : node.end_mark.index]
        if isinstance(value, bool):
            new = render_scalar(value)
            new = new.upper() if old.isupper() else new.title() if old.istitle() else new
        else:
            new = render_scalar(value, flow=self._in_flow(node), quote=node.style)
        self._queue(node.start_mark.index, node.end_mark.index, new)

    def _in_flow(self, node: Node) -> bool:
        def walk(current: Node, flow: bool) -> bool | None:
            if current is node:
                return flow
            children: list[Node] = []
            if isinstance(current, MappingNode):
                children = [n for pair in current.value for n in pair]
            elif isinstance(current, SequenceNode):
                children = list(current.value)
            inner = flow or bool(getattr(current, "flow_style", False))
            for child in children:
                if (found := walk(child, inner)) is not None:
                    return found
            return None

        return bool(walk(self.root, False))

    def delete_key(self, mapping: Node, key: str) -> None:
        """Remove `key` and its value from a mapping (not its only key)."""
        assert isinstance(mapping, MappingNode)
        pairs = mapping.value
        index = next(i for i, (k, _) in enumerate(pairs) if self.scalar(k) == key)
        key_node, value_node = pairs[index]
        if mapping.flow_style:
            if index + 1 < len(pairs):
                self._queue(key_node.start_mark.index, pairs[index + 1][0].start_mark.index, "")
            else:
                self._queue(self._end(pairs[index - 1][1]), self._end(value_node), "")
            return
        if index + 1 < len(pairs):
            # up to the next key: also right when this key sits on the list entry's dash line
            self._queue(key_node.start_mark.index, pairs[index + 1][0].start_mark.index, "")
            return
        first = self._line(key_node.start_mark.index)
        self._queue(self._line_start(first), self._after_line(self._last_line(value_node)), "")

    def insert_key(self, mapping: Node, after: str, key: str, value: str | bool | int) -> None:
        """Add `key: value` to a mapping right after the key `after`."""
        assert isinstance(mapping, MappingNode)
        anchor_key, anchor_value = next((k, v) for k, v in mapping.value if self.scalar(k) == after)
        if mapping.flow_style:
            pair = f", {key}: {render_scalar(value, flow=True)}"
            self._queue(self._end(anchor_value), self._end(anchor_value), pair)
            return
        column = int(anchor_key.start_mark.column)
        at = self._after_line(self._last_line(anchor_value))
        line = " " * column + f"{key}: {render_scalar(value)}" + self.newline
        self._queue(at, at, self._break_before(at) + line)

    def _break_before(self, at: int) -> str:
        """A line break to write first when inserting at the end of a last line without one."""
        return self.newline if at == len(self.text) and not self.text.endswith("\n") else ""

    # ------------------------------------------------------------------ lists

    def edit_list(
        self,
        key: ScalarNode,
        seq: Node,
        delete: set[int],
        insert: Mapping[int, Sequence[Value]],
    ) -> None:
        """Delete entries (by index) and insert values after entries (`insert[i]` goes after
        entry i; `insert[-1]` before the first), in one edit of the list `seq` under `key`."""
        assert isinstance(seq, SequenceNode)
        if not delete and not any(insert.values()):
            return
        if seq.flow_style:
            if not seq.value and any(isinstance(v, dict) for vs in insert.values() for v in vs):
                self._flow_to_block(key, seq, [v for vs in insert.values() for v in vs])
            else:
                self._edit_flow_list(seq, delete, insert)
        else:
            self._edit_block_list(key, seq, delete, insert)

    def _neighbour(self, seq: SequenceNode, index: int) -> Node | None:
        items = seq.value
        if not items:
            return None
        found: Node = items[min(max(index, 0), len(items) - 1)]
        return found

    def _edit_flow_list(
        self, seq: SequenceNode, delete: set[int], insert: Mapping[int, Sequence[Value]]
    ) -> None:
        items: list[Node] = seq.value
        quote = self._quote_of(self._neighbour(seq, 0))

        def new(values: Sequence[Value]) -> list[str]:
            return [self._flow(value, quote) for value in values]

        if items:
            start, end = items[0].start_mark.index, self._end(items[-1])
            seps = [
                self.text[self._end(a) : b.start_mark.index] for a, b in itertools.pairwise(items)
            ]
        else:  # `[]`, perhaps `[ ]`: fill the brackets
            start, end = seq.start_mark.index + 1, seq.end_mark.index - 1
            seps = []
        plain = next((sep for sep in seps if "#" not in sep), ", ")
        # (text, original index or None): two neighbours kept from the original keep the
        # separator between them (comments included); every other pair gets a plain one
        parts: list[tuple[str, int | None]] = [(t, None) for t in new(insert.get(-1, ()))]
        for index, item in enumerate(items):
            if index not in delete:
                parts.append((self.text[item.start_mark.index : self._end(item)], index))
            parts.extend((t, None) for t in new(insert.get(index, ())))
        joined = parts[0][0] if parts else ""
        for (_, before), (text, after) in itertools.pairwise(parts):
            adjacent = before is not None and after == before + 1
            joined += (seps[before] if adjacent and before is not None else plain) + text
        self._queue(start, end, joined)

    def _flow_to_block(self, key: ScalarNode, seq: SequenceNode, values: Sequence[Value]) -> None:
        """`key: []` receiving mappings becomes a block list (a long `[{...}]` line reads badly)."""
        self._queue(self._colon_after(key) + 1, seq.end_mark.index, "")
        column = int(key.start_mark.column) + self.seq_offset
        at = self._after_line(self._line(seq.end_mark.index))
        lines = [line for value in values for line in self._block_item(value, column, column + 2)]
        text = "".join(line + self.newline for line in lines)
        self._queue(at, at, self._break_before(at) + text)

    def _edit_block_list(
        self,
        key: ScalarNode,
        seq: SequenceNode,
        delete: set[int],
        insert: Mapping[int, Sequence[Value]],
    ) -> None:
        items: list[Node] = seq.value
        key_line = self._line(key.start_mark.index)
        firsts: list[int] = []
        lasts: list[int] = []
        for index, item in enumerate(items):
            floor = lasts[index - 1] if index else key_line
            firsts.append(self._first_line(seq, item, floor))
            lasts.append(self._last_line(item))
        gap = len(items) > 1 and self._blank(lasts[0] + 1)
        # whole lines to delete, in runs; a blank line between two deleted entries goes too
        doomed: set[int] = set()
        for index in delete:
            doomed.update(range(firsts[index], lasts[index] + 1))
        for line in range(key_line + 1, lasts[-1] + 1):
            if self._blank(line) and line - 1 in doomed and self._next_nonblank(line) in doomed:
                doomed.add(line)
        runs = _runs(sorted(doomed))
        deletions: list[tuple[int, int]] = []
        for first, last in runs:
            if self._blank(first - 1) and first - 1 > key_line and self._blank(last + 1):
                first -= 1  # keep one blank line where the entry stood between two
            elif (
                first - 1 == key_line
                and self._blank(last + 1)
                and self._next_nonblank(last + 1) <= lasts[-1]
            ):
                # no blank line left between the key and the new first entry; a blank line
                # after the list's last entry is the enclosing list's, and stays
                last += 1
            start, end = self._line_start(first), self._after_line(last)
            deletions.append((start, end))
            self._queue(start, end, "")
        kept = [i for i in range(len(items)) if i not in delete]
        if not kept and not any(insert.values()):
            self._queue(self._colon_after(key) + 1, self._colon_after(key) + 1, " []")
            return
        dash = int(seq.start_mark.column)
        for after, values in sorted(insert.items()):
            if not values:
                continue
            model = self._neighbour(seq, after if after >= 0 else 0)
            assert model is not None
            content = int(model.start_mark.column)
            if self._line(model.start_mark.index) != self._line_of_dash(seq, model):
                content = dash + 2
            quote = self._quote_of(model)
            chunks = [self.newline.join(self._block_item(v, dash, content, quote)) for v in values]
            body = (self.newline + (self.newline if gap else "")).join(chunks)
            if after >= 0:
                at = self._after_line(lasts[after])
                text = self._break_before(at) + (self.newline if gap else "") + body + self.newline
            else:
                at = self._line_start(firsts[0])
                text = body + self.newline + (self.newline if gap else "")
            for start, end in deletions:  # never inside a deleted run: at its start instead
                if start < at < end:
                    at = start
            self._queue(at, at, text)

    def _next_nonblank(self, line: int) -> int:
        while self._blank(line):
            line += 1
        return line

    def _line_of_dash(self, seq: SequenceNode, item: Node) -> int:
        """The line of an entry's `-` (the entry's own line, unless it starts below its dash)."""
        column = int(seq.start_mark.column)
        line = self._line(item.start_mark.index)
        while line > 0:
            text = self._line_text(line)
            if text[column : column + 1] == "-" and text[:column].strip() == "":
                return line
            line -= 1
        return line

    def _first_line(self, seq: SequenceNode, item: Node, floor: int) -> int:
        """An entry's first line: its dash, or the comment lines right above it (its own)."""
        line = self._line_of_dash(seq, item)
        while line - 1 > floor and self._comment_only(line - 1):
            line -= 1
        return line

    @staticmethod
    def _quote_of(node: Node | None) -> str | None:
        if isinstance(node, ScalarNode):
            return node.style if node.style in ("'", '"') else None
        if isinstance(node, MappingNode) and node.value:
            return YamlText._quote_of(node.value[0][1])
        return None

    # ------------------------------------------------------------------ rendering new values

    def _flow(self, value: Value, quote: str | None = None) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {self._flow(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self._flow(v) for v in value) + "]"
        return render_scalar(value, flow=True, quote=quote)

    def _block_item(
        self, value: Value, dash: int, content: int, quote: str | None = None
    ) -> list[str]:
        """A new list entry as lines: `- value`, or a mapping whose first key sits on the dash line."""
        lead = " " * dash + "-" + " " * max(1, content - dash - 1)
        if not isinstance(value, dict):
            shown = (
                self._flow(value) if isinstance(value, list) else render_scalar(value, quote=quote)
            )
            return [lead + shown]
        lines: list[str] = []
        for number, (name, inner) in enumerate(value.items()):
            pair = self._block_pair(name, inner, content, quote if number == 0 else None)
            pair[0] = (lead if number == 0 else " " * content) + pair[0]
            lines.extend(pair)
        return lines

    def _block_pair(self, key: str, value: Value, column: int, quote: str | None) -> list[str]:
        """`key: value` at `column` (the first line without its indentation)."""
        if isinstance(value, Flow) or (isinstance(value, list) and not value):
            return [f"{key}: {self._flow(list(value))}"]
        if isinstance(value, list):
            dash = column + self.seq_offset
            lines = [f"{key}:"]
            for item in value:
                lines.extend(self._block_item(item, dash, dash + 2))
            return lines
        if isinstance(value, dict):
            lines = [f"{key}:"]
            for name, inner in value.items():
                pair = self._block_pair(name, inner, column + 2, None)
                pair[0] = " " * (column + 2) + pair[0]
                lines.extend(pair)
            return lines
        return [f"{key}: {render_scalar(value, quote=quote)}"]


def _runs(lines: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for line in lines:
        if runs and runs[-1][1] == line - 1:
            runs[-1] = (runs[-1][0], line)
        else:
            runs.append((line, line))
    return runs
