"""The fast paths of `validate` agree with the exact ones they stand in for (issue 9)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rovo_reconcile.policy import yaml_source
from rovo_reconcile.policy.problems import ERROR, Problem
from rovo_reconcile.policy.schema import _is_valid, _validator
from rovo_reconcile.policy.yaml_source import MAX_DEPTH, YamlRejected, _mark_at

ROOT = Path(__file__).resolve().parent.parent
POLICIES = sorted([*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/corpus/**/*.yaml")], key=str)
EXAMPLE = (ROOT / "examples/policies/enterprise.yaml").read_text("utf-8")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _check_agrees(text: str) -> bool:
    """The fast YAML path accepts only what the exact one accepts, with equal data and marks.
    True when the fast path answered (rather than handing over)."""
    try:
        yaml_source._check_flow_depth(text, "f.yaml")
    except YamlRejected:
        return False
    fast = yaml_source._parse_plain_fast(text, "f.yaml")
    if fast is None:
        return False
    try:
        exact, problems = yaml_source._parse_exact(text, "f.yaml")
    except YamlRejected as e:  # pragma: no cover - the failure this test looks for
        pytest.fail(f"the fast path accepted what the exact one refuses: {e.problem}")
    assert problems == []
    assert _same(fast.data, exact.data)
    assert fast.values == exact.values
    assert fast.keys == exact.keys
    return True


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_fast_yaml_path_agrees_on_every_example_and_corpus_file(path: Path) -> None:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return
    _check_agrees(text)


def test_the_fast_yaml_path_reads_the_example_policies() -> None:
    assert _check_agrees(EXAMPLE)


_YAML_NOISE = st.sampled_from(
    [
        "&a ", "*a", "!!str ", "!x ", "<<: ", "? ", ": ", "- ", "[", "]", "{", "}", ",", "#",
        "'", '"', "\\", "\n", "\n  ", "\t", "---\n", "...\n", "%YAML 1.2\n", "|\n  ", ">-\n  ",
        "~", "null", "0x1F", "0o7", "1e3", ".inf", ".NaN", "true", "On", "2027-01-01", "é",
        "\u2028", "\x85", "\r\n", "\ufeff", "\x07", "key: ", "a: 1\na: 2\n",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(EXAMPLE)), _YAML_NOISE), max_size=4))
def test_the_fast_yaml_path_never_accepts_what_the_exact_one_refuses(
    edits: list[tuple[int, str]],
) -> None:
    text = EXAMPLE
    for at, noise in sorted(edits, reverse=True):
        text = text[:at] + noise + text[at:]
    _check_agrees(text)


@pytest.mark.parametrize("ending", ["...\n...\n", "...\n...", "...\n\n...\n", "... \n..."])
def test_two_document_end_markers_are_read_by_the_exact_path(ending: str) -> None:
    """libyaml takes a `...` after `...` as nothing, the exact parser as a second document
    (refused): the fast path leaves any `...` line to the exact one (found by hypothesis)."""
    _check_agrees(EXAMPLE + ending)


def _reference_flow_depth(text: str) -> int | None:
    """The character-by-character scan the regular-expression one replaced: where it refuses."""
    depth = 0
    index = 0
    previous = "\n"
    while index < len(text):
        ch = text[index]
        if ch in " \t":
            index += 1
            continue
        if ch in "\"'" and previous in "\n[{,:-?":
            close = text.find(ch, index + 1)
            index = len(text) if close < 0 else close
        elif ch == "#" and previous in " \t\n":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return index
        elif ch in "]}":
            depth = max(0, depth - 1)
        previous = text[index] if index < len(text) else ch
        index += 1
    return None


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["[", "{", "[[[[", "{{{{", "]", "}", '"', "'", "#", "\n", " ", "\t", ",",
                         ":", "-", "?", "a", "[" * 40]),
        max_size=60,
    )
)  # fmt: skip
def test_the_flow_depth_scan_refuses_exactly_where_the_old_one_did(parts: list[str]) -> None:
    text = "".join(parts)
    expected = _reference_flow_depth(text)
    if expected is None:
        yaml_source._check_flow_depth(text, "f.yaml")
        return
    with pytest.raises(YamlRejected) as refused:
        yaml_source._check_flow_depth(text, "f.yaml")
    assert refused.value.problem == Problem.at(
        "f.yaml",
        _mark_at(text, expected),
        ERROR,
        "yaml.depth",
        f"the YAML nests deeper than {MAX_DEPTH} levels",
    )


_BASE = yaml_source.parse_text(EXAMPLE, "e.yaml")[0].data
_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.sampled_from([1.0, 2.5, float("nan"), float("inf")])
    | st.sampled_from(
        ["", "x", "jira", "rovo", "OrgPolicy", "rovo-reconcile/v1", "2027-02-30", "2027-01-01",
         "2027-1-1", "a" * 501, "9.9.9.9", "https://x.example.com/**", "org-1", "-bad", "anthropic",
         "2027-01-01\n"]
    ),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["pattern", "note", "expires", "address", "tool", "name", "x", "id"]),
        inner,
        max_size=3,
    ),
    max_leaves=6,
)  # fmt: skip


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_the_compiled_schema_check_agrees_with_jsonschema(data: st.DataObject) -> None:
    doc = copy.deepcopy(_BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if action == "replace":
                doc = data.draw(_ANY)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = data.draw(_ANY)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["note", "extra", "expires", "apps"]))] = data.draw(
                _ANY
            )
        else:
            parent.append(data.draw(_ANY))
    assert _is_valid()(doc) == _validator().is_valid(doc)
