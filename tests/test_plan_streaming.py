"""Orgs flow through `compute_plan` one by one: each is planned as its read ends and its live
state let go. The plan must be the one made from every org's live state at once, whatever
the order the reads end in, and a run must never hold more live states than its window."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import shutil
import uuid
import weakref
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile import apply as apply_module
from rovo_reconcile import live_state
from rovo_reconcile.api.client import AdminClient
from rovo_reconcile.api.live import APP_TYPE_KEYS, LiveOrg, Workspace
from rovo_reconcile.apply import Journal, apply_plan
from rovo_reconcile.errors import RovoError
from rovo_reconcile.live_state import read_live
from rovo_reconcile.mcp_state import McpMode
from rovo_reconcile.plan import fingerprint
from rovo_reconcile.plan_json import dump_plan, plan_chunks, write_plan
from rovo_reconcile.policy.loader import LoadedPolicy, load_policies
from rovo_reconcile.policy.model import AddressEntry, Org, OrgPolicy
from rovo_reconcile.reconcile import compute_plan, fingerprint_each, plan_from_live
from rovo_reconcile.targets import Target, resolve_target
from tests.apply_helpers import BASE, sandbox
from tests.conftest import EXAMPLES, CliRunner

DAY = date(2026, 11, 26)
_SMALL = (EXAMPLES / "small-team.yaml").read_text("utf-8")
_SMALL_ID = "3f9c2a71-8d4e-4b6a-a1c5-7e20d9b4f638"

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_json, max_size=6))
def test_fingerprint_each_is_the_fingerprint_of_the_list(values: list[Any]) -> None:
    assert fingerprint_each(iter(values)) == fingerprint(values)


def _policies(tmp_path: Path, copies: int = 8) -> Path:
    """The examples, and `copies` more orgs like the small team's."""
    directory = tmp_path / "policies"
    shutil.copytree(EXAMPLES, directory)
    for index in range(copies):
        org = str(uuid.uuid5(uuid.NAMESPACE_URL, f"streaming-{index}"))
        text = _SMALL.replace(_SMALL_ID, org).replace("Northwind Labs", f"Org {index}")
        (directory / f"copy-{index}.yaml").write_text(text, "utf-8")
    return directory


def _loaded(directory: Path) -> list[LoadedPolicy]:
    loaded = load_policies([str(directory)], DAY, packed=True)
    assert not loaded.errors, [p.message for p in loaded.problems]
    return loaded.policies


def _target(tmp_path: Path) -> Target:
    return resolve_target("sandbox", None, None, tmp_path / "sandbox.db", env={})


@pytest.fixture
def failing_org(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Orgs put in the set fail their read (a RovoError, as a broken API gives)."""
    failing: set[str] = set()
    real = live_state.read_org

    async def read_org(
        client: AdminClient,
        api_url: str,
        org_id: str,
        canonical: Collection[str] = (),
        mcp: McpMode = "auto",
    ) -> LiveOrg:
        if org_id in failing:
            raise RovoError(f"GET /orgs/{org_id}: 503 for the test")
        return await real(client, api_url, org_id, canonical, mcp)

    monkeypatch.setattr(live_state, "read_org", read_org)
    return failing


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_the_streamed_plan_is_the_plan_of_every_live_state_at_once(
    tmp_path: Path, failing_org: set[str], concurrency: int
) -> None:
    policies = _loaded(_policies(tmp_path))
    failing_org.add(policies[2].org_id)
    target = _target(tmp_path)
    ids = [p.org_id for p in policies]
    read = asyncio.run(read_live(target, ids, concurrency=concurrency))
    whole = plan_from_live(target.label, policies, read.results, DAY)
    streamed = asyncio.run(compute_plan(target, policies, DAY, concurrency=concurrency))
    assert dump_plan(streamed.plan) == dump_plan(whole)
    assert streamed.plan == whole
    assert streamed.requests == read.requests
    assert [o.org_id for o in streamed.plan.orgs] == sorted(ids)
    assert sum(o.error is not None for o in streamed.plan.orgs) == 1


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_each_live_state_is_let_go_once_its_org_is_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    """When an org is planned, the live states of the orgs planned before it are gone, and
    at most `concurrency` org reads are under way at any time (each holds its answers)."""
    policies = _loaded(_policies(tmp_path))
    alive: list[weakref.ref[LiveOrg]] = []
    reading = 0
    most = 0
    real = live_state.read_org

    async def read_org(
        client: AdminClient,
        api_url: str,
        org_id: str,
        canonical: Collection[str] = (),
        mcp: McpMode = "auto",
    ) -> LiveOrg:
        nonlocal reading, most
        reading += 1
        most = max(most, reading)
        try:
            result = await real(client, api_url, org_id, canonical, mcp)
        finally:
            reading -= 1
        alive.append(weakref.ref(result))
        return result

    monkeypatch.setattr(live_state, "read_org", read_org)
    held: list[int] = []

    def on_planned(loaded: LoadedPolicy, live: LiveOrg | RovoError) -> None:
        del loaded, live
        gc.collect()
        held.append(sum(ref() is not None for ref in alive))

    # Each collection then looks only at what the run made (the worker's whole heap made
    # every one ~30 ms). A frozen object is never collected, so freezing can only keep more
    # live states alive, never hide one the run kept.
    gc.freeze()
    try:
        run = asyncio.run(
            compute_plan(
                _target(tmp_path), policies, DAY, concurrency=concurrency, on_planned=on_planned
            )
        )
    finally:
        gc.unfreeze()
    assert len(run.plan.orgs) == len(policies) == 12
    assert held == [1] * 12, "only the org being planned"
    assert most == concurrency
    gc.collect()
    assert not [ref for ref in alive if ref() is not None]


def test_on_planned_hears_every_org_with_the_live_state_it_was_planned_against(
    tmp_path: Path, failing_org: set[str]
) -> None:
    policies = _loaded(_policies(tmp_path, copies=2))
    failing_org.add(policies[0].org_id)
    heard: dict[str, str] = {}

    def on_planned(loaded: LoadedPolicy, live: LiveOrg | RovoError) -> None:
        heard[loaded.org_id] = "error" if isinstance(live, RovoError) else live.org_id

    asyncio.run(compute_plan(_target(tmp_path), policies, DAY, on_planned=on_planned))
    assert heard == {p.org_id: "error" if p is policies[0] else p.org_id for p in policies}


def test_a_bug_while_planning_stops_the_orgs_not_started_and_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = _loaded(_policies(tmp_path, copies=2))
    started: list[str] = []
    real = live_state.read_org

    async def read_org(
        client: AdminClient,
        api_url: str,
        org_id: str,
        canonical: Collection[str] = (),
        mcp: McpMode = "auto",
    ) -> LiveOrg:
        started.append(org_id)
        return await real(client, api_url, org_id, canonical, mcp)

    monkeypatch.setattr(live_state, "read_org", read_org)

    def on_planned(loaded: LoadedPolicy, live: LiveOrg | RovoError) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        asyncio.run(
            compute_plan(_target(tmp_path), policies, DAY, concurrency=1, on_planned=on_planned)
        )
    assert started == [policies[0].org_id]


def test_apply_runs_at_most_window_orgs_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each org's run holds its live state while it writes: apply_plan bounds how many run."""
    directory = _policies(tmp_path, copies=4)
    running = 0
    most = 0
    real = apply_module._OrgRun.run

    async def run(self: apply_module._OrgRun) -> apply_module.OrgResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await real(self)
        finally:
            running -= 1

    monkeypatch.setattr(apply_module._OrgRun, "run", run)

    async def scenario(window: int | None) -> tuple[int, int]:
        async with sandbox(tmp_path / f"apply-{window}.db") as (client, _writes):
            policies = _loaded(directory)
            live = {p.org_id: await live_state.read_org(client, BASE, p.org_id) for p in policies}
            plan = plan_from_live("test", policies, live, DAY)
            journal = Journal(tmp_path / f"journal-{window}.jsonl")
            result = await apply_plan(
                client, BASE, plan, force=True, journal=journal, window=window
            )
            return result.exit_code, len([o for o in plan.orgs if o.changes])

    code, changed = asyncio.run(scenario(2))
    assert (code, most) == (0, 2)
    assert changed == 8
    most = 0
    assert asyncio.run(scenario(None))[0] == 0
    assert most > 2, "without a window every org runs at once, as before"


def test_plan_json_is_the_same_whatever_the_concurrency(cli: CliRunner, tmp_path: Path) -> None:
    """The reads end in another order with another concurrency; the plan does not change."""
    directory = _policies(tmp_path)
    db = tmp_path / "sandbox.db"
    outputs = []
    for concurrency in ("8", "1", "3"):
        result = cli(
            "plan", str(directory), "--target", "sandbox", "--sandbox-db", str(db),
            "--format", "json", "--concurrency", concurrency,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        assert "planned 12 org(s)" in result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(json.loads(outputs[0])["orgs"]) == 12
    out = tmp_path / "saved" / "plan.json"
    result = cli(
        "plan", str(directory), "--target", "sandbox", "--sandbox-db", str(db), "--out", str(out)
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert out.read_text("utf-8") == outputs[0]
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"], "no temporary file left"


@pytest.mark.parametrize("orgs", [0, 1, 4, 12])
def test_the_plan_file_in_pieces_is_the_plan_file(
    tmp_path: Path, failing_org: set[str], orgs: int
) -> None:
    """`plan --out`, `--format json` and `github plan` write the file an org at a time."""
    policies = _loaded(_policies(tmp_path))[:orgs]
    if orgs > 1:
        failing_org.add(policies[1].org_id)
    plan = asyncio.run(compute_plan(_target(tmp_path), policies, DAY)).plan
    chunks = list(plan_chunks(plan))
    assert "".join(chunks) == dump_plan(plan)
    assert len(chunks) == (1 if orgs == 0 else orgs + 2)
    stream = io.StringIO()
    write_plan(plan, stream)
    assert stream.getvalue() == dump_plan(plan)


def test_the_plan_file_in_pieces_keeps_unicode_and_odd_text(tmp_path: Path) -> None:
    """Line breaks, quotes and non-ASCII inside values stay escaped or as they are, as in
    `dump_plan`: the pieces are cut at the file's own line structure only."""
    policies = _loaded(_policies(tmp_path, copies=0))
    plan = plan_from_live(
        'target "with\nbreaks" ünïcode',
        policies,
        {p.org_id: RovoError('multi\nline "error" ✓\n  "orgs": []') for p in policies},
        DAY,
    )
    assert "".join(plan_chunks(plan)) == dump_plan(plan)


def test_a_changed_lists_before_value_holds_the_policys_own_strings(tmp_path: Path) -> None:
    """A plan keeps its changes until every org is planned: the addresses a list keeps are
    the policy's string objects, not the live answer's copies (equal, so the JSON is too)."""
    [loaded] = _loaded(_policies(tmp_path, copies=0) / "small-team.yaml")
    policy = loaded.policy
    assert policy.ip_allowlists
    fresh = tuple(  # equal strings, other objects, and one address more: an update
        a.model_copy(
            update={
                "addresses": (
                    *(AddressEntry(address="".join(list(e.address))) for e in a.addresses),
                    AddressEntry(address="11.22.33.0/24"),
                )
            }
        )
        for a in policy.ip_allowlists
    )
    live = LiveOrg(
        org_id=loaded.org_id,
        state=OrgPolicy(org=Org(id=loaded.org_id), ip_allowlists=fresh),
        workspaces=tuple(Workspace(f"ws-{app}", app, key) for app, key in APP_TYPE_KEYS.items()),
    )
    plan = plan_from_live("test", [loaded], {loaded.org_id: live}, DAY)
    [org] = plan.orgs
    updates = [c for c in org.changes if c.resource == "ip_allowlist"]
    assert [c.action for c in updates] == ["update"] * len(fresh)
    assert org.desired is not None
    for change in updates:
        [desired] = [a for a in org.desired["ipAllowlists"] if a["name"] == change.before["name"]]
        held = {id(a) for a in desired["addresses"]}
        kept = [a for a in change.before["addresses"] if a != "11.22.33.0/24"]
        assert kept == desired["addresses"]
        assert all(id(a) in held for a in kept)
