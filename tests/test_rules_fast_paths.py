"""The rules build already-checked entries directly: the same objects as `model_construct`."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from rovo_reconcile.policy.model import AddressEntry, DomainEntry
from rovo_reconcile.policy.rules import _built


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (
            DomainEntry,
            {"pattern": "https://a.example.com", "note": None, "expires": None, "written": None},
        ),
        (
            DomainEntry,
            {
                "pattern": "https://*.example.com",
                "note": "n",
                "expires": date(2030, 1, 2),
                "written": "HTTPS://*.Example.com/",
            },
        ),
        (AddressEntry, {"address": "203.0.113.0/24", "note": None, "expires": None, "tool": None}),
        (
            AddressEntry,
            {"address": "1.2.3.4/32", "note": "office", "expires": date(2027, 5, 6), "tool": None},
        ),
        (
            AddressEntry,
            {"address": "160.79.104.0/21", "note": None, "expires": None, "tool": "anthropic"},
        ),
    ],
)
def test_built_is_model_construct(cls: type[DomainEntry | AddressEntry], values: dict) -> None:  # type: ignore[type-arg]
    assert list(values) == list(cls.model_fields)  # every field, in declaration order
    assert not cls.__private_attributes__
    assert not cls.__pydantic_post_init__
    fast = _built(cls, dict(values))  # type: ignore[type-var]
    exact = cls.model_construct(**values)
    assert type(fast) is type(exact)
    assert fast == exact
    assert hash(fast) == hash(exact)
    for name in (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    ):
        assert getattr(fast, name) == getattr(exact, name)
    assert list(fast.__dict__) == list(exact.__dict__)
    assert fast.model_dump() == exact.model_dump()
    assert fast.model_dump_json(by_alias=True) == exact.model_dump_json(by_alias=True)
    assert repr(fast) == repr(exact)
    assert pickle.loads(pickle.dumps(fast)) == exact
    with pytest.raises(Exception, match="frozen"):
        fast.note = "x"  # type: ignore[misc]
