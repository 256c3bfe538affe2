"""Bounded work (issue 11, items 9 and 10): answer size, pagination, planning cost, and one
org's bug never stopping another.

Servers are the hostile one (`hostile_api`) over loopback, through the real client; clocks
are fake, so no test waits or times anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.api.client import AdminClient, ReadLimits
from rovo_reconcile.api.errors import ApiError
from rovo_reconcile.emulator import EmulatorOptions, create_app
from rovo_reconcile.errors import RovoError
from rovo_reconcile.live_state import read_orgs
from rovo_reconcile.plan import allowlist_effect, make_plan
from rovo_reconcile.policy import ranges
from rovo_reconcile.policy.model import APPS, AddressEntry, IpAllowlist, Org, OrgPolicy

from .conftest import CliRunner
from .fakes import FakeClock
from .hostile_api import Answer, HostileApi, Request, hostile_api

ORG = "org-bounds"
POLICIES = rf"/orgs/{ORG}/policies$"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[HostileApi]:
    with hostile_api(tmp_path) as server:
        yield server


def _list(api: HostileApi, limits: ReadLimits, clock: FakeClock | None = None) -> str:
    """List the org's policies through the real client; return the error it ends with."""

    async def scenario() -> str:
        client = AdminClient(httpx.AsyncClient(timeout=10), limits=limits, clock=clock)
        url = f"{api.url}/admin/control/v1/orgs/{ORG}/policies"
        try:
            async for _ in client.pages("GET", url):
                pass
        except ApiError as e:
            return str(e)
        finally:
            await client.aclose()
        raise AssertionError("the listing ended")

    return asyncio.run(scenario())


# ----------------------------------------------------------------------------- answer size


def test_an_answer_declared_larger_than_the_cap_is_refused(api: HostileApi) -> None:
    api.on("GET", POLICIES, Answer(body=b" " * (2 * 1024 * 1024 + 1) + b'{"data": []}'))
    message = _list(api, ReadLimits(max_response_bytes=1024 * 1024))
    assert message.startswith(
        f"GET /admin/control/v1/orgs/{ORG}/policies: the answer is larger than 1 MiB"
    )


def test_an_endless_answer_with_no_length_is_cut_at_the_cap(api: HostileApi) -> None:
    """Once read to the end (a 300 MB answer took 947 MB); now reading stops at the cap."""
    api.on("GET", POLICIES, Answer(stream=itertools.repeat(b" " * 65536)))
    message = _list(api, ReadLimits(max_response_bytes=256 * 1024))
    assert "the answer is larger than 262144 bytes" in message


def test_the_cap_is_set_by_the_environment(api: HostileApi, cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        f"apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\norg: {{id: {ORG}}}\nipAllowlists: []\n",
        encoding="utf-8",
    )
    api.on("GET", POLICIES, Answer(body=b" " * (2 * 1024 * 1024) + b'{"data": []}'))
    env = {"ATLASSIAN_ADMIN_API_KEY": "bounds-test-key-0123456789"}
    result = cli("plan", str(folder), "--api-url", api.url, env=env)
    assert result.code == 0, result.stdout + result.stderr  # 2 MiB is under the 20 MiB default
    small = {**env, "ROVO_RECONCILE_MAX_RESPONSE_MB": "1"}
    result = cli("plan", str(folder), "--api-url", api.url, env=small)
    assert result.code == 1
    assert "the answer is larger than 1 MiB" in result.stdout
    assert "ROVO_RECONCILE_MAX_RESPONSE_MB" in result.stdout


# ----------------------------------------------------------------------------- pagination


def _fresh_cursor(items: bool) -> Any:
    def reply(request: Request) -> Answer:
        data = [{"id": str(uuid.uuid4()), "attributes": {}}] if items else []
        return Answer(body={"data": data, "meta": {"next": str(uuid.uuid4())}})

    return reply


def test_a_fresh_cursor_forever_with_nothing_new_stops_after_a_few_pages(api: HostileApi) -> None:
    """Once 10,000 pages (579 s): now a handful of pages that bring nothing new."""
    api.on("GET", POLICIES, _fresh_cursor(items=False))
    message = _list(api, ReadLimits())
    assert "5 next pages in a row brought nothing new" in message
    assert len(api.requests) == 6


def test_a_fresh_cursor_forever_with_new_items_stops_at_the_page_limit(api: HostileApi) -> None:
    api.on("GET", POLICIES, _fresh_cursor(items=True))
    message = _list(api, ReadLimits(max_pages=30))
    assert "more than 30 pages" in message
    assert len(api.requests) == 30


class _SlowClock(FakeClock):
    """Every look at the clock finds 7 seconds gone: a slow server, without waiting."""

    def monotonic(self) -> float:
        self.now += 7.0
        return self.now


def test_a_listing_stops_when_it_has_taken_too_long(api: HostileApi) -> None:
    api.on("GET", POLICIES, _fresh_cursor(items=True))
    message = _list(api, ReadLimits(max_listing_seconds=60.0), clock=_SlowClock())
    assert "still paging after" in message
    assert "more than the 60 s a listing may take" in message
    assert len(api.requests) < 12


# ----------------------------------------------------------------------------- one org's bug


class _Broken(httpx.AsyncBaseTransport):
    """The emulator, except that any request about `org` meets a bug (not an HTTP error)."""

    def __init__(self, tmp_path: Path, org: str) -> None:
        app = create_app(tmp_path / "e.db", EmulatorOptions(settle_ms=0, page_size=50))
        self.inner = httpx.ASGITransport(app=app)
        self.org = org

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if f"/orgs/{self.org}/" in request.url.path:
            raise RuntimeError("a bug")
        return await self.inner.handle_async_request(request)


def test_an_unexpected_exception_in_one_org_is_that_orgs_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once it escaped the gather and stopped the healthy org's read too."""
    monkeypatch.delenv("ROVO_RECONCILE_DEBUG", raising=False)

    async def scenario() -> Mapping[str, object]:
        transport = _Broken(tmp_path, "org-broken")
        client = AdminClient(httpx.AsyncClient(transport=transport), clock=FakeClock())
        try:
            return await read_orgs(client, "http://sandbox.invalid", ["org-broken", "org-ok"])
        finally:
            await client.aclose()

    results = asyncio.run(scenario())
    broken = results["org-broken"]
    assert isinstance(broken, RovoError)
    assert "internal error while reading org org-broken (RuntimeError: a bug)" in str(broken)
    assert not isinstance(results["org-ok"], RovoError)


# ----------------------------------------------------------------------------- planning cost


def _reference_effect(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    live: Mapping[str, Mapping[str, Any]],
) -> str:
    """The effect as it was computed before, from whole unions: the specification."""

    def admitted(lists: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = dict.fromkeys(APPS)
        for a in lists:
            if a["enabled"]:
                nets = []
                for text in a["addresses"]:
                    with contextlib.suppress(ValueError):
                        nets.append(ipaddress.IPv4Network(text))
                for app in a["apps"]:
                    found[app] = [*(found[app] or []), *nets]
        return {
            app: None if v is None else list(ipaddress.collapse_addresses(v))
            for app, v in found.items()
        }

    def more(a: Any, b: Any) -> bool:
        if a is None:
            return b is not None
        if b is None:
            return False
        return any(not any(x.subnet_of(y) for y in b) for x in a)

    name = (before or after or {}).get("name")
    others = [v for k, v in live.items() if k != name]
    then = admitted([*others, *([before] if before else [])])
    now = admitted([*others, *([after] if after else [])])
    widens = any(more(now[app], then[app]) for app in APPS)
    narrows = any(more(then[app], now[app]) for app in APPS)
    bypass = bool(after and after["enabled"] and after["allowMobileBypass"])
    restricted = after is not None and any(then[app] is not None for app in after["apps"])
    if bypass and restricted and not (before and before["enabled"] and before["allowMobileBypass"]):
        widens = True
    return "widens" if widens else "narrows" if narrows else "neutral"


_BLOCKS = [
    "52.0.0.0/23",
    "52.0.0.0/24",
    "52.0.1.0/24",
    "52.0.0.0/25",
    "52.0.0.128/25",
    "52.0.0.7/32",
    "52.0.1.9/32",
    "52.0.2.0/24",
    "52.0.3.0/24",
    "not-an-address",
]


def _values(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.just(name),
            "enabled": st.booleans(),
            "apps": st.lists(st.sampled_from(APPS[:3]), unique=True, max_size=3),
            "allowMobileBypass": st.booleans(),
            "addresses": st.lists(st.sampled_from(_BLOCKS), unique=True, max_size=4),
        }
    )


@settings(max_examples=400, deadline=None)
@given(
    live=st.lists(st.sampled_from("ABCD"), unique=True, max_size=4).flatmap(
        lambda names: st.tuples(*(_values(n) for n in names))
    ),
    after=st.one_of(st.none(), _values("A")),
    before_from_live=st.booleans(),
)
def test_the_fast_effect_is_the_effect_of_whole_unions(
    live: tuple[dict[str, Any], ...], after: dict[str, Any] | None, before_from_live: bool
) -> None:
    """Computed from coverage counts, the effect of every change equals the union-based one."""
    present = {v["name"]: v for v in live}
    before = present.get("A") if before_from_live else None
    if before is None and after is None:
        return
    assert allowlist_effect(before, after, present) == _reference_effect(before, after, present)


def _org(lists: list[tuple[str, str, list[str]]]) -> OrgPolicy:
    return OrgPolicy(
        org=Org(id=ORG),
        ip_allowlists=tuple(
            IpAllowlist(
                name=name,
                enabled=True,
                apps=(app,),  # type: ignore[arg-type]
                addresses=tuple(AddressEntry(address=a) for a in found),
            )
            for name, app, found in lists
        ),
    )


def test_planning_many_allowlists_parses_each_address_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once every change recomputed every union (1,000 lists: 485 s). Counted, not timed:
    the addresses parsed to plan N changed lists grow with N, not N squared."""
    parsed = 0
    real = ipaddress.IPv4Network

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            nonlocal parsed
            parsed += 1
            super().__init__(*args, **kwargs)

    n = 300
    live = _org([(f"L{i}", APPS[i % 5], [f"52.{i // 256}.{i % 256}.0/32"]) for i in range(n)])
    desired = _org([(f"L{i}", APPS[i % 5], [f"52.{i // 256}.{i % 256}.1/32"]) for i in range(n)])
    ranges.span.cache_clear()
    monkeypatch.setattr(ipaddress, "IPv4Network", Counting)
    plan = make_plan(desired, live)
    assert len(plan.changes) == n
    assert {c.effect for c in plan.changes} == {"widens"}
    assert parsed <= 4 * 2 * n, parsed
