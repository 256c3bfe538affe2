"""`validate` at enterprise scale against a C YAML parse of the same files (issue 9).

Generates two deterministic data sets into a temporary directory:

- `orgs`: 100 policies, each with 8 IP allowlists of 60 addresses and 150 MCP domains
  (about 2 MB in all; some entries carry a note, some an expiry date, some a comment);
- `big`: one legitimate policy of about 850 KB, 2,000 domains and 450 addresses, each
  with a note.

For each it times `check_policies` (the whole of `validate` but the rendering) in this
process alone, and PyYAML's `CSafeLoader` parsing the same files in the same run (best of
RUNS), and prints the ratio. The 100-org set also runs once through the CLI
(`rovo-reconcile validate DIR`, interpreter start included, on every core as the CLI
decides). Last, a table of one process against 2 worker processes from 2 to 100 orgs: where
forking pays (policy/parallel.py). `--profile` prints the top of a cProfile of the check
over each set instead.

PyYAML is needed for the baseline only: `pip install pyyaml`.

Usage: python bench/validate_scale.py [--runs N] [--profile] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

from rovo_reconcile.policy.loader import check_policies
from rovo_reconcile.policy.parallel import PARALLEL_BYTES, split_work

TODAY = date(2026, 1, 15)
APPS = ["jira", "jsm", "confluence", "compass", "rovo"]
WORDS = [
    "gateway",
    "agent",
    "sandbox",
    "pilot",
    "platform",
    "team",
    "vendor",
    "partner",
    "research",
    "analytics",
    "support",
    "billing",
    "identity",
    "search",
    "portal",
    "internal",
    "tooling",
    "assistant",
    "review",
    "legal",
    "finance",
]


def _note(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def _host(org: int, i: int) -> str:
    return f"svc{i}.u{i % 7}.org{org}.com"


def _domains(rng: random.Random, org: int, count: int, note_words: int | None) -> list[str]:
    lines = ["  domains:"]
    for i in range(count):
        kind = i % 10
        if kind == 0:
            pattern = f"https://*.zone{i}.org{org}.com/**"
        elif kind == 1:
            pattern = f"https://{{app,api}}.grp{i}.org{org}.com/**"
        elif kind == 2:
            pattern = f"https://{_host(org, i)}:8443/mcp/v{i % 4}/**"
        else:
            pattern = f"https://{_host(org, i)}/**"
        if note_words is None and i % 10:
            comment = f"  # {WORDS[i % len(WORDS)]}" if i % 5 == 0 else ""
            lines.append(f"    - {pattern}{comment}")
            continue
        lines.append(f"    - pattern: {pattern}")
        lines.append(f"      note: {_note(rng, note_words or 4)}")
        if i % 4 == 0:
            lines.append(f"      expires: {2027 + i % 3}-{1 + i % 12:02d}-{1 + i % 28:02d}")
    return lines


def _allowlists(
    rng: random.Random, org: int, lists: int, per_list: int, note_words: int | None
) -> tuple[list[str], str]:
    lines = ["ipAllowlists:"]
    first = ""
    for n in range(lists):
        apps = APPS if n == 0 else APPS[: 1 + n % len(APPS)]
        lines += [
            f"  - name: Egress {n} of org {org}",
            "    enabled: true",
            f"    apps: [{', '.join(apps)}]",
            f"    allowMobileBypass: {'true' if n % 2 else 'false'}",
            "    addresses:",
        ]
        for i in range(per_list):
            # Distinct public blocks: 11.0.0.0-22.255.255.255 holds no special range.
            block = (org * lists + n) * per_list + i
            a, b, c = 11 + block // 4096, block // 16 % 256, block % 16 * 16
            address = f"{a}.{b}.7.{c}/28" if i % 2 else f"{a}.{b}.7.{c + 1}"
            if not first:
                first = address
            if note_words is None and i % 10:
                comment = f"  # site {i}" if i % 8 == 0 else ""
                lines.append(f"      - {address}{comment}")
                continue
            lines.append(f"      - address: {address}")
            lines.append(f"        note: {_note(rng, note_words or 3)}")
            if i % 5 == 0:
                lines.append(f"        expires: {2027 + i % 2}-{1 + i % 12:02d}-{1 + i % 28:02d}")
    return lines, first


def policy(org: int, *, domains: int, lists: int, per_list: int, note_words: int | None) -> str:
    rng = random.Random(org)
    allowlists, first = _allowlists(rng, org, lists, per_list, note_words)
    lines = [
        "# yaml-language-server: $schema=../../schemas/rovo-policy.schema.json",
        "apiVersion: rovo-reconcile/v1",
        "kind: OrgPolicy",
        "org:",
        f"  id: org-{org:04d}-a1b2c3",
        f"  name: Organization number {org}",
        "mcp:",
        "  allowAtlassianSupportedDomains: true",
        *_domains(rng, org, domains, note_words),
        "  authentication:",
        "    apiToken: false",
        *allowlists,
        "guards:",
        f"  mustAllow: [{first}]",
        "  maxDeletePercent: 25",
    ]
    return "\n".join(lines) + "\n"


def generate(root: Path) -> tuple[Path, Path]:
    orgs = root / "orgs"
    orgs.mkdir(parents=True)
    for org in range(100):
        text = policy(org, domains=150, lists=8, per_list=60, note_words=None)
        (orgs / f"org-{org:03d}.yaml").write_text(text, "utf-8")
    big = root / "big"
    big.mkdir()
    text = policy(7, domains=2000, lists=3, per_list=150, note_words=36)
    (big / "enterprise.yaml").write_text(text, "utf-8")
    return orgs, big


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def c_parse(directory: Path) -> None:
    for path in _files(directory):
        with path.open("rb") as stream:
            yaml.load(stream.read().decode("utf-8"), Loader=yaml.CSafeLoader)


def validate(directory: Path, jobs: int | None = 1) -> None:
    """`validate`'s check (`check_policies`): in this process alone unless `jobs` says
    otherwise (None: as the CLI decides, by size and cores)."""
    result = check_policies([str(directory)], TODAY, jobs=jobs)
    if result.errors:
        first = result.problems[0]
        raise SystemExit(f"generated policy has errors, first: {first}")


def parallel_table(root: Path, runs: int) -> None:
    """Where checking in worker processes pays: one process against 2 workers by size."""
    print(f"\nworkers ({os.cpu_count()} cores; the CLI forks from {PARALLEL_BYTES / 1e6:.1f} MB):")
    print("  orgs     MB   1 process   2 workers   ratio   auto")
    for count in (2, 5, 10, 25, 50, 100):
        directory = root / f"parallel-{count}"
        directory.mkdir()
        for org in range(count):
            text = policy(org, domains=150, lists=8, per_list=60, note_words=None)
            (directory / f"org-{org:03d}.yaml").write_text(text, "utf-8")
        size = sum(p.stat().st_size for p in _files(directory))
        one = best(runs, lambda d=directory: validate(d, 1))
        two = best(runs, lambda d=directory: validate(d, 2))
        auto = "2 workers" if len(split_work(_files(directory))) > 1 else "1 process"
        print(
            f"  {count:4} {size / 1e6:6.2f}   {one:7.3f} s   {two:7.3f} s   {two / one:5.2f}   {auto}"
        )


def best(runs: int, work: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def cli_once(directory: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rovo_reconcile", "validate", "--now", "2026-01-15", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"CLI validate failed ({done.returncode}): {done.stdout[-500:]}")
    return elapsed


def profile(directory: Path, lines: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(validate, directory, 1)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    out.write("\n")
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="best of N for each timing")
    parser.add_argument("--profile", action="store_true", help="print cProfile top lines")
    parser.add_argument("--keep", type=Path, help="generate into DIR and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="validate-scale-"))
    try:
        orgs, big = generate(root)
        for name, directory in (("100 orgs", orgs), ("850 KB policy", big)):
            size = sum(p.stat().st_size for p in _files(directory))
            if args.profile:
                print(f"== {name} ({size / 1e6:.2f} MB)")
                print(profile(directory, 25))
                continue
            validate(directory)  # warm: imports, schema, public suffix list
            c_time = best(args.runs, lambda d=directory: c_parse(d))
            v_time = best(args.runs, lambda d=directory: validate(d))
            print(
                f"{name:14} {len(_files(directory)):3} files {size / 1e6:5.2f} MB  "
                f"validate {v_time:6.2f} s  CSafeLoader {c_time:5.2f} s  "
                f"ratio {v_time / c_time:5.1f}x"
            )
        if not args.profile:
            cli = cli_once(orgs)
            print(f"CLI `rovo-reconcile validate` of the 100 orgs, once: {cli:.2f} s")
            parallel_table(root, args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
