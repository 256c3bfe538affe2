"""The published JSON Schema and the example policies: one schema, self-describing, all examples valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from ruamel.yaml import YAML

from rovo_reconcile.policy.schema import schema_text

from .conftest import EXAMPLES, ROOT, CliRunner

SCHEMA_FILE = ROOT / "schemas" / "rovo-policy.schema.json"
PACKAGED_SCHEMA_FILE = ROOT / "src" / "rovo_reconcile" / "data" / "rovo-policy.schema.json"
MODELINE = "# yaml-language-server: $schema=../../schemas/rovo-policy.schema.json"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.y*ml"))


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text("utf-8"))
    return loaded


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A subschema with the annotations of its local `$ref` target filled in underneath its own."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    assert ref.startswith("#/$defs/"), f"unexpected non-local $ref {ref}"
    target: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return {**_resolve(schema, target), **node}


def _subschemas(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object under `node` (itself included), with a JSON-pointer-like location."""
    if not isinstance(node, dict):
        return
    yield where, node
    for keyword in ("properties", "$defs"):
        for name, child in node.get(keyword, {}).items():
            yield from _subschemas(child, f"{where}/{keyword}/{name}")
    if "items" in node:
        yield from _subschemas(node["items"], f"{where}/items")
    for keyword in ("oneOf", "anyOf", "allOf"):
        for index, child in enumerate(node.get(keyword, [])):
            yield from _subschemas(child, f"{where}/{keyword}/{index}")


def _load_example(path: Path) -> Any:
    """Plain YAML load, as check-jsonschema does: YAML timestamps end up as strings."""
    data = YAML(typ="safe", pure=True).load(path.read_text("utf-8"))
    return json.loads(json.dumps(data, default=str))


def test_published_and_packaged_schema_are_byte_identical() -> None:
    """schemas/ and the package's data/ hold the same bytes, and schema_text() returns them."""
    published = SCHEMA_FILE.read_bytes()
    assert PACKAGED_SCHEMA_FILE.read_bytes() == published
    assert schema_text() == published.decode("utf-8")


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """The schema passes the Draft 2020-12 metaschema and declares that dialect."""
    schema = _schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_property_has_a_title_and_a_description() -> None:
    """Every key carries its own title and description, which editors show on hover."""
    schema = _schema()
    missing: list[str] = []
    checked = 0
    for where, node in _subschemas(schema, "#"):
        for name, prop in node.get("properties", {}).items():
            checked += 1
            for annotation in ("title", "description"):
                text = prop.get(annotation)
                if not (isinstance(text, str) and text.strip()):
                    missing.append(f"{where}/properties/{name}: {annotation}")
    assert checked > 20
    assert missing == []


def test_every_def_has_a_title_and_a_description() -> None:
    """Every reusable definition in $defs is documented on its own."""
    schema = _schema()
    for name, definition in schema["$defs"].items():
        assert definition.get("title"), f"$defs/{name} has no title"
        assert definition.get("description"), f"$defs/{name} has no description"


def test_every_object_schema_forbids_unknown_keys() -> None:
    """Unknown keys are errors everywhere: every object schema has additionalProperties: false."""
    objects = [
        (where, node)
        for where, node in _subschemas(_schema(), "#")
        if node.get("type") == "object" or "properties" in node
    ]
    assert len(objects) >= 8
    open_objects = [
        where for where, node in objects if node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_there_are_at_least_four_examples() -> None:
    """examples/policies/ ships at least four example policies."""
    assert len(EXAMPLE_FILES) >= 4, EXAMPLE_FILES


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_starts_with_the_schema_modeline(path: Path) -> None:
    """Each example's first line points yaml-language-server at the published schema."""
    first_line = path.read_text("utf-8").splitlines()[0]
    assert first_line == MODELINE
    assert (path.parent / "../../schemas/rovo-policy.schema.json").resolve() == SCHEMA_FILE


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_is_valid_under_plain_jsonschema(path: Path) -> None:
    """Each example validates with stock jsonschema and format checks, independent of our loader."""
    validator = Draft202012Validator(_schema(), format_checker=FormatChecker())
    validator.validate(_load_example(path))


def test_examples_have_distinct_org_ids() -> None:
    """One organization per file: no two examples govern the same org."""
    ids = [_load_example(path)["org"]["id"] for path in EXAMPLE_FILES]
    assert len(set(ids)) == len(ids), ids


def test_validate_examples_strict_through_the_cli(cli: CliRunner) -> None:
    """`rovo-reconcile validate examples/policies --strict` exits 0 with no errors or warnings."""
    result = cli("validate", str(EXAMPLES), "--strict")
    assert result.code == 0, result.stdout + result.stderr
    assert f"{len(EXAMPLE_FILES)} policy files checked: valid (0 errors, 0 warnings)" in (
        result.stdout
    )


def test_schema_command_prints_the_schema_file(cli: CliRunner) -> None:
    """`rovo-reconcile schema` prints exactly the text of schemas/rovo-policy.schema.json."""
    result = cli("schema")
    assert result.code == 0, result.stderr
    assert result.stdout == SCHEMA_FILE.read_text("utf-8")
