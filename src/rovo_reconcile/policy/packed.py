"""A checked policy kept small until it is planned: plain strings for plain entries.

A loaded policy waits in memory from the end of loading until its org's live state has been
read, so every org's policy is held at once. As pydantic models an entry costs ~700 bytes
(object, field dict, fields-set set, string); a 1,000-org set held that way alone passed the
300 MB budget (bench/README.md, "memory"). `PackedPolicy` keeps each entry that has no
`note:` and no `expires:` as its canonical string, every other entry as it is, and the
source line of each change key as an integer; `policy()` builds the very same model again
(the same field values, fields set, and types: tests/test_packed_policy.py).
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

__all__ = ["PackedPolicy", "pack"]

_M = TypeVar("_M", bound=BaseModel)
_set_attribute = object.__setattr__


@dataclass(frozen=True, slots=True)
class _Plain:
    """How a plain entry of one model class is made from its string: the key field holds the
    string, every other field None, every field counted as set (as `rules._built` makes it)."""

    cls: type[BaseModel]
    key: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, model: type[BaseModel], key: str) -> _Plain:
        return cls(model, key, tuple(model.model_fields))

    def is_plain(self, entry: BaseModel) -> bool:
        values = entry.__dict__
        return (
            type(entry) is self.cls
            and tuple(values) == self.names
            and isinstance(values[self.key], str)
            and all(values[name] is None for name in self.names if name != self.key)
            and entry.__pydantic_fields_set__ == set(self.names)
            and entry.__pydantic_extra__ is None
            and entry.__pydantic_private__ is None
        )

    def build(self, text: str) -> Any:
        built = self.cls.__new__(self.cls)
        values = dict.fromkeys(self.names)
        values[self.key] = text
        _set_attribute(built, "__dict__", values)
        _set_attribute(built, "__pydantic_fields_set__", set(self.names))
        _set_attribute(built, "__pydantic_extra__", None)
        _set_attribute(built, "__pydantic_private__", None)
        return built


_DOMAIN = _Plain.of(DomainEntry, "pattern")
_ADDRESS = _Plain.of(AddressEntry, "address")


def _compact(entries: tuple[BaseModel, ...], plain: _Plain) -> tuple[Any, ...]:
    return tuple(entry.__dict__[plain.key] if plain.is_plain(entry) else entry for entry in entries)


def _expand(items: tuple[Any, ...], plain: _Plain) -> tuple[Any, ...]:
    build = plain.build
    return tuple(build(item) if type(item) is str else item for item in items)


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
    domains: tuple[str | DomainEntry, ...] | None
    addresses: tuple[tuple[str | AddressEntry, ...], ...]
    """Per allowlist, in order."""
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
        return frozenset(_pattern(item) for item in self.domains or ())

    def source_lines(self) -> dict[str, int]:
        """Where each change key is defined: its line in the policy file."""
        lines = dict(self.other_lines)
        for item, line in zip(self.domains or (), self.domain_lines, strict=True):
            if line:
                lines[domain_key(_pattern(item))] = line
        return lines


def _pattern(item: str | DomainEntry) -> str:
    return item if isinstance(item, str) else item.pattern


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
    other = {key: mark.line for key, mark in sources.items()}
    domain_lines = array("I")
    for entry in mcp.domains or () if mcp is not None else ():
        domain_lines.append(other.pop(domain_key(entry.pattern), 0))
    return PackedPolicy(head, domains, addresses, domain_lines, other)


def _emptied(allowlist: IpAllowlist) -> IpAllowlist:
    return _replaced(allowlist, "addresses", ())
