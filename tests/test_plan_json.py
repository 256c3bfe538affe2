"""The JSON plan file: it round-trips, and a damaged file is a clear usage error."""

from __future__ import annotations

import json

import pytest

from rovo_reconcile.errors import UsageError
from rovo_reconcile.plan import Plan, make_plan
from rovo_reconcile.plan_json import dump_plan, load_plan
from rovo_reconcile.policy.model import (
    AddressEntry,
    DomainEntry,
    IpAllowlist,
    McpSettings,
    Org,
    OrgPolicy,
)

DESIRED = OrgPolicy(
    org=Org(id="org-j"),
    mcp=McpSettings(
        allow_atlassian_supported_domains=False,
        domains=(DomainEntry(pattern="https://a.example.com/**"),),
    ),
    ip_allowlists=(
        IpAllowlist(
            name="A", enabled=True, apps=("jira",), addresses=(AddressEntry(address="52.0.0.0/8"),)
        ),
    ),
)
LIVE = OrgPolicy(
    org=Org(id="org-j"),
    mcp=McpSettings(allow_atlassian_supported_domains=True, domains=()),
    ip_allowlists=(),
)


def _plan() -> Plan:
    org = make_plan(DESIRED, LIVE, {"ip_allowlist:A": "p.yaml:7"}, file="p.yaml")
    return Plan("sandbox (x.db)", "sha256:0", (org,))


def test_a_plan_round_trips_through_its_file() -> None:
    """dump then load gives the same plan, and dumping again the same bytes."""
    text = dump_plan(_plan())
    loaded = load_plan(text, "plan.json")
    assert loaded == _plan()
    assert dump_plan(loaded) == text


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: d.update(format_version="2"), "format_version '2' is not supported"),
        (lambda d: d["orgs"][0]["changes"][0].update(action="replace"), "unknown action 'replace'"),
        (lambda d: d["orgs"][0]["changes"][0].update(resource="dns"), "unknown resource 'dns'"),
        (
            lambda d: d["orgs"][0]["changes"][-1]["after"].pop("apps"),
            "an allowlist value needs exactly",
        ),
        (
            lambda d: d["orgs"][0]["changes"][-1].update(before={"name": "A"}),
            "do not fit the action",
        ),
        (lambda d: d.pop("orgs"), "KeyError"),
    ],
)
def test_a_damaged_plan_file_is_a_usage_error(damage: object, words: str) -> None:
    """Hand-edited or truncated plans are refused with a message naming the file, never a traceback."""
    data = json.loads(dump_plan(_plan()))
    damage(data)  # type: ignore[operator]
    with pytest.raises(UsageError) as info:
        load_plan(json.dumps(data), "plan.json")
    assert "plan.json" in str(info.value)
    assert words in str(info.value)


def test_not_json_at_all_is_a_usage_error() -> None:
    """A file that is not JSON is named as not being a plan file."""
    with pytest.raises(UsageError, match=r"plan\.json: not a rovo-reconcile plan file"):
        load_plan("{oops", "plan.json")
