"""`address_span` (the integer fast path the rules use) against the exact `address_network`."""

from __future__ import annotations

import ipaddress

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import (
    _NON_PUBLIC_BOUNDS,
    address_network,
    address_span,
    non_public_range,
    non_public_span,
)

_octet = st.one_of(
    st.integers(0, 255).map(str),
    st.sampled_from(["0", "00", "01", "007", "255", "256", "999", "", "-1", "1e1", " 1"]),
)
_prefix = st.one_of(
    st.just(""),
    st.integers(0, 40).map(lambda n: f"/{n}"),
    st.sampled_from(["/", "/08", "/00", "/255.255.255.0", "/x", "/32 ", "/-1", "/ 8", "/1.5"]),
)
_texts = st.one_of(
    st.tuples(_octet, _octet, _octet, _octet, _prefix).map(lambda p: ".".join(p[:4]) + p[4]),
    st.text(alphabet="0123456789./: \n\tx", max_size=20),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)


def _exact(text: object) -> tuple[int, int, str] | tuple[str, str, str | None]:
    try:
        net = address_network(text)
    except NormalizeError as e:
        return (e.code, e.message, e.hint)
    return (int(net.network_address), int(net.broadcast_address), str(net))


def _fast(text: object) -> tuple[int, int, str] | tuple[str, str, str | None]:
    try:
        return address_span(text)
    except NormalizeError as e:
        return (e.code, e.message, e.hint)


@settings(max_examples=1500, deadline=None)
@given(_texts)
@example("1.2.3.4")
@example("1.2.3.4/32")
@example("10.0.0.0/8")
@example("10.0.0.1/8")
@example("0.0.0.0/0")
@example("1.2.3.4\n")
@example("255.255.255.255/1")
@example("٣.2.3.4")
def test_address_span_is_address_network(text: object) -> None:
    assert _fast(text) == _exact(text)
    assert _fast(text) == _exact(text)  # and again, from the cache


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 32))
def test_address_span_on_every_block(value: int, prefix: int) -> None:
    net = ipaddress.IPv4Network((value, prefix), strict=False)
    for text in (str(net), str(net.network_address) if prefix == 32 else str(net)):
        assert _fast(text) == _exact(text)
        first, last, _ = address_span(text)
        assert non_public_span(first, last) == non_public_range(net)


def test_non_public_span_at_every_edge() -> None:
    for first, last, _ in _NON_PUBLIC_BOUNDS:
        for low in (first - 1, first, last, last + 1):
            if 0 <= low < 2**32:
                net = ipaddress.IPv4Network((low, 32))
                assert non_public_span(low, low) == non_public_range(net)
