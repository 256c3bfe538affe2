"""Plan policies against live state: the shared first half of `plan`, `apply` and `drift`.

Files are already loaded and valid; this module reads each org once, applies
expiry as of `today`, and hands (desired, live) to the pure planner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from rovo_reconcile.api.live import LiveOrg
from rovo_reconcile.clickpath import manual_steps
from rovo_reconcile.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_GUARD,
    EXIT_OK,
    RovoError,
    UsageError,
)
from rovo_reconcile.guards import check_guards
from rovo_reconcile.live_state import read_live
from rovo_reconcile.mcp_state import McpMode, manual_mcp
from rovo_reconcile.plan import (
    OrgPlan,
    Plan,
    Refusal,
    allowlist_value,
    annotate,
    effective_policy,
    fingerprint,
    make_plan,
    state_value,
)
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.policy.model import OrgPolicy
from rovo_reconcile.progress import OnOrgDone
from rovo_reconcile.targets import Target
from rovo_reconcile.write_order import NoSafeOrder, allowlist_steps

__all__ = [
    "PlanRun",
    "apply_refusals",
    "compute_plan",
    "parse_shard",
    "plan_exit_code",
    "plan_from_live",
    "select_shard",
]


@dataclass(frozen=True, repr=False)
class PlanRun:
    plan: Plan
    live: Mapping[str, LiveOrg | RovoError]
    requests: int

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run (3.11) formats its finished main task, result included,
        # when it restores the SIGINT handler; a full repr of every org's state cost seconds.
        return f"PlanRun({len(self.plan.orgs)} orgs, {self.requests} requests)"


def plan_exit_code(plan: Plan, *, detailed: bool) -> int:
    """An org that could not be planned (1) outranks a guard refusal (3), then changes (2)."""
    if any(org.error for org in plan.orgs):
        return EXIT_ERROR
    if any(org.refusals for org in plan.orgs):
        return EXIT_GUARD
    return EXIT_CHANGES if detailed and not plan.empty else EXIT_OK


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`K/N` (1 <= K <= N) -> (K, N)."""
    if text is None:
        return None
    k, slash, n = text.partition("/")
    if not (slash and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise UsageError(f"--shard {text!r}: write K/N with 1 <= K <= N, such as 2/4")
    return int(k), int(n)


def select_shard(
    policies: Sequence[LoadedPolicy], shard: tuple[int, int] | None
) -> list[LoadedPolicy]:
    """The K-th of N slices, by a hash of the org id: stable as orgs come and go."""
    if shard is None:
        return list(policies)
    k, n = shard
    return [p for p in policies if _bucket(p.policy.org.id, n) == k - 1]


def _bucket(org_id: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(org_id.encode("utf-8")).digest()[:8], "big") % n


def plan_from_live(
    target_label: str,
    policies: Sequence[LoadedPolicy],
    live: Mapping[str, LiveOrg | RovoError],
    today: date,
    *,
    force: bool = False,
) -> Plan:
    """Plan each policy against its org's live state; `force` drops the refusals that
    `apply --force` passes, so the plan shows only what would still stop apply."""
    orgs: list[OrgPlan] = []
    for loaded in sorted(policies, key=lambda p: p.policy.org.id):
        desired = effective_policy(loaded.policy, today)
        result = live[desired.org.id]
        if not isinstance(result, RovoError) and desired.ip_allowlists is not None:
            ambiguity = result.ambiguity()
            result = RovoError(ambiguity) if ambiguity is not None else result
        if isinstance(result, RovoError):
            orgs.append(
                OrgPlan(
                    org_id=desired.org.id,
                    live_fingerprint="",
                    changes=(),
                    file=loaded.file,
                    guards=desired.guards,
                    desired=state_value(desired),
                    error=str(result),
                    org_name=desired.org.name,
                )
            )
            continue
        mcp, desired, notes = manual_mcp(desired, result.mcp_live, result.notes, manual_steps)
        desired, absent = _apps_the_org_has(desired, result)
        notes += absent
        sources = {key: where for key in loaded.sources if (where := loaded.where(key))}
        planned = make_plan(desired, result.state, sources, file=loaded.file, notes=notes)
        orgs.append(
            replace(
                annotate(planned, desired),
                org_name=desired.org.name,
                refusals=tuple(
                    r for r in apply_refusals(planned, result) if not (force and r.forceable)
                ),
                mcp=mcp,
            )
        )
    desired_hash = fingerprint([org.desired for org in orgs])
    return Plan(target_label, desired_hash, tuple(orgs))


def apply_refusals(plan: OrgPlan, live: LiveOrg) -> tuple[Refusal, ...]:
    """What apply will refuse, judged as apply judges it: the guards, and allowlist changes
    that no write order can make without shutting a `mustAllow` address out on the way."""
    refusals = check_guards(plan, live.state, live.kept_apps)
    values = {a.name: allowlist_value(a) for a in live.state.ip_allowlists or ()}
    try:
        allowlist_steps(plan.changes, values, plan.guards.must_allow, live.kept_apps)
    except NoSafeOrder as e:
        refusals.append(Refusal(str(e), forceable=False))
    return tuple(refusals)


def _apps_the_org_has(desired: OrgPolicy, live: LiveOrg) -> tuple[OrgPolicy, tuple[str, ...]]:
    """Leave out of each allowlist the apps the org has no workspace of: there is nothing to
    attach, and keeping them would plan the same change on every run."""
    present = {w.app for w in live.workspaces if w.app is not None}
    if desired.ip_allowlists is None:
        return desired, ()
    notes: list[str] = []
    lists = []
    for allowlist in desired.ip_allowlists:
        missing = [app for app in allowlist.apps if app not in present]
        if missing:
            notes.append(
                f"allowlist {allowlist.name!r}: the org has no {', '.join(missing)} workspace; "
                "it is covered once one exists"
            )
            allowlist = allowlist.model_copy(
                update={"apps": tuple(a for a in allowlist.apps if a in present)}
            )
        lists.append(allowlist)
    return desired.model_copy(update={"ip_allowlists": tuple(lists)}), tuple(notes)


def _policy_domains(policy: OrgPolicy) -> frozenset[str]:
    """The policy's domain patterns, which the loader has normalised."""
    mcp = policy.mcp
    return frozenset(d.pattern for d in mcp.domains or ()) if mcp is not None else frozenset()


async def compute_plan(
    target: Target,
    policies: Sequence[LoadedPolicy],
    today: date,
    *,
    concurrency: int = 8,
    force: bool = False,
    on_done: OnOrgDone | None = None,
    mcp: McpMode = "auto",
) -> PlanRun:
    """Read every org (read-only) and plan it; `on_done` hears of each org read; `mcp` is
    `--mcp` (`mcp_state`)."""
    org_ids = [p.policy.org.id for p in policies]
    canonical = {p.policy.org.id: _policy_domains(p.policy) for p in policies}
    read = await read_live(
        target, org_ids, concurrency=concurrency, on_done=on_done, canonical=canonical, mcp=mcp
    )
    the_plan = plan_from_live(target.label, policies, read.results, today, force=force)
    return PlanRun(the_plan, read.results, read.requests)
