"""One-round validation: schema errors no longer hide the semantic checks of the parts they
do not touch, so a file reports everything it can in one run (policy/salvage.py)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from rovo_reconcile.policy.loader import load_policies

from .conftest import EXAMPLES, CliRunner

EVERY_SECTION = Path(__file__).parent / "data" / "every-section-errors.yaml"
TODAY = date(2026, 12, 1)


def test_a_file_with_errors_in_every_section_reports_them_all_at_once(cli: CliRunner) -> None:
    """Schema errors (unknown key, type, date, app, required, maximum) and the semantic errors
    next to them (public-suffix wildcard, host bits, netmask, octet, prefix) in one run."""
    result = cli("validate", "--format", "json", str(EVERY_SECTION))
    assert result.code == 1
    found = [(p["line"], p["code"]) for p in json.loads(result.stdout)["problems"]]
    assert found == [
        (3, "schema.additionalProperties"),
        (7, "schema.type"),
        (9, "domain.wildcard-public-suffix"),
        (12, "schema.pattern"),
        (18, "schema.enum"),
        (20, "address.host-bits"),
        (21, "address.non-public"),
        (22, "schema.required"),
        (28, "address.netmask"),
        (28, "address.syntax"),
        (30, "address.prefix"),
        (31, "schema.maximum"),
    ]


def test_a_missing_key_of_a_list_item_points_at_that_item(cli: CliRunner) -> None:
    """`ipAllowlists[1] is missing 'name'` is reported at the item, not at the list's first line."""
    result = cli("validate", str(EVERY_SECTION))
    assert f"{EVERY_SECTION}:22:5: error: ipAllowlists[1] is missing the required key 'name'" in (
        result.stdout
    )


def test_no_lockout_is_claimed_when_the_allowlist_that_admits_it_was_refused(
    tmp_path: Path,
) -> None:
    """The lockout guard judges every enabled allowlist together; when one of them was cut
    out for a schema error it is not judged, rather than report a lockout that is not there."""
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: rovo-reconcile/v1\nkind: OrgPolicy\n"
        "org: {id: 6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13}\n"
        "ipAllowlists:\n"
        "  - {name: A, enabled: true, apps: [jira], addresses: [198.51.100.0/24]}\n"
        "  - {name: B, enabled: yes, apps: [jira], addresses: [203.0.113.0/24]}\n"
        "guards: {mustAllow: [203.0.113.10]}\n"
    )
    codes = [p.code for p in load_policies([str(policy)], TODAY).problems]
    assert codes == ["address.non-public", "schema.type"]


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _nodes(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _nodes(value, (*path, index))
    return found


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    data[head] = _replace(data[head], rest, value)
    return data


_EXAMPLE = YAML(typ="safe").load((EXAMPLES / "enterprise.yaml").read_text())
_PATHS = _nodes(_EXAMPLE)
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1000),
    st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.sampled_from(["name", "x", "pattern", "address"]), st.text(max_size=5)),
)


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(_PATHS), _JUNK), min_size=1, max_size=4))
def test_any_damage_to_a_valid_policy_is_reported_never_raised(
    tmp_path_factory: Any, edits: list[tuple[tuple[Any, ...], Any]]
) -> None:
    """Replacing any nodes of a valid example with junk gives located problems and no model,
    never an exception (the salvaged checks meet every shape the schema refuses)."""
    data = json.loads(json.dumps(_EXAMPLE, default=str))
    for path, value in edits:
        try:
            data = _replace(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the way to this node
    policy = tmp_path_factory.mktemp("damaged") / "p.yaml"
    policy.write_text(json.dumps(data))  # JSON is YAML
    result = load_policies([str(policy)], TODAY)
    assert all(p.line >= 1 and p.column >= 1 for p in result.problems)
    if result.errors:
        assert result.policies == []
