"""Time of the shadowing check ("a pattern covered by a broader one is a warning", issue 11 item 5).

Validates generated policies through `load_policies` (the whole of `validate`, YAML included)
and prints, for each, the time of the shadowing check alone, of the whole validation, the
number of shadowed patterns and whether the work cap stopped the check:

- 1k, 4k and 20k domains over many hosts (one wildcard per ten hosts, which shadows them);
- 4k and 20k domains on one host with distinct paths (the index must not fall back to all pairs);
- 5k wildcard paths that share their start, then 5k where no pair covers (every pair
  plausible: the work cap must hold), and 400 paths of 2,000 characters on one host;
- the backtracking case of the issue: `https://example.com/**a**a**a**a**a**a**a**ab` beside
  `https://example.com/aaaa...` (80 a's).

Before issue 11, 4k domains took 224 s and 20k did not finish in 300 s; the backtracking pair
took minutes. Usage: python bench/shadowing.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.policy.normalize import find_shadowing, parse_domain

HEADER = "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg:\n  id: bench\nmcp:\n  domains:\n"


def many_hosts(count: int) -> list[str]:
    out = []
    for i in range(count):
        team = i // 10
        if i % 10 == 0:
            out.append(f"https://*.t{team}.example.com/**")
        else:
            out.append(f"https://a{i}.t{team}.example.com/v{i % 3}/**")
    return out


def one_host(count: int) -> list[str]:
    return [f"https://api.example-corp.com/p{i}/**" for i in range(count)]


def shared_start(count: int) -> list[str]:
    return [f"https://api.example-corp.com/*x{i}*" for i in range(count)]


def every_pair_plausible(count: int) -> list[str]:
    return [f"https://api.example-corp.com/*q{i}z" for i in range(count)]


def long_paths(count: int) -> list[str]:
    return [f"https://api.example-corp.com/{'*a' * 990}{i}" for i in range(count)]


def backtracking(_count: int) -> list[str]:
    # The old check read the first as the regex .*a.*a...ab and ran it over the second:
    # O(n^8) backtracking, about 4 s with 40 a's and half an hour with 80.
    return ["https://example.com/" + "**a" * 8 + "b", "https://example.com/" + "a" * 80]


def run(name: str, make: Callable[[int], list[str]], count: int) -> None:
    domains = make(count)
    text = HEADER + "".join(f"    - {d}\n" for d in domains)
    patterns = [parse_domain(d) for d in domains]
    start = time.perf_counter()
    shadowing = find_shadowing(patterns)
    check = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(text, encoding="utf-8")
        start = time.perf_counter()
        result = load_policies([str(path)], date(2026, 1, 1))
        total = time.perf_counter() - start
    codes = [p.code for p in result.problems]
    assert "file.too-large" not in codes, name
    assert codes.count("domain.shadowed") == len(shadowing.covered_by)
    print(
        f"{name:<34} {len(domains):>7} {len(text) / 1024:>6.0f} KiB {check:>9.3f} s "
        f"{total:>9.2f} s {len(shadowing.covered_by):>8} {'no' if shadowing.complete else 'yes':>6}"
    )


def main() -> None:
    print(
        f"{'case':<34} {'domains':>7} {'size':>10} {'shadowing':>11} {'validate':>11} "
        f"{'shadowed':>8} {'capped':>6}"
    )
    for count in (1_000, 4_000, 20_000):
        run("many hosts", many_hosts, count)
    for count in (4_000, 20_000):
        run("one host, distinct paths", one_host, count)
    run("one host, paths sharing a start", shared_start, 5_000)
    run("every pair plausible, none covers", every_pair_plausible, 5_000)
    run("2,000-character paths, one host", long_paths, 400)
    run("backtracking pair (**a x8, a x80)", backtracking, 2)


if __name__ == "__main__":
    main()
