"""Sets of IPv4 addresses as sorted ranges of integers: what allowlists admit, computed fast.

The planner judges each change's effect and the guards each write's lockout on unions of
allowlists; with `ipaddress` objects those cost a parse and a collapse per list per
question, which made a plan of 1,000 allowlists take minutes. Here an address is parsed
once (`span` is cached), and unions, differences and coverage are plain integer work.
A value that is not an IPv4 network (a live value the tool could not normalise) admits
nothing, as before.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["Ranges", "canonical_span", "minus", "ranges", "span", "sweep", "within"]

Ranges = list[tuple[int, int]]
"""Sorted, disjoint, non-adjacent ranges of addresses as integers, both ends included."""

_BEYOND = 1 << 33  # greater than any IPv4 address


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL = re.compile(rf"({_OCTET})\.({_OCTET})\.({_OCTET})\.({_OCTET})/(3[0-2]|[12][0-9]|[1-9])")


def canonical_span(address: str) -> tuple[int, int] | None:
    """`span` of an address already written as `normalize_address` writes it (`a.b.c.d/n`:
    no leading zeros, a prefix of 1 to 32, no host bits), in integer arithmetic; None for
    anything else, which is then for the slower, general parse."""
    match = _CANONICAL.fullmatch(address)
    if match is None:
        return None
    a, b, c, d, prefix = map(int, match.groups())
    first = a << 24 | b << 16 | c << 8 | d
    host = (1 << (32 - prefix)) - 1
    return None if first & host else (first, first | host)


@lru_cache(maxsize=1 << 13)
def span(address: str) -> tuple[int, int] | None:
    """The first and last address of an IPv4 network, or None for anything else."""
    fast = canonical_span(address)
    if fast is not None:
        return fast
    try:
        net = ipaddress.IPv4Network(address)
    except ValueError:
        return None
    return int(net.network_address), int(net.broadcast_address)


def ranges(addresses: Iterable[str]) -> Ranges:
    """The addresses these networks hold together."""
    merged: Ranges = []
    for first, last in sorted(s for s in map(span, addresses) if s is not None):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def sweep(sets: Sequence[Ranges]) -> tuple[Ranges, Ranges]:
    """The addresses at least one of `sets` holds, and those at least two hold."""
    steps: dict[int, int] = defaultdict(int)
    for found in sets:
        for first, last in found:
            steps[first] += 1
            steps[last + 1] -= 1
    once: Ranges = []
    twice: Ranges = []
    count = start_once = start_twice = 0
    for point in sorted(steps):
        new = count + steps[point]
        if count < 1 <= new:
            start_once = point
        elif new < 1 <= count:
            once.append((start_once, point - 1))
        if count < 2 <= new:
            start_twice = point
        elif new < 2 <= count:
            twice.append((start_twice, point - 1))
        count = new
    return once, twice


def within(inner: Ranges, outer: Ranges) -> bool:
    """Is every address of `inner` in `outer`?"""
    for first, last in inner:
        index = bisect_right(outer, (first, _BEYOND)) - 1
        if index < 0 or outer[index][1] < last:
            return False
    return True


def minus(found: Ranges, removed: Ranges) -> Ranges:
    """The addresses of `found` that are not in `removed`."""
    left: Ranges = []
    index = 0
    for first, last in found:
        start = first
        while index < len(removed) and removed[index][1] < start:
            index += 1
        scan = index
        while scan < len(removed) and removed[scan][0] <= last:
            if removed[scan][0] > start:
                left.append((start, removed[scan][0] - 1))
            start = max(start, removed[scan][1] + 1)
            scan += 1
        if start <= last:
            left.append((start, last))
    return left
