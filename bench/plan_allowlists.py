"""Planning time for an org with many live allowlists, all changed by the policy.

Builds N live enabled allowlists in memory, each on one app (round robin over the five,
so no app passes Atlassian's 500 entries) with two addresses, and a policy that replaces
one address of each (N updates that both widen and narrow), plus a break-glass list on
every app that admits the one `mustAllow` address. Times the pure planner
(`make_plan`) and the whole of planning (`plan_from_live`: planner, guards and the safe
write order), with no I/O; then the write order alone (`allowlist_steps` on the plan's
changes), twice: as planned (widening first fits), and with a disabled "Parked" list per app
filling it to Atlassian's 500 entries, so no union fits and the narrow-first pass orders the
writes after the widen-first pass gives up. Prints one row per N.

Usage: python bench/plan_allowlists.py [N ...]      (default: 10 100 250 500 1000)

Measured on the issue 11 work (one core, seconds; "before" is the commit before it):

    allowlists   make_plan before / after   plan_from_live before / after
           500         21.4 / 0.016               61.7 / 0.24
          1000        203.7 / 0.13               278.9 / 0.97
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from rovo_reconcile.api.live import APP_TYPE_KEYS, LiveAllowlist, LiveOrg, LiveResource, Workspace
from rovo_reconcile.app_limit import MAX_ENTRIES_PER_APP, entries_per_app
from rovo_reconcile.plan import OrgPlan, allowlist_value, make_plan
from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.policy.model import APPS, AddressEntry, IpAllowlist, Org, OrgPolicy
from rovo_reconcile.reconcile import plan_from_live
from rovo_reconcile.write_order import allowlist_steps

ORG = "bench-org"
DAY = date(2026, 11, 26)
ADDRESSES = 2
MUST_ALLOW = "91.208.44.10"
WORKSPACES = tuple(Workspace(f"ws-{app}", app, key) for app, key in APP_TYPE_KEYS.items())
APP_LIST = ", ".join(APPS)


def addresses(index: int, first: int) -> list[str]:
    return [f"52.{index // 256}.{index % 256}.{first + j}" for j in range(ADDRESSES)]


def live_org(n: int) -> LiveOrg:
    lists = [("Break glass", APPS, [MUST_ALLOW])] + [
        (f"List {i:05d}", (APPS[i % len(APPS)],), addresses(i, 0)) for i in range(n)
    ]
    models = tuple(
        IpAllowlist(
            name=name,
            enabled=True,
            apps=apps,
            addresses=tuple(AddressEntry(address=f"{a}/32") for a in found),
        )
        for name, apps, found in lists
    )
    details = {
        name: LiveAllowlist(
            id=f"p-{k}",
            name=name,
            resources=tuple(
                LiveResource(w.id, "applied", w.app) for w in WORKSPACES if w.app in apps
            ),
            partial_apps=(),
        )
        for k, (name, apps, _) in enumerate(lists)
    }
    state = OrgPolicy(org=Org(id=ORG), ip_allowlists=models)
    return LiveOrg(org_id=ORG, state=state, workspaces=WORKSPACES, allowlists=details)


def policy_text(n: int) -> str:
    lines = [
        "apiVersion: rovo-reconcile/v1",
        "kind: OrgPolicy",
        f"org: {{id: {ORG}}}",
        "ipAllowlists:",
        f"  - {{name: Break glass, enabled: true, apps: [{APP_LIST}], addresses: [{MUST_ALLOW}]}}",
    ]
    for i in range(n):
        wanted = ", ".join(addresses(i, 1))
        lines.append(
            f"  - {{name: List {i:05d}, enabled: true, apps: [{APPS[i % len(APPS)]}], addresses: [{wanted}]}}"
        )
    lines.append(f"guards: {{mustAllow: [{MUST_ALLOW}]}}")
    return "\n".join(lines) + "\n"


def write_order(planned: OrgPlan, live: LiveOrg, at_limit: bool) -> float:
    """Seconds `allowlist_steps` takes on the plan's changes; `at_limit`: with every app
    filled to the limit by one disabled list (unchanged by the plan)."""
    values = {a.name: allowlist_value(a) for a in live.state.ip_allowlists or ()}
    if at_limit:
        for k, (app, count) in enumerate(sorted(entries_per_app(values.values()).items())):
            name = f"Parked {app}"
            filler = [
                f"100.{64 + k}.{j // 256}.{j % 256}/32" for j in range(MAX_ENTRIES_PER_APP - count)
            ]
            values[name] = {
                "name": name,
                "enabled": False,
                "apps": [app],
                "allowMobileBypass": False,
                "addresses": filler,
            }
        assert set(entries_per_app(values.values()).values()) == {MAX_ENTRIES_PER_APP}
    started = time.perf_counter()
    steps = allowlist_steps(planned.changes, values, planned.guards.must_allow, live.kept_apps)
    took = time.perf_counter() - started
    assert len(steps) == 2 * len(planned.changes), len(steps)
    return took


def run(n: int, folder: Path) -> tuple[int, float, float, float, float]:
    path = folder / f"policy-{n}.yaml"
    path.write_text(policy_text(n), encoding="utf-8")
    loaded = load_policies([str(path)], DAY)
    errors = [p for p in loaded.problems if p.severity == "error"]
    assert not errors, errors[:3]
    live = live_org(n)
    started = time.perf_counter()
    planned = make_plan(loaded.policies[0].policy, live.state)
    pure = time.perf_counter() - started
    started = time.perf_counter()
    plan = plan_from_live("bench", loaded.policies, {ORG: live}, DAY)
    whole = time.perf_counter() - started
    org = plan.orgs[0]
    assert org.error is None, org.error
    assert not org.refusals, org.refusals
    assert len(org.changes) == len(planned.changes) == n
    order, limited = write_order(planned, live, False), write_order(planned, live, True)
    return len(org.changes), pure, whole, order, limited


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10, 100, 250, 500, 1000]
    print(
        f"{'allowlists':>10} {'changes':>8} {'make_plan s':>12} {'plan_from_live s':>17} "
        f"{'write_order ms':>15} {'at the limit ms':>16}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            changes, pure, whole, order, limited = run(n, Path(folder))
            print(
                f"{n:>10} {changes:>8} {pure:>12.3f} {whole:>17.3f} {order * 1000:>15.1f} "
                f"{limited * 1000:>16.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
