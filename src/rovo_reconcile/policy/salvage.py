"""The well-formed parts of a document the JSON Schema refused, for one-round validation.

A file with schema errors still gets the semantic checks of everything the errors do not
touch, so one run reports every problem (`apps: [jria]` no longer hides `10.0.0.1/8` in
the next entry). Each schema error is cut out at the smallest part that holds it: the list
item it sits in becomes `SKIPPED` (indices, and so every `file:line:column`, stay where
they were), and outside any list the offending key is dropped. An unknown key is dropped
alone. The rules skip `SKIPPED` items; checks that judge the whole (the lockout guard, an
allowlist whose addresses all expired) are not made on a salvaged document, since a part
they would count may be the one that was cut.

Nothing here decides validity: the document stays invalid, and no model is returned.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

__all__ = ["SKIPPED", "Invalid", "salvage"]

PLACEHOLDER_ORG: Final = "00000000-0000-0000-0000-000000000000"
"""Stands for an org id that is missing or malformed: the rules need one to build a model."""


class _Skipped:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED: Final = _Skipped()
"""A list item the schema refused; the rules pass over it."""


@dataclass(frozen=True)
class Invalid:
    """Where the schema refused the document, and the unknown keys there, if that was why."""

    path: DataPath
    unknown_keys: tuple[str, ...] = ()


def salvage(doc: SourceDocument, invalid: Iterable[Invalid]) -> SourceDocument | None:
    """A copy of `doc` with each invalid part cut out, or None when nothing checkable is left."""
    if not isinstance(doc.data, dict):
        return None
    data = copy.deepcopy(doc.data)
    for part in invalid:
        _cut(data, part)
    org = data.get("org")
    if not isinstance(org, dict) or not isinstance(org.get("id"), str):
        data["org"] = {"id": PLACEHOLDER_ORG}
    return replace(doc, data=data)


def _cut(data: dict[str, Any], part: Invalid) -> None:
    path = part.path
    if not path:  # the document itself: only unknown keys can be cut out of it
        for key in part.unknown_keys:
            data.pop(key, None)
        return
    # The innermost list item on the path, if any: it goes whole.
    last_index = max((i for i, step in enumerate(path) if isinstance(step, int)), default=None)
    if last_index is not None:
        container = _walk(data, path[:last_index])
        index = path[last_index]
        assert isinstance(index, int)
        if isinstance(container, list) and index < len(container):
            container[index] = SKIPPED
        return
    node = _walk(data, path)
    if part.unknown_keys and isinstance(node, dict):
        for key in part.unknown_keys:
            node.pop(key, None)
        return
    parent = _walk(data, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _walk(data: Any, path: DataPath) -> Any:
    """The node at `path`, or None where an earlier cut removed the way to it."""
    node = data
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node
