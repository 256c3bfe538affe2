"""`plan` of many orgs against the sandbox, beside an octoDNS twin on the same number of records.

Each org has 8 IP allowlists of 60 addresses and 150 MCP domains (630 records). The live state
is seeded straight into the sandbox's SQLite file (one transaction, same rows the emulator
writes) and differs from the policy by one address in every list and five domains each way
(18 changes an org), so `plan` reads everything and finds some work. Everything is
deterministic: the same N gives the same files and the same database.

The octoDNS twin: one zone per org, from the same values: "entries" has one A record per address
and one CNAME per domain (630 records), "lists" one A record of 60 values per allowlist and one
CNAME per domain (158 records), in a YAML source provider and a YAML target provider, with the
same differences;
`octodns-sync` (no --doit: plan only) and the Manager's plan in-process are timed.

Modes (run from the repository root; octoDNS is for the bench only):

    .venv/bin/pip install octodns        # once
    .venv/bin/python bench/plan_scale.py [--orgs 100] [--runs 3]          # time and ratios
    .venv/bin/python bench/plan_scale.py --memory [--sizes 1,10,100,1000]  # peak RSS per N
        [--scales 1,2,4] [--scale-orgs 100] [--out]    # and per entries an org; --out: with
                                                       # plan --out plan.json
    .venv/bin/python bench/plan_scale.py --split 1000                      # RSS after each phase
    .venv/bin/python bench/plan_scale.py --profile [--orgs 100]            # cProfile top lines

Data sets are generated once into --work (default: $TMPDIR/rovo-plan-scale) and reused; the
sandbox database is written directly (1,000 orgs in seconds), from the generator, which one
org's loaded policy checks. `--memory` needs no octoDNS.

"plan (read+plan)" is `compute_plan` in-process on policies already loaded: the live reads
through the sandbox and the planner, the part this bench is about; "CLI" is the whole
`rovo-reconcile plan` command in a child process, loading and validating the files included.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

LISTS = 8
ADDRESSES = 60
DOMAINS = 150
CHANGED_DOMAINS = 5
DAY = date(2026, 11, 26)
APPS = ("jira", "jsm", "confluence", "compass", "rovo")
TYPE_KEYS = {
    "jira": "jira-software",
    "jsm": "jira-servicedesk",
    "confluence": "confluence",
    "compass": "compass",
    "rovo": "rovo",
}
_NS = uuid.UUID("5b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d")
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


# ------------------------------------------------------------------ the workload


@dataclass(frozen=True)
class Shape:
    """How big each org is. The default is the issue's org (8 lists x 60 addresses + 150
    domains, the lists covering 1 to 5 apps). `Shape.scaled(s)` has s times the entries
    (8s lists, 150s domains) with each list but the first on one app, so no app passes
    Atlassian's 500 entries (the entries-per-org sweep)."""

    lists: int = LISTS
    addresses: int = ADDRESSES
    domains: int = DOMAINS
    spread: bool = False

    @classmethod
    def scaled(cls, factor: int) -> Shape:
        return cls(LISTS * factor, ADDRESSES, DOMAINS * factor, spread=True)

    @property
    def entries(self) -> int:
        return self.lists * self.addresses + self.domains

    @property
    def tag(self) -> str:
        return "" if self == Shape() else f"-x{self.lists // LISTS}"


DEFAULT = Shape()


def org_id(i: int) -> str:
    return str(uuid.uuid5(_NS, f"org-{i}"))


def list_apps(k: int, shape: Shape = DEFAULT) -> tuple[str, ...]:
    if k == 0:
        return APPS
    return (APPS[k % len(APPS)],) if shape.spread else APPS[: 1 + k % len(APPS)]


_HISTORIC = 12 * 4096
"""Blocks of the first layout (11-22.b.7.c): enough for 100 orgs of the default shape."""


def _block_address(block: int) -> tuple[int, int, int, int]:
    """Distinct public /28s inside 11.0.0.0-22.255.255.255, which holds no special range: the
    first 49,152 on x.y.7.z (the data set measured before), the rest on third octets 8-..."""
    if block < _HISTORIC:
        return 11 + block // 4096, block // 16 % 256, 7, block % 16 * 16
    rest = block - _HISTORIC
    third = 8 + rest // _HISTORIC
    assert third < 256, "more addresses than this layout holds"
    return 11 + rest // 4096 % 12, rest // 16 % 256, third, rest % 16 * 16


def address(i: int, k: int, j: int, shape: Shape = DEFAULT) -> str:
    """Half /28s, half single addresses written without a prefix."""
    a, b, c, d = _block_address((i * shape.lists + k) * (shape.addresses + 1) + j)
    return f"{a}.{b}.{c}.{d}/28" if j % 2 else f"{a}.{b}.{c}.{d + 1}"


def canonical_address(i: int, k: int, j: int, shape: Shape = DEFAULT) -> str:
    text = address(i, k, j, shape)
    return text if "/" in text else f"{text}/32"


def domain(i: int, j: int) -> str:
    """Wildcards, brace alternatives, ports and paths, as enterprises write them."""
    kind = j % 10
    if kind == 0:
        return f"https://*.zone{j}.org{i}.com/**"
    if kind == 1:
        return f"https://{{app,api}}.grp{j}.org{i}.com/**"
    if kind == 2:
        return f"https://svc{j}.u{j % 7}.org{i}.com:8443/mcp/v{j % 4}/**"
    return f"https://svc{j}.u{j % 7}.org{i}.com/**"


def _entry(value: str, key: str, j: int, indent: str) -> list[str]:
    """Every tenth entry carries a note (every twentieth an expiry date), some a comment."""
    if j % 10 == 0:
        lines = [f"{indent}- {key}: {value}", f"{indent}  note: added for ticket SEC-{1000 + j}"]
        if j % 20 == 0:
            lines.append(f"{indent}  expires: {2027 + j % 3}-{1 + j % 12:02d}-{1 + j % 28:02d}")
        return lines
    return [f"{indent}- {value}" + (f"  # site {j}" if j % 8 == 0 else "")]


def policy_text(i: int, shape: Shape = DEFAULT) -> str:
    lines = [
        "apiVersion: rovo-reconcile/v1",
        "kind: OrgPolicy",
        f"org: {{id: {org_id(i)}, name: Bench org {i}}}",
        "mcp:",
        "  allowAtlassianSupportedDomains: true",
        "  authentication: {apiToken: false}",
        "  domains:",
    ]
    for j in range(shape.domains):
        lines += _entry(domain(i, j), "pattern", j, "    ")
    lines.append("ipAllowlists:")
    for k in range(shape.lists):
        lines += [
            f"  - name: Egress {k} of org {i}",
            "    enabled: true",
            f"    apps: [{', '.join(list_apps(k, shape))}]",
            f"    allowMobileBypass: {'true' if k % 2 else 'false'}",
            "    addresses:",
        ]
        for j in range(shape.addresses):
            lines += _entry(address(i, k, j, shape), "address", j, "      ")
    lines += ["guards:", f"  mustAllow: [{address(i, 0, 0, shape)}]", "  maxDeletePercent: 25"]
    return "\n".join(lines) + "\n"


def write_policies(directory: Path, n: int, shape: Shape = DEFAULT) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / f"org-{i:04d}.yaml").write_text(policy_text(i, shape), "utf-8")


def desired_value(i: int, shape: Shape = DEFAULT) -> dict[str, Any]:
    """The org's allowlists and domains as `state_value` of its loaded policy has them (no
    entry has expired on DAY), made from the generator: the bench never holds every loaded
    policy at once (`check_generator` compares one org with the loader's answer)."""
    from rovo_reconcile.policy.normalize import normalize_domain

    return {
        "ipAllowlists": [
            {
                "name": f"Egress {k} of org {i}",
                "enabled": True,
                "apps": list(list_apps(k, shape)),
                "allowMobileBypass": bool(k % 2),
                "addresses": [canonical_address(i, k, j, shape) for j in range(shape.addresses)],
            }
            for k in range(shape.lists)
        ],
        "domains": sorted({normalize_domain(domain(i, j)) for j in range(shape.domains)}),
    }


def check_generator(policies: Path, shape: Shape) -> None:
    """`desired_value` of org 0 equals what the loader makes of its file (sets, not order)."""
    from rovo_reconcile.plan import effective_policy, state_value
    from rovo_reconcile.policy.loader import load_policies

    loaded = load_policies([str(policies / "org-0000.yaml")], DAY)
    assert not loaded.errors, [str(p) for p in loaded.problems[:3]]
    value = state_value(effective_policy(loaded.policies[0].policy, DAY))
    made = desired_value(0, shape)
    assert sorted(value["mcp"]["domains"]) == made["domains"]
    got = {a["name"]: {**a, "addresses": set(a["addresses"])} for a in value["ipAllowlists"]}
    want = {a["name"]: {**a, "addresses": set(a["addresses"])} for a in made["ipAllowlists"]}
    assert got == want, "the generator's desired state differs from the loader's"


def live_value(i: int, desired: dict[str, Any], shape: Shape = DEFAULT) -> dict[str, Any]:
    """The org's live state: the policy's, but in every list the last address is replaced by
    a new one, and five domains are missing and five others extra (18 changes an org)."""
    lists = []
    last = shape.addresses - 1
    for k, allowlist in enumerate(desired["ipAllowlists"]):
        gone = {address(i, k, last, shape), canonical_address(i, k, last, shape)}
        kept = [a for a in allowlist["addresses"] if a not in gone]
        lists.append({**allowlist, "addresses": [*kept, address(i, k, shape.addresses, shape)]})
    domains = desired["domains"][CHANGED_DOMAINS:]
    domains += [f"https://gone{j}.org{i}.com/**" for j in range(CHANGED_DOMAINS)]
    return {"ipAllowlists": lists, "domains": domains}


def seed_sandbox(db: Path, n: int, shape: Shape = DEFAULT) -> None:
    """The live state of every org, in one transaction, as apply would have written it."""
    from rovo_reconcile.emulator.store import DEFAULT_WORKSPACES, Store, workspace_id

    Store(db).close()  # the schema
    now_ms = 1_700_000_000_000
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000))
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        for i in range(n):
            oid = org_id(i)
            live = live_value(i, desired_value(i, shape), shape)
            spaces = [(workspace_id(oid, t, name), t) for name, t, _ in DEFAULT_WORKSPACES]
            conn.execute("INSERT INTO orgs (id, created_at) VALUES (?, ?)", (oid, created))
            conn.executemany(
                "INSERT INTO workspaces (org_id, id, name, type_key, host_url) VALUES (?,?,?,?,?)",
                [
                    (oid, workspace_id(oid, t, name), name, t, host)
                    for name, t, host in DEFAULT_WORKSPACES
                ],
            )
            conn.execute(
                "INSERT INTO mcp_settings (org_id, allow_supported, api_token) VALUES (?, 1, 0)",
                (oid,),
            )
            conn.executemany(
                "INSERT INTO policies (org_id, id, type, name, status, rule, resources,"
                " created_at, updated_at, written_at_ms, outcome)"
                " VALUES (?, ?, 'ip-allowlist', ?, 'enabled', ?, ?, ?, NULL, ?, 'applied')",
                [
                    (
                        oid,
                        str(uuid.uuid5(_NS, f"{oid}/policy/{k}")),
                        a["name"],
                        json.dumps(
                            {"in": a["addresses"], "allowMobileBypass": a["allowMobileBypass"]},
                            separators=(",", ":"),
                        ),
                        json.dumps(
                            [ws for ws, t in spaces if t in {TYPE_KEYS[x] for x in a["apps"]}],
                            separators=(",", ":"),
                        ),
                        created,
                        now_ms,
                    )
                    for k, a in enumerate(live["ipAllowlists"])
                ],
            )
            conn.executemany(
                "INSERT INTO mcp_domains (org_id, id, pattern, canonical) VALUES (?, ?, ?, ?)",
                [(oid, str(uuid.uuid5(_NS, f"{oid}/domain/{d}")), d, d) for d in live["domains"]],
            )
        conn.execute("COMMIT")


def prepare(work: Path, n: int, shape: Shape = DEFAULT) -> tuple[Path, Path]:
    """(policy directory, sandbox db) for n orgs, made once per n and shape and reused."""
    base = work / f"orgs-{n}{shape.tag}"
    policies, db = base / "policies", base / "sandbox.db"
    if not (base / "ready").exists():
        shutil.rmtree(base, ignore_errors=True)
        write_policies(policies, n, shape)
        check_generator(policies, shape)
        seed_sandbox(db, n, shape)
        (base / "ready").write_text("ok")
    return policies, db


# ------------------------------------------------------------------ octoDNS twin


def zone_name(i: int) -> str:
    return f"org{i}.example.com."


def _zone_records(values: dict[str, Any], shape: str) -> dict[str, dict[str, Any]]:
    """One A record per address and one CNAME per domain ("entries"), or one A record of
    many values per allowlist ("lists")."""
    records: dict[str, dict[str, Any]] = {}
    for k, allowlist in enumerate(values["ipAllowlists"]):
        ips = sorted({a.split("/")[0] for a in allowlist["addresses"]})
        if shape == "lists":
            records[f"list{k}"] = {"ttl": 300, "type": "A", "values": ips}
            continue
        for ip in ips:
            records[f"a{k}-{ip.replace('.', '-')}"] = {"ttl": 300, "type": "A", "value": ip}
    for d in values["domains"]:
        label = "d" + uuid.uuid5(_NS, d).hex[:12]
        records[label] = {"ttl": 300, "type": "CNAME", "value": f"{label}.target.net."}
    return records


def _zone_yaml(records: dict[str, dict[str, Any]]) -> str:
    from octodns.yaml import safe_dump  # octoDNS's own dumper: keys in the order it enforces

    text = io.StringIO()
    safe_dump(records, text)
    return text.getvalue()


def write_octodns(base: Path, n: int, shape: str) -> Path:
    """Two YAML providers' zone files (the policies' values and the live ones) and the
    config that plans source -> target."""
    config = base / f"octodns-{shape}.yaml"
    if config.exists():
        return config
    for i in range(n):
        want = desired_value(i)
        sides = {"source": want, "target": live_value(i, want)}
        for side, values in sides.items():
            (base / f"{side}-{shape}").mkdir(parents=True, exist_ok=True)
            path = base / f"{side}-{shape}" / f"{zone_name(i)}yaml"
            path.write_text(_zone_yaml(_zone_records(values, shape)), "utf-8")
    zones = "\n".join(
        f"  {zone_name(i)}:\n    sources: [source]\n    targets: [target]" for i in range(n)
    )
    provider = "class: octodns.provider.yaml.YamlProvider"
    config.write_text(
        f"providers:\n  source:\n    {provider}\n    directory: {base / f'source-{shape}'}\n"
        f"  target:\n    {provider}\n    directory: {base / f'target-{shape}'}\n"
        f"zones:\n{zones}\n",
        "utf-8",
    )
    return config


def octodns_in_process(config: Path) -> float:
    import logging

    from octodns.manager import Manager

    logging.disable(logging.CRITICAL)
    started = time.perf_counter()
    Manager(str(config)).sync(dry_run=True)
    return time.perf_counter() - started


# ------------------------------------------------------------------ timing


def plan_in_process(policies: Path, db: Path, *, load_only: bool = False) -> tuple[float, float]:
    """(seconds to load the policies, seconds to read live state and plan)."""
    from rovo_reconcile.policy.loader import load_policies
    from rovo_reconcile.reconcile import compute_plan
    from rovo_reconcile.targets import resolve_target

    started = time.perf_counter()
    loaded = load_policies([str(policies)], DAY, packed=True)
    assert not loaded.errors, [str(p) for p in loaded.problems[:3]]
    load_s = time.perf_counter() - started
    if load_only:
        return load_s, 0.0
    target = resolve_target("sandbox", None, None, db, env={})
    started = time.perf_counter()
    run = asyncio.run(compute_plan(target, loaded.policies, DAY))
    plan_s = time.perf_counter() - started
    assert all(o.error is None for o in run.plan.orgs), [o.error for o in run.plan.orgs][:3]
    return load_s, plan_s


def cli_plan(policies: Path, db: Path, *extra: str) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB, exit code) of `rovo-reconcile plan`."""
    script = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps([wall, u.ru_utime + u.ru_stime, u.ru_maxrss, rc]))\n"
    )
    command = [
        PYTHON, "-c", script, PYTHON, "-m", "rovo_reconcile", "plan", str(policies),
        "--target", "sandbox", "--sandbox-db", str(db), "--now", DAY.isoformat(), *extra,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    wall, cpu, rss, rc = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, cpu, rss, rc


def _in_child(args: list[str]) -> list[float]:
    out = subprocess.run(
        [PYTHON, __file__, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return [float(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]


def time_mode(work: Path, n: int, runs: int, shapes: list[str]) -> None:
    policies, db = prepare(work, n)
    configs = {shape: write_octodns(work / f"orgs-{n}", n, shape) for shape in shapes}
    records = n * (LISTS * ADDRESSES + DOMAINS)
    print(
        f"plan bench: {n} orgs, {records:,} entries ({LISTS}x{ADDRESSES} addresses + {DOMAINS} "
        f"domains an org), {runs} runs, median (min-max) seconds, {os.cpu_count()} cores"
    )
    rows: dict[str, list[float]] = {"load": [], "read+plan": [], "cli": [], "cli_cpu": []}
    for shape in shapes:
        rows[f"octo {shape}"], rows[f"octo-sync {shape}"] = [], []
    for _ in range(runs):
        load_s, plan_s = _in_child(["--child-plan", str(policies), str(db)])
        rows["load"].append(load_s)
        rows["read+plan"].append(plan_s)
        wall, cpu, _rss, rc = cli_plan(policies, db)
        assert rc == 0, f"plan exited {rc}"
        rows["cli"].append(wall)
        rows["cli_cpu"].append(cpu)
        for shape, config in configs.items():
            rows[f"octo {shape}"].append(_in_child(["--child-octo", str(config)])[0])
            started = time.perf_counter()
            subprocess.run(
                [str(Path(PYTHON).parent / "octodns-sync"), "--config-file", str(config)],
                check=True, capture_output=True, cwd=ROOT,
            )  # fmt: skip
            rows[f"octo-sync {shape}"].append(time.perf_counter() - started)

    def show(values: list[float]) -> str:
        return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"

    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"  rovo-reconcile load+validate (in-process)      {show(rows['load'])}")
    print(f"  rovo-reconcile read+plan (in-process)          {show(rows['read+plan'])}")
    print(f"  rovo-reconcile plan CLI, wall                  {show(rows['cli'])}")
    print(f"  rovo-reconcile plan CLI, CPU (user+sys)        {show(rows['cli_cpu'])}")
    for shape in shapes:
        print(f"  octoDNS Manager plan, {shape:7s} (in-process)  {show(rows[f'octo {shape}'])}")
        print(
            f"  octodns-sync plan CLI, {shape:7s}              {show(rows[f'octo-sync {shape}'])}"
        )
    print("  ratios (target <= 0.5):")
    for shape in shapes:
        octo, sync = med[f"octo {shape}"], med[f"octo-sync {shape}"]
        print(
            f"    vs octoDNS {shape:7s}: read+plan / Manager plan {med['read+plan'] / octo:.2f}; "
            f"(load+read+plan) / Manager plan {(med['load'] + med['read+plan']) / octo:.2f}; "
            f"plan CLI / octodns-sync {med['cli'] / sync:.2f}"
        )


def memory_mode(
    work: Path, sizes: list[int], scales: list[int], scale_orgs: int, out: bool
) -> None:
    """Peak RSS of the whole `plan` command per number of orgs, then per entries an org."""
    extra = ("--out", str(work / "plan.json")) if out else ()
    print(
        "plan peak RSS: the whole CLI in a child process (resource.getrusage ru_maxrss)"
        + (", with --out plan.json" if out else "")
    )
    print("  orgs   entries/org    entries   wall s   CPU s   peak RSS MB   KB per org above 1 org")
    first: tuple[int, float] | None = None
    for n in sizes:
        policies, db = prepare(work, n)
        wall, cpu, rss, rc = cli_plan(policies, db, *extra)
        assert rc == 0, f"plan exited {rc}"
        mb = rss / 1024
        first = first or (n, mb)
        slope = f"{(mb - first[1]) / (n - first[0]) * 1024:10.1f}" if n > first[0] else "         -"
        print(f"  {n:5d}  {DEFAULT.entries:11,d}  {n * DEFAULT.entries:9,d}  {wall:7.2f}"
              f"  {cpu:6.2f}  {mb:12.1f}   {slope}")  # fmt: skip
    if not scales:
        return
    print(
        f"entries an org, {scale_orgs} orgs (each list but the first on one app, so no app "
        "passes 500 entries)"
    )
    print(
        "  scale   lists  domains  entries/org    entries   peak RSS MB   bytes per entry above 1st"
    )
    base: tuple[int, float] | None = None
    for factor in scales:
        shape = Shape.scaled(factor)
        policies, db = prepare(work, scale_orgs, shape)
        _wall, _cpu, rss, rc = cli_plan(policies, db, *extra)
        assert rc == 0, f"plan exited {rc}"
        mb = rss / 1024
        total = scale_orgs * shape.entries
        base = base or (total, mb)
        slope = (
            f"{(mb - base[1]) * 2**20 / (total - base[0]):9.0f}" if total > base[0] else "        -"
        )
        print(f"  {factor:4d}x  {shape.lists:6d}  {shape.domains:7d}  {shape.entries:11,d}"
              f"  {total:9,d}  {mb:12.1f}   {slope}")  # fmt: skip


def split_mode(work: Path, n: int) -> None:
    """RSS after each phase of `plan` in-process: what is alive after loading, after planning."""
    from rovo_reconcile.policy.loader import load_policies
    from rovo_reconcile.reconcile import compute_plan
    from rovo_reconcile.render.plan_text import render_plan_text
    from rovo_reconcile.targets import resolve_target

    policies, db = prepare(work, n)

    def rss() -> str:
        status = Path("/proc/self/status").read_text()
        kib = {
            k: int(v.split()[0])
            for k, v in (x.split(":", 1) for x in status.splitlines())
            if k in ("VmRSS", "VmHWM")
        }
        return f"RSS {kib['VmRSS'] / 1024:6.1f} MB, peak {kib['VmHWM'] / 1024:6.1f} MB"

    print(f"plan of {n} orgs in-process, RSS after each phase (gc.collect() before each reading)")
    print(f"  imports                 {rss()}")
    loaded = load_policies([str(policies)], DAY, packed=True)
    gc.collect()
    print(f"  loaded                  {rss()}")
    target = resolve_target("sandbox", None, None, db, env={})
    run = asyncio.run(compute_plan(target, loaded.policies, DAY))
    gc.collect()
    print(f"  read and planned        {rss()}")
    text = render_plan_text(run.plan, color=False)
    print(f"  text plan rendered      {rss()} ({len(text) / 2**20:.1f} MB of text)")


def profile_mode(work: Path, n: int, top: int) -> None:
    from rovo_reconcile.policy.loader import load_policies
    from rovo_reconcile.reconcile import compute_plan
    from rovo_reconcile.targets import resolve_target

    policies, db = prepare(work, n)
    loaded = load_policies([str(policies)], DAY, packed=True)
    target = resolve_target("sandbox", None, None, db, env={})
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(compute_plan(target, loaded.policies, DAY))
    profiler.disable()
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        lines = text.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        total = next(line for line in lines if "function calls" in line)
        print(f"# read+plan of {n} orgs, by {order}: {total.strip()}")
        for line in lines[start : start + top + 1]:
            print(line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", ""))
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--scales", default="1,2,4", help="entries-per-org factors ('' skips)")
    parser.add_argument("--scale-orgs", type=int, default=100)
    parser.add_argument("--out", action="store_true", help="--memory: plan with --out plan.json")
    parser.add_argument("--split", type=int, default=0, help="RSS after each phase for N orgs")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--octodns-shape", choices=["entries", "lists", "both"], default="both")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--work", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--child-plan", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-octo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_plan:
        print(json.dumps(plan_in_process(Path(args.child_plan[0]), Path(args.child_plan[1]))))
        return
    if args.child_octo:
        print(json.dumps([octodns_in_process(Path(args.child_octo))]))
        return
    work = args.work or Path(tempfile.gettempdir()) / "rovo-plan-scale"
    work.mkdir(parents=True, exist_ok=True)
    if args.memory:
        sizes = [int(x) for x in args.sizes.split(",")]
        scales = [int(x) for x in args.scales.split(",") if x]
        memory_mode(work, sizes, scales, args.scale_orgs, args.out)
    elif args.split:
        split_mode(work, args.split)
    elif args.profile:
        profile_mode(work, args.orgs, args.top)
    else:
        shapes = ["entries", "lists"] if args.octodns_shape == "both" else [args.octodns_shape]
        time_mode(work, args.orgs, args.runs, shapes)


if __name__ == "__main__":
    main()
