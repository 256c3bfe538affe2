"""A checked policy kept small until it is planned: plain strings for plain entries.

A loaded policy waits in memory from the end of loading until its org's live state has been
read, so every org's policy is held at once. As pydantic models an entry costs ~700 bytes
(object, field dict, fields-set set, string); a 1,000-org set held that way alone passed the
300 MB budget (bench/README.md, "memory"). `PackedPolicy` keeps each entry that has no
`note:` and no `expires:` as its canonical string, one that has as the tuple of its field
values, and the source line of each change key as an integer; `policy()` builds the very
same model again (the same field values, fields set, and types: tests/test_packed_policy.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from rovo_reconcile.policy.model import (
    AddressEntry,
    DomainEntry,
    IpAllowlist,
    OrgPolicy,
    domain_key,
)
from rovo_reconcile.policy.problems import Mark

__all__ = ["PackedPolicy", "WholePolicy", "pack", "whole"]

_M = TypeVar("_M", bound=BaseModel)
_set_attribute = object.__setattr__


class _Entries:
    """How the entries of one model class are packed. An entry as the rules build it (every
    field in its dict, in declaration order, every field counted as set: `rules._built`)
    is kept as its key field's string when the other fields are None, else as the tuple of
    its field values; any other entry is kept as it is. (Closures over locals: this runs
    for every entry of every policy loaded.)"""

    __slots__ = ("index", "names", "pack", "unpack")

    def __init__(self, model: type[BaseModel], key: str) -> None:
        names = tuple(model.model_fields)
        fields = frozenset(names)
        index = names.index(key)
        others = len(names) - 1
        template = dict.fromkeys(names)
        new = model.__new__
        self.names = names
        self.index = index

        def pack(entry: BaseModel) -> Any:
            values = entry.__dict__
            if (
                type(entry) is not model
                or tuple(values) != names
                or entry.__pydantic_fields_set__ != fields
                or entry.__pydantic_extra__ is not None
                or entry.__pydantic_private__ is not None
            ):
                return entry
            items = tuple(values.values())
            value = items[index]
            # the key is a string, so the others are all None when `others` Nones are there
            return value if type(value) is str and items.count(None) == others else items

        def unpack(item: Any) -> Any:
            kind = type(item)
            if kind is str:
                values = template.copy()
                values[key] = item
            elif kind is tuple:
                values = dict(zip(names, item, strict=True))
            else:
                return item
            built = new(model)
            _set_attribute(built, "__dict__", values)
            _set_attribute(built, "__pydantic_fields_set__", set(fields))
            _set_attribute(built, "__pydantic_extra__", None)
            _set_attribute(built, "__pydantic_private__", None)
            return built

        self.pack = pack
        self.unpack = unpack

    def key_of(self, item: Any) -> Any:
        """The key field's value of a packed entry, without unpacking it."""
        if type(item) is str:
            return item
        if type(item) is tuple:
            return item[self.index]
        return item.__dict__[self.names[self.index]]


_DOMAIN = _Entries(DomainEntry, "pattern")
_ADDRESS = _Entries(AddressEntry, "address")


def _compact(entries: tuple[BaseModel, ...], kind: _Entries) -> tuple[Any, ...]:
    return tuple(map(kind.pack, entries))


def _expand(items: tuple[Any, ...], kind: _Entries) -> tuple[Any, ...]:
    return tuple(map(kind.unpack, items))


def _replaced(model: _M, name: str, value: object) -> _M:
    """`model` with one field's value replaced and nothing else changed (not even which
    fields count as set, which `model_copy(update=...)` would change)."""
    copy = type(model).__new__(type(model))
    _set_attribute(copy, "__dict__", {**model.__dict__, name: value})
    _set_attribute(copy, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    _set_attribute(copy, "__pydantic_extra__", model.__pydantic_extra__)
    _set_attribute(copy, "__pydantic_private__", model.__pydantic_private__)
    return copy


@dataclass(frozen=True, slots=True)
class PackedPolicy:
    head: OrgPolicy
    """The policy with its domain and address tuples emptied."""
    domains: tuple[Any, ...] | None
    """Each domain entry packed (`_Entries`): its pattern, its field values, or itself."""
    addresses: tuple[tuple[Any, ...], ...]
    """Per allowlist, in order, each address entry packed likewise."""
    domain_lines: array[int]
    """Per domain, the line its change key is defined on (0: not recorded)."""
    other_lines: dict[str, int]
    """The line of every other change key."""

    def policy(self) -> OrgPolicy:
        """The policy as it was checked (a new model on each call)."""
        head = self.head
        mcp = head.mcp
        if mcp is not None and self.domains is not None:
            mcp = _replaced(mcp, "domains", _expand(self.domains, _DOMAIN))
        lists = head.ip_allowlists
        if lists is not None:
            lists = tuple(
                _replaced(allowlist, "addresses", _expand(entries, _ADDRESS))
                for allowlist, entries in zip(lists, self.addresses, strict=True)
            )
        return _replaced(_replaced(head, "mcp", mcp), "ip_allowlists", lists)

    def domain_patterns(self) -> frozenset[str]:
        """The canonical pattern of every domain entry (none when domains are not managed)."""
        return frozenset(_DOMAIN.key_of(item) for item in self.domains or ())

    def source_lines(self) -> dict[str, int]:
        """Where each change key is defined: its line in the policy file."""
        lines = dict(self.other_lines)
        for item, line in zip(self.domains or (), self.domain_lines, strict=True):
            if line:
                lines[domain_key(_DOMAIN.key_of(item))] = line
        return lines


@dataclass(frozen=True, slots=True)
class WholePolicy:
    """A checked policy kept as the rules built it, with the line of each change key: for a
    caller that plans nothing later (`validate`), where packing would only cost time."""

    whole: OrgPolicy
    lines: dict[str, int]

    def policy(self) -> OrgPolicy:
        return self.whole

    def domain_patterns(self) -> frozenset[str]:
        mcp = self.whole.mcp
        return frozenset(d.pattern for d in mcp.domains or ()) if mcp is not None else frozenset()

    def source_lines(self) -> dict[str, int]:
        return dict(self.lines)


def whole(policy: OrgPolicy, sources: Mapping[str, Mark]) -> WholePolicy:
    """`policy` and where its change keys are (`sources`), kept as they are."""
    return WholePolicy(policy, {key: mark.line for key, mark in sources.items()})


def pack(policy: OrgPolicy, sources: Mapping[str, Mark]) -> PackedPolicy:
    """`policy` and where its change keys are (`sources`), packed."""
    mcp = policy.mcp
    domains: tuple[Any, ...] | None = None
    head = policy
    if mcp is not None and mcp.domains is not None:
        domains = _compact(mcp.domains, _DOMAIN)
        head = _replaced(head, "mcp", _replaced(mcp, "domains", ()))
    lists = policy.ip_allowlists
    addresses: tuple[tuple[Any, ...], ...] = ()
    if lists is not None:
        addresses = tuple(_compact(a.addresses, _ADDRESS) for a in lists)
        head = _replaced(head, "ip_allowlists", tuple(_emptied(a) for a in lists))
    keys = [domain_key(entry.pattern) for entry in (mcp.domains or () if mcp is not None else ())]
    domain_lines = array("I", (sources[key].line if key in sources else 0 for key in keys))
    placed = set(keys)
    other = {key: mark.line for key, mark in sources.items() if key not in placed}
    return PackedPolicy(head, domains, addresses, domain_lines, other)


def _emptied(allowlist: IpAllowlist) -> IpAllowlist:
    return _replaced(allowlist, "addresses", ())
