"""The published JSON Schema, and its errors turned into located, readable problems."""

from __future__ import annotations

import difflib
import functools
import json
import numbers
import re
from collections.abc import Callable, Iterable
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING, Any

from rovo_reconcile.policy.problems import ERROR, Problem
from rovo_reconcile.policy.salvage import Invalid
from rovo_reconcile.policy.yaml_source import DataPath, SourceDocument

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["describe_path", "invalid_parts", "schema_problems", "schema_text"]


def schema_text() -> str:
    """The schema exactly as shipped (identical to schemas/rovo-policy.schema.json)."""
    return (
        resources.files("rovo_reconcile")
        .joinpath("data/rovo-policy.schema.json")
        .read_text("utf-8")
    )


_FORMATS = ("date",)
"""The formats checked; JSON Schema leaves the others to annotation, and so do we."""


@functools.cache
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(
        json.loads(schema_text()), format_checker=FormatChecker(list(_FORMATS))
    )


def schema_problems(doc: SourceDocument) -> list[Problem]:
    if doc.data is None:
        return [
            Problem(
                doc.file,
                1,
                1,
                ERROR,
                "schema.empty",
                "the file is empty",
                "start from one of the policies in examples/policies/",
            )
        ]
    if _is_valid()(doc.data):
        return []
    problems: set[Problem] = set()
    for error in _relevant(_validator().iter_errors(doc.data)):
        problems.update(_translate(error, doc))
    return sorted(problems)


def invalid_parts(doc: SourceDocument) -> list[Invalid]:
    """Where the schema refuses `doc`, for `salvage` (only asked of an invalid document)."""
    parts = []
    for error in _relevant(_validator().iter_errors(doc.data)):
        unknown: tuple[str, ...] = ()
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            subschema: Any = error.schema
            allowed = subschema.get("properties", {})
            unknown = tuple(sorted(set(error.instance) - set(allowed)))
        parts.append(Invalid(tuple(error.absolute_path), unknown))
    return parts


_Check = Callable[[Any], bool]


class _Unsupported(Exception):
    """A schema keyword the compiled check does not implement."""


@functools.cache
def _is_valid() -> _Check:
    """Whether a document is valid: the schema compiled into plain Python checks.

    jsonschema collects and describes errors, which costs about as much on a valid
    document as on an invalid one; this answers yes or no only, and exactly as jsonschema
    would (tests/test_validate_fast_path.py checks both on generated documents). A
    schema keyword it does not know makes it fall back to jsonschema's own `is_valid`.
    Compiled from the schema alone: a valid document never imports jsonschema (~30 ms of
    start-up in every command that reads policies), which only describes errors.
    """
    schema = json.loads(schema_text())
    try:
        return _compile(schema, schema, None)
    except _Unsupported:  # pragma: no cover - every keyword the shipped schema uses is known
        return _validator().is_valid


_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description"})


def _compile(schema: Any, root: Any, validator: Any) -> _Check:
    """One check for a (sub)schema: every keyword's check must hold (JSON Schema 2020-12)."""
    if schema is True:
        return lambda value: True
    if schema is False:
        return lambda value: False
    checks: list[_Check] = []
    for keyword, expected in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        compiler = _KEYWORDS.get(keyword)
        if compiler is None:
            raise _Unsupported(keyword)
        check = compiler(expected, schema, root, validator)
        if keyword == "type":  # first: a oneOf branch that does not fit stops at once
            checks.insert(0, check)
        else:
            checks.append(check)
    return _every(checks)


def _every(checks: list[_Check]) -> _Check:
    """All of `checks`, as plain calls: a generator per value cost a third of the check."""
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    if len(checks) == 3:
        first, second, third = checks
        return lambda value: first(value) and second(value) and third(value)

    def check(value: Any) -> bool:
        for one in checks:  # noqa: SIM110 - a loop, not all() over a generator: hot path
            if not one(value):
                return False
        return True

    return check


_TYPES: dict[str, _Check] = {  # as jsonschema's draft 2020-12 type checker has them
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    # bool is an int to Python, never a number to JSON Schema; 1.0 is an integer (draft 6 on)
    "number": lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


def _type(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    names = expected if isinstance(expected, list) else [expected]
    if not all(name in _TYPES for name in names):
        raise _Unsupported(f"type {expected!r}")
    checks = [_TYPES[name] for name in names]
    if len(checks) == 1:
        return checks[0]
    return lambda value: any(check(value) for check in checks)


def _texts(expected: Any) -> frozenset[str]:
    if not all(isinstance(option, str) for option in expected):
        raise _Unsupported("const or enum of other than text")
    return frozenset(expected)


def _const(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    options = _texts([expected])
    return lambda value: isinstance(value, str) and value in options


def _enum(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    options = _texts(expected)
    return lambda value: isinstance(value, str) and value in options


def _properties(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    checks = {name: _compile(sub, root, validator) for name, sub in expected.items()}

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name, item in value.items():
            sub = checks.get(name)
            if sub is not None and not sub(item):
                return False
        return True

    return check


def _additional(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    if expected is not False or "patternProperties" in schema:
        raise _Unsupported("additionalProperties other than false")
    known = frozenset(schema.get("properties", {}))
    return lambda value: not isinstance(value, dict) or known.issuperset(value)


def _required(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    names = frozenset(expected)
    return lambda value: not isinstance(value, dict) or names.issubset(value)


def _items(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    if "prefixItems" in schema:
        raise _Unsupported("prefixItems")
    sub = _compile(expected, root, validator)

    def check(value: Any) -> bool:
        if isinstance(value, list):
            for item in value:
                if not sub(item):
                    return False
        return True

    return check


def _if(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    condition = _compile(expected, root, validator)
    then = _compile(schema.get("then", True), root, validator)
    otherwise = _compile(schema.get("else", True), root, validator)
    return lambda value: then(value) if condition(value) else otherwise(value)


def _not(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    sub = _compile(expected, root, validator)
    return lambda value: not sub(value)


def _with_if(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    """`then` and `else` alone mean nothing: `if` checks them."""
    return lambda value: True


def _one_of(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    subs = [_compile(sub, root, validator) for sub in expected]

    def check(value: Any) -> bool:
        found = False
        for sub in subs:
            if sub(value):
                if found:
                    return False  # a second branch fits: not exactly one
                found = True
        return found

    return check


def _ref(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    prefix = "#/$defs/"
    if not isinstance(expected, str) or not expected.startswith(prefix):
        raise _Unsupported(f"$ref {expected!r}")
    return _compile(root["$defs"][expected.removeprefix(prefix)], root, validator)


def _pattern(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    search = re.compile(expected).search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _format(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
    if expected not in _FORMATS:
        return lambda value: True  # jsonschema ignores a format it does not check
    return _is_date


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _is_date(value: Any) -> bool:
    """jsonschema's `date` format check, exactly: text that is not a real date fails."""
    if not isinstance(value, str):
        return True
    try:
        return bool(_DATE.fullmatch(value) and date.fromisoformat(value))
    except ValueError:
        return False


def _length(low: bool) -> Callable[[Any, Any, Any, Any], _Check]:
    def compiler(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
        if low:
            return lambda value: not isinstance(value, str) or len(value) >= expected
        return lambda value: not isinstance(value, str) or len(value) <= expected

    return compiler


def _count(low: bool) -> Callable[[Any, Any, Any, Any], _Check]:
    def compiler(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
        if low:
            return lambda value: not isinstance(value, list) or len(value) >= expected
        return lambda value: not isinstance(value, list) or len(value) <= expected

    return compiler


def _bound(low: bool) -> Callable[[Any, Any, Any, Any], _Check]:
    def compiler(expected: Any, schema: Any, root: Any, validator: Any) -> _Check:
        number = _TYPES["number"]
        if low:
            return lambda value: not number(value) or not value < expected
        return lambda value: not number(value) or not value > expected

    return compiler


_KEYWORDS: dict[str, Callable[[Any, Any, Any, Any], _Check]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "oneOf": _one_of,
    "if": _if,
    "not": _not,
    "then": _with_if,
    "else": _with_if,
    "$ref": _ref,
    "pattern": _pattern,
    "format": _format,
    "minLength": _length(True),
    "maxLength": _length(False),
    "minItems": _count(True),
    "maxItems": _count(False),
    "minimum": _bound(True),
    "maximum": _bound(False),
}


def _relevant(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """A date in the wrong form fails both `pattern` and `format`: keep the one with the hint."""
    errors = list(errors)
    bad_form = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    return [
        e for e in errors if not (e.validator == "format" and tuple(e.absolute_path) in bad_form)
    ]


def describe_path(path: DataPath) -> str:
    """`ipAllowlists[0].addresses[2]`, or `the document` for the root."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the document"


def _translate(error: ValidationError, doc: SourceDocument) -> list[Problem]:
    path: DataPath = tuple(error.absolute_path)
    kind = error.validator
    expected: Any = error.validator_value  # jsonschema types these as possibly Unset
    subschema: Any = error.schema
    instance: Any = error.instance
    where = describe_path(path)

    def at(
        message: str, hint: str | None = None, *, node: DataPath = path, key: bool = False
    ) -> Problem:
        return Problem.at(doc.file, doc.mark(node, key=key), ERROR, f"schema.{kind}", message, hint)

    if kind in ("oneOf", "anyOf"):
        return _translate_choice(error, doc, where, at)
    if kind == "additionalProperties":
        allowed = sorted(subschema.get("properties", {}))
        extras = sorted(set(instance) - set(allowed))
        return [
            at(
                f"unknown key {key!r} in {where}",
                _did_you_mean(key, allowed, "allowed keys"),
                node=(*path, key),
                key=True,
            )
            for key in extras
        ]
    if kind == "required":
        missing = [k for k in expected if k not in instance]
        return [at(f"{where} is missing the required key {k!r}", key=bool(path)) for k in missing]
    if kind == "type":
        words = _type_words(expected)
        hint = None
        if expected == "boolean":
            hint = "write true or false, unquoted (YAML 1.2 reads yes, no, on and off as text)"
        if expected == "integer" and isinstance(instance, str):
            hint = "write the number without quotes"
        value = _value_words(instance)
        if not path and isinstance(instance, str):  # a whole file: maybe not a policy at all,
            value = "text"  # such as a symlink to a credentials file; never quote it
        return [at(f"{where} must be {words}, not {value}", hint)]
    if kind == "not":  # the schema forbids a key for one kind of document
        doc_kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if path == ("org",):
            hint = "a baseline is shared by many orgs: move org into each org file that extends it"
        else:
            hint = "only a kind: Baseline file may lock keys; move them into the baseline"
        return [at(f"{where} is not allowed in a file of kind {doc_kind}", hint, key=True)]
    if kind == "const":
        return [at(f"{where} must be {expected!r}, not {_value_words(instance)}")]
    if kind == "enum":
        options = [str(v) for v in expected]
        name = "app" if path and path[-2:-1] == ("apps",) else "value"
        return [
            at(
                f"unknown {name} {instance!r}",
                _did_you_mean(str(instance), options, "one of"),
            )
        ]
    if kind == "format":
        return [at(f"{instance!r} is not a real calendar date", "check the day and month")]
    if kind == "pattern":
        if expected.startswith("^[0-9]{4}"):
            return [
                at(
                    f"{instance!r} is not a date",
                    "write it as YYYY-MM-DD, such as 2027-03-31",
                )
            ]
        return [
            at(
                f"{instance!r} is not a valid value for {where}",
                "an organization id is letters, digits and dashes, as in your admin.atlassian.com URL",
            )
        ]
    if kind in ("minItems", "minLength"):
        return [at(f"{where} must not be empty")]
    if kind in ("maxLength", "maxItems"):
        return [at(f"{where} is too long (at most {expected})")]
    if kind in ("minimum", "maximum"):
        return [at(f"{where} must be {'at least' if kind == 'minimum' else 'at most'} {expected}")]
    return [at(f"{where}: {error.message}")]  # pragma: no cover - every keyword we use is above


def _translate_choice(
    error: ValidationError, doc: SourceDocument, where: str, at: Any
) -> list[Problem]:
    """A value that may be text or a mapping: report the errors of the branch its type chose."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    chosen = _keyed_branch(error)
    for _, errors in sorted(branches.items(), key=lambda item: item[0] != chosen):
        if not any(e.validator == "type" and not e.relative_path for e in errors):
            out: list[Problem] = []
            for sub in _relevant(errors):
                out.extend(_translate(sub, doc))
            return out
    field = "'pattern'" if ".domains" in where else "'address' or 'tool'"
    return [
        at(f"{where} must be text or a mapping with {field}, not {_value_words(error.instance)}")
    ]


def _keyed_branch(error: ValidationError) -> int | None:
    """The branch of a choice between mappings that the instance's own keys pick: the one
    whose required key it has (`address:` or `tool:`), so its errors are the ones shown."""
    instance: Any = error.instance
    options: Any = error.validator_value
    if not isinstance(instance, dict) or not isinstance(options, list):
        return None
    root: Any = _validator().schema
    defs = root["$defs"]
    for index, option in enumerate(options):
        ref = option.get("$ref", "") if isinstance(option, dict) else ""
        branch = defs.get(ref.removeprefix("#/$defs/"), {})
        if any(key in instance for key in branch.get("required", ())):
            return index
    return None


def _did_you_mean(word: str, options: list[str], label: str) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{label}: {', '.join(options)}"


def _type_words(expected: Any) -> str:
    names = {
        "boolean": "true or false",
        "string": "text",
        "integer": "a whole number",
        "array": "a list",
        "object": "a mapping",
        "number": "a number",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(e, str(e)) for e in expected)
    return names.get(expected, str(expected))


def _value_words(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
