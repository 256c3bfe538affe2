"""Review of one-round validation (issue 8): damage to every example policy, and to a
baseline, is reported and never raised, and salvage adds no error of its own: every error
beside the schema's sits at a damaged node, or the undamaged file has it too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from rovo_reconcile.policy.loader import load_policies

from .conftest import EXAMPLES
from .test_layering import CORP
from .test_validate_one_round import TODAY, _nodes, _replace

Path_ = tuple[Any, ...]

_SOURCES = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}
_SOURCES["baseline.yaml"] = CORP
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 1000),
    st.sampled_from(["", "x", "jria", "10.0.0.1/8", "https://*.com/**", "2027-02-30", "yes"]),
    st.lists(st.sampled_from(["jira", "x", "1.2.3.4"]), max_size=3),
    st.dictionaries(st.sampled_from(["name", "x", "pattern", "address"]), st.text(max_size=5)),
)


def _json_data(text: str) -> Any:
    return json.loads(json.dumps(YAML(typ="safe").load(text), default=str))


def _line_paths(text: str) -> dict[int, Path_]:
    """The path of the node each line of `text` starts (one node per line: JSON indented)."""
    found: dict[int, Path_] = {}

    def walk(node: Any, path: Path_) -> None:
        items = (
            [(node.lc.key(k)[0], k, v) for k, v in node.items()]
            if isinstance(node, dict)
            else [(node.lc.item(i)[0], i, v) for i, v in enumerate(node)]
            if isinstance(node, list)
            else []
        )
        for line, step, value in items:
            found.setdefault(line + 1, (*path, step))
            walk(value, (*path, step))

    walk(YAML().load(text), ())
    return found


def _errors_by_path(text: str, tmp: Path) -> tuple[list[tuple[str, Path_ | None]], bool]:
    """Non-schema errors as (code, path of their line), and whether the schema refused."""
    (tmp / "p.yaml").write_text(text)
    result = load_policies([str(tmp / "p.yaml")], TODAY)
    assert all(p.line >= 1 and p.column >= 1 for p in result.problems)
    if result.errors:
        assert result.policies == []
    paths = _line_paths(text)
    return (
        [
            (p.code, paths.get(p.line))
            for p in result.problems
            if p.severity == "error" and not p.code.startswith(("schema.", "yaml.", "file."))
        ],
        any(p.code.startswith("schema.") for p in result.problems),
    )


_KNOWN: dict[str, set[tuple[str, Path_ | None]]] = {}


@pytest.mark.parametrize("name", sorted(_SOURCES))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damage_to_any_example_adds_no_error_beside_the_damage(
    tmp_path: Path, name: str, data: st.DataObject
) -> None:
    """Junk in up to three nodes of an example: no exception, located problems, and no
    non-schema error at an undamaged node that the undamaged file does not have (an error
    that appeared only because salvage cut a sibling out)."""
    original = _json_data(_SOURCES[name])
    if name not in _KNOWN:  # the undamaged file's errors: the same for every example
        _KNOWN[name] = set(_errors_by_path(json.dumps(original, indent=1), tmp_path)[0])
    known = _KNOWN[name]
    edits = data.draw(
        st.lists(st.tuples(st.sampled_from(_nodes(original)), _JUNK), min_size=1, max_size=3)
    )
    damaged, touched = json.loads(json.dumps(original)), []
    for path, value in edits:
        try:
            damaged = _replace(damaged, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the way to this node
        touched.append(path)
    errors, refused = _errors_by_path(json.dumps(damaged, indent=1), tmp_path)
    if not refused:
        return  # salvage did not run: the edits made a valid shape
    for code, path in errors:
        assert path is not None, code
        about = [path]
        if code == "baseline.locked-unknown":  # also about the section the lock names
            about.append((str(damaged["locked"][path[1]]).partition(".")[0],))
        is_near = any(p[: len(t)] == t or t[: len(p)] == p for p in about for t in touched)
        assert is_near or (code, path) in known, (code, path, edits)
