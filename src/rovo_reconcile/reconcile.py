"""Plan policies against live state: the shared first half of `plan`, `apply` and `drift`.

Files are already loaded and valid; this module reads each org once, applies
expiry as of `today`, and hands (desired, live) to the pure planner, org by org as
each read ends (`compute_plan`): no run holds every org's live state at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

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
from rovo_reconcile.live_state import stream_live
from rovo_reconcile.mcp_state import McpMode, manual_mcp
from rovo_reconcile.plan import (
    OrgPlan,
    Plan,
    Refusal,
    allowlist_value,
    annotate,
    effective_policy,
    make_plan,
    state_value,
)
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.policy.model import OrgPolicy
from rovo_reconcile.progress import OnOrgDone
from rovo_reconcile.targets import Target
from rovo_reconcile.write_order import NoSafeOrder, allowlist_steps

__all__ = [
    "OnPlanned",
    "PlanRun",
    "apply_refusals",
    "assemble_plan",
    "compute_plan",
    "fingerprint_each",
    "parse_shard",
    "plan_exit_code",
    "plan_from_live",
    "plan_org",
    "select_shard",
]


@dataclass(frozen=True, repr=False)
class PlanRun:
    plan: Plan
    requests: int

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run (3.11) formats its finished main task, result included,
        # when it restores the SIGINT handler; a full repr of every org's state cost seconds.
        return f"PlanRun({len(self.plan.orgs)} orgs, {self.requests} requests)"


OnPlanned = Callable[[LoadedPolicy, LiveOrg | RovoError], None]
"""Hears of each org once it is planned, with its policy and the live state planned against,
before that live state is let go."""


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
    return [p for p in policies if _bucket(p.org_id, n) == k - 1]


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
    return assemble_plan(
        target_label, [plan_org(p, live[p.org_id], today, force=force) for p in policies]
    )


def assemble_plan(target_label: str, orgs: Iterable[OrgPlan]) -> Plan:
    """The plan of these orgs, in org id order (whatever order they were planned in)."""
    ordered = tuple(sorted(orgs, key=lambda org: org.org_id))
    return Plan(target_label, fingerprint_each(org.desired for org in ordered), ordered)


def fingerprint_each(values: Iterable[Any]) -> str:
    """`fingerprint(list(values))`, hashed value by value: the JSON text of every org's
    desired state together is never made (tens of megabytes for a thousand orgs)."""
    digest = hashlib.sha256(b"[")
    for index, value in enumerate(values):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(b"," + text.encode("utf-8") if index else text.encode("utf-8"))
    digest.update(b"]")
    return "sha256:" + digest.hexdigest()


def plan_org(
    loaded: LoadedPolicy, live: LiveOrg | RovoError, today: date, *, force: bool = False
) -> OrgPlan:
    """One policy planned against its org's live state (or the error its read ended with)."""
    desired = effective_policy(loaded.policy, today)
    result = live
    if not isinstance(result, RovoError) and desired.ip_allowlists is not None:
        ambiguity = result.ambiguity()
        result = RovoError(ambiguity) if ambiguity is not None else result
    if isinstance(result, RovoError):
        return OrgPlan(
            org_id=desired.org.id,
            live_fingerprint="",
            changes=(),
            file=loaded.file,
            guards=desired.guards,
            desired=state_value(desired),
            error=str(result),
            org_name=desired.org.name,
        )
    mcp, desired, notes = manual_mcp(desired, result.mcp_live, result.notes, manual_steps)
    desired, absent = _apps_the_org_has(desired, result)
    notes += absent
    planned = make_plan(
        desired, result.state, loaded.source_places(), file=loaded.file, notes=notes
    )
    return replace(
        annotate(_sharing_strings(planned, desired), desired),
        org_name=desired.org.name,
        refusals=tuple(r for r in apply_refusals(planned, result) if not (force and r.forceable)),
        mcp=mcp,
    )


def _sharing_strings(plan: OrgPlan, desired: OrgPolicy) -> OrgPlan:
    """`plan` with each live address in its changes' `before` values replaced by the equal
    string the policy holds. A plan keeps its changes until every org is planned; the live
    answer's copies of the addresses a list keeps were ~30 MB of a thousand-org plan."""
    held = {e.address: e.address for a in desired.ip_allowlists or () for e in a.addresses}
    if not held:
        return plan
    changes = []
    for change in plan.changes:
        before = change.before
        if change.resource == "ip_allowlist" and isinstance(before, dict):
            shared = [held.get(a, a) for a in before["addresses"]]
            change = replace(change, before={**before, "addresses": shared})
        changes.append(change)
    return replace(plan, changes=tuple(changes))


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


async def compute_plan(
    target: Target,
    policies: Sequence[LoadedPolicy],
    today: date,
    *,
    concurrency: int = 8,
    force: bool = False,
    on_done: OnOrgDone | None = None,
    on_planned: OnPlanned | None = None,
    mcp: McpMode = "auto",
) -> PlanRun:
    """Read every org (read-only), `concurrency` orgs at a time, and plan each as soon as its
    read ends; its live state is let go once planned (and `on_planned` has seen it), so
    memory grows with the small plans, not with every org's live state. `on_done` hears of
    each org read; `mcp` is `--mcp` (`mcp_state`). The plan is the same as `plan_from_live`
    over every org's live state."""
    by_org: dict[str, list[int]] = {}
    for index, loaded in enumerate(policies):
        by_org.setdefault(loaded.org_id, []).append(index)
    planned: dict[int, OrgPlan] = {}

    def on_read(org_id: str, live: LiveOrg | RovoError) -> None:
        for index in by_org[org_id]:
            planned[index] = plan_org(policies[index], live, today, force=force)
            if on_planned is not None:
                on_planned(policies[index], live)

    requests = await stream_live(
        target,
        list(by_org),
        on_read,
        concurrency=concurrency,
        on_done=on_done,
        canonical=lambda org_id: policies[by_org[org_id][-1]].domain_patterns(),
        mcp=mcp,
    )
    the_plan = assemble_plan(target.label, (planned[i] for i in range(len(policies))))
    return PlanRun(the_plan, requests)
