"""The two phases of a job that touch live state, each with a progress line per org on stderr
(a CI log shows how far a 60-org run has got)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import date

from rovo_reconcile.apply import ApplyResult, Journal, run_apply
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.plan import Plan
from rovo_reconcile.policy.loader import LoadedPolicy
from rovo_reconcile.progress import org_progress
from rovo_reconcile.reconcile import OnPlanned, PlanRun, compute_plan
from rovo_reconcile.targets import Target

__all__ = ["apply_with_progress", "read_and_plan"]


def read_and_plan(
    target: Target,
    policies: Sequence[LoadedPolicy],
    today: date,
    concurrency: int,
    mcp: McpMode = "auto",
    on_planned: OnPlanned | None = None,
) -> PlanRun:
    with org_progress(sys.stderr) as progress:
        return asyncio.run(
            compute_plan(
                target,
                policies,
                today,
                concurrency=concurrency,
                on_done=progress,
                on_planned=on_planned,
                mcp=mcp,
            )
        )


def apply_with_progress(
    target: Target, plan: Plan, *, force: bool, journal: Journal, concurrency: int
) -> ApplyResult:
    with org_progress(sys.stderr) as progress:
        return asyncio.run(
            run_apply(
                target,
                plan,
                force=force,
                journal=journal,
                concurrency=concurrency,
                on_done=progress,
            )
        )
