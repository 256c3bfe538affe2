"""The loader keeps each policy packed (plain entries as strings, source lines as integers)
and drops its parsed document: unpacking must give the very model the rules built."""

from __future__ import annotations

import gc
import pickle
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from rovo_reconcile.policy.loader import load_policies
from rovo_reconcile.policy.model import AddressEntry, DomainEntry, OrgPolicy
from rovo_reconcile.policy.packed import PackedPolicy, WholePolicy, pack
from rovo_reconcile.policy.problems import Mark
from rovo_reconcile.policy.rules import check_policy
from rovo_reconcile.policy.yaml_source import SourceDocument, load_document
from tests.conftest import EXAMPLES

DAY = date(2026, 11, 26)

_NOTES = """\
apiVersion: rovo-reconcile/v1
kind: OrgPolicy
org: {id: 2b5c7f9e-0000-4000-8000-000000000001, name: Packed}
mcp:
  allowAtlassianSupportedDomains: false
  domains:
    - https://a.example.com/**
    - pattern: https://{app,api}.example.org/**
      note: the API and the app
    - pattern: https://b.example.com:8443/mcp/**
      expires: 2027-01-31
    - https://*.zone.example.net/**
ipAllowlists:
  - name: Office
    enabled: true
    apps: [jira, confluence]
    addresses:
      - 11.0.7.1
      - address: 11.0.7.16/28
        note: VPN
      - address: 11.0.8.0/24
        expires: 2027-03-01
        note: contractor
      - 11.0.9.0/24
  - name: Empty and off
    enabled: false
    apps: [rovo]
    addresses: []
guards:
  mustAllow: [11.0.7.1]
"""


def _same(a: Any, b: Any, where: str = "policy") -> None:
    """Equal values, and for models the same type, field dict (order included), fields
    set, extra and private: the same object as far as pydantic and pickle can tell."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__, where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        assert a.__pydantic_private__ == b.__pydantic_private__, where
        for name, value in a.__dict__.items():
            _same(value, b.__dict__[name], f"{where}.{name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def _checked(path: Path) -> tuple[OrgPolicy, dict[str, Mark]]:
    doc, problems = load_document(path, str(path))
    assert not problems
    checked = check_policy(doc, DAY)
    assert checked.policy is not None, [p.message for p in checked.problems]
    return checked.policy, checked.sources


def _policy_files(tmp_path: Path) -> list[Path]:
    own = tmp_path / "notes.yaml"
    own.write_text(_NOTES, "utf-8")
    return [*sorted(EXAMPLES.glob("*.yaml")), own]


def test_unpacking_gives_the_model_the_rules_built(tmp_path: Path) -> None:
    for path in _policy_files(tmp_path):
        policy, sources = _checked(path)
        packed = pack(policy, sources)
        again = packed.policy()
        _same(policy, again, path.name)
        assert again == policy
        assert again.model_dump() == policy.model_dump()
        assert pickle.loads(pickle.dumps(again)) == policy
        assert packed.source_lines() == {key: mark.line for key, mark in sources.items()}
        domains = policy.mcp.domains or () if policy.mcp is not None else ()
        assert packed.domain_patterns() == frozenset(d.pattern for d in domains)
        assert packed.policy() is not again, "a new model on each call"


def test_plain_entries_are_kept_as_strings_and_the_others_as_tuples(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(_NOTES, "utf-8")
    policy, sources = _checked(path)
    packed = pack(policy, sources)
    assert packed.domains is not None
    assert packed.domains == (
        "https://a.example.com/**",
        # the policy wrote {app,api}: the canonical pattern, and the spelling for manual steps
        (
            "https://{api,app}.example.org/**",
            "the API and the app",
            None,
            "https://{app,api}.example.org/**",
        ),
        ("https://b.example.com:8443/mcp/**", None, date(2027, 1, 31), None),
        "https://*.zone.example.net/**",
    )
    assert packed.addresses == (
        (
            "11.0.7.1/32",
            ("11.0.7.16/28", "VPN", None, None),
            ("11.0.8.0/24", "contractor", date(2027, 3, 1), None),
            "11.0.9.0/24",
        ),
        (),
    )
    assert packed.head.mcp is not None
    assert packed.head.mcp.domains == ()
    assert all(a.addresses == () for a in packed.head.ip_allowlists or ())


def test_entries_made_another_way_are_kept_whole() -> None:
    """An entry whose fields-set or dict differs from the rules' own (built by the
    constructor here) is not turned into a string: unpacking gives it back unchanged."""
    made = AddressEntry(address="11.0.0.0/24")  # fields set: {"address"} only
    policy = OrgPolicy.model_validate(
        {
            "org": {"id": "org-1"},
            "mcp": {"domains": [{"pattern": "https://a.example.com/**"}]},
            "ipAllowlists": [{"name": "A", "enabled": True, "apps": ["jira"], "addresses": [made]}],
        }
    )
    packed = pack(policy, {})
    assert policy.ip_allowlists is not None
    assert packed.addresses[0][0] is policy.ip_allowlists[0].addresses[0]
    assert packed.domains is not None
    assert isinstance(packed.domains[0], DomainEntry)
    _same(policy, packed.policy())


@pytest.mark.parametrize("managed", ["neither", "mcp-without-domains"])
def test_unmanaged_sections_stay_unmanaged(managed: str) -> None:
    data: dict[str, Any] = {"org": {"id": "org-1"}}
    if managed == "mcp-without-domains":
        data["mcp"] = {"allowAtlassianSupportedDomains": True}
    policy = OrgPolicy.model_validate(data)
    packed = pack(policy, {"mcp.settings:allowAtlassianSupportedDomains": Mark(4, 3)})
    _same(policy, packed.policy())
    assert packed.domains is None
    assert packed.domain_patterns() == frozenset()
    assert packed.source_lines() == {"mcp.settings:allowAtlassianSupportedDomains": 4}


@pytest.mark.parametrize("packed", [True, False])
def test_the_loader_keeps_no_parsed_document(tmp_path: Path, packed: bool) -> None:
    """Once loaded, no SourceDocument (data and every node's marks) is left alive; packed
    or not, each policy, its org id, its domains and its change-key lines are the rules'."""
    loaded = load_policies([str(p) for p in _policy_files(tmp_path)], DAY, packed=packed)
    assert not loaded.errors
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, SourceDocument)]
    for item in loaded.policies:
        assert isinstance(item.packed, PackedPolicy if packed else WholePolicy)
        policy, sources = _checked(Path(item.file))
        _same(policy, item.policy, item.file)
        assert item.org_id == policy.org.id
        assert item.source_lines() == {key: mark.line for key, mark in sources.items()}
        domains = policy.mcp.domains or () if policy.mcp is not None else ()
        assert item.domain_patterns() == frozenset(d.pattern for d in domains)


def test_a_second_file_for_an_org_still_names_the_first_files_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_NOTES, "utf-8")
    (tmp_path / "b.yaml").write_text("\n\n" + _NOTES, "utf-8")
    loaded = load_policies([str(tmp_path)], DAY, packed=True)
    [problem] = [p for p in loaded.problems if p.code == "org.duplicate"]
    assert (problem.file, problem.line, problem.column) == (str(tmp_path / "b.yaml"), 5, 11)
    assert problem.message == (
        "organization 2b5c7f9e-0000-4000-8000-000000000001 is also governed by "
        f"{tmp_path / 'a.yaml'}:3"
    )
