"""Canonical domains and addresses: examples, then properties over arbitrary input."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import (
    canonical_addresses,
    canonical_domains,
    normalize_address,
    normalize_domain,
    parse_domain,
    pattern_covers,
)


@pytest.mark.parametrize(
    ("given_text", "canonical"),
    [
        ("https://App.Example-Corp.COM./**", "https://app.example-corp.com/**"),
        ("HTTPS://Bücher.example:443/x", "https://xn--bcher-kva.example/x"),
        ("http://127.0.0.1:*/**", "http://127.0.0.1:*/**"),
        ("http://LOCALHOST:03000/cb", "http://localhost:3000/cb"),
        ("https://{b,a,b}.example.com/{z,y}", "https://{a,b}.example.com/{y,z}"),
        ("https://*.Example.co.uk/**", "https://*.example.co.uk/**"),
        (
            "vscode://vscode.github-authentication/did-authenticate",
            "vscode://vscode.github-authentication/did-authenticate",
        ),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_domains_have_one_canonical_spelling(given_text: str, canonical: str) -> None:
    """Scheme and host lower-case, IDNA A-labels, default port and one trailing dot dropped."""
    assert normalize_domain(given_text) == canonical


@pytest.mark.parametrize(
    ("given_text", "code"),
    [
        ("app.example.com", "domain.no-protocol"),
        ("https://user:pw@example.com", "domain.userinfo"),
        ("https://example.com\\x", "domain.backslash"),
        ("https://exa mple.com", "domain.whitespace"),
        ("https://example.com/\x07", "domain.control-character"),
        ("https://example.com/?a=1", "domain.query"),
        ("https://example.com/#top", "domain.fragment"),
        ("https://foo_bar.example", "domain.idna"),
        ("https://a*.example.com", "domain.wildcard-label"),
        ("https://app.*.example.com", "domain.wildcard-label"),
        ("https://*.com/**", "domain.wildcard-public-suffix"),
        ("https://*.co.uk/**", "domain.wildcard-public-suffix"),
        ("https://*/**", "domain.wildcard-public-suffix"),
        ("https://example.com:99999/", "domain.bad-port"),
        ("https://", "domain.no-host"),
    ],
)
def test_bad_domains_raise_a_coded_error(given_text: str, code: str) -> None:
    """Each refused pattern names its reason with a stable code."""
    with pytest.raises(NormalizeError) as info:
        normalize_domain(given_text)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("given_text", "canonical"),
    [
        ("198.51.100.7", "198.51.100.7/32"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("1.2.3.4/32", "1.2.3.4/32"),
    ],
)
def test_addresses_are_canonical_cidr(given_text: str, canonical: str) -> None:
    """A bare address is its /32; CIDR blocks keep their prefix."""
    assert normalize_address(given_text) == canonical


@pytest.mark.parametrize(
    ("given_text", "code", "hint"),
    [
        ("10.0.0.1/8", "address.host-bits", "did you mean 10.0.0.0/8?"),
        ("10.0.0.0/255.0.0.0", "address.netmask", "did you mean 10.0.0.0/8?"),
        ("010.0.0.1", "address.leading-zeros", "did you mean 10.0.0.1?"),
        ("0.0.0.0/0", "address.any", None),
        ("2001:db8::/32", "address.ipv6", None),
        ("1.2.3.4/33", "address.prefix", None),
        ("256.1.1.1", "address.syntax", None),
    ],
)
def test_bad_addresses_raise_a_coded_error_with_hint(
    given_text: str, code: str, hint: str | None
) -> None:
    """Refused addresses carry a code and, where one exists, the corrected form."""
    with pytest.raises(NormalizeError) as info:
        normalize_address(given_text)
    assert info.value.code == code
    if hint is not None:
        assert info.value.hint == hint


def test_pattern_covers_knows_wildcards_ports_and_paths() -> None:
    """A broader pattern covers subdomains, any port and sub-paths; nothing covers itself."""
    broad = parse_domain("https://*.example.com:*/**")
    assert pattern_covers(broad, parse_domain("https://app.example.com/x/y"))
    assert pattern_covers(broad, parse_domain("https://a.b.example.com:8443/"))
    assert not pattern_covers(broad, parse_domain("https://example.com/x"))
    assert not pattern_covers(broad, broad)
    assert not pattern_covers(
        parse_domain("https://x.example.com/*"), parse_domain("https://x.example.com/a/b")
    )


# ----------------------------------------------------------------------------- properties

_domainish = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["https", "HTTP", "http", "vscode", "h"]),
        st.one_of(
            st.from_regex(
                r"(\*\.)?[a-zA-Z0-9-]{1,10}(\.[a-zA-Z0-9-]{1,10}){0,3}\.?", fullmatch=True
            ),
            st.sampled_from(
                ["127.0.0.1", "localhost", "[::1]", "bücher.example", "{a,b}.example.org"]
            ),
            st.text(max_size=20),
        ),
        st.sampled_from(["", ":*", ":443", ":80", ":8080", ":0", ":x"]),
        st.one_of(st.sampled_from(["", "/", "/**", "/a/*", "/{x,y}/cb"]), st.text(max_size=15)),
    ),
)
_addressish = st.one_of(
    st.text(max_size=25),
    st.builds(
        lambda net: str(net),
        st.builds(
            lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
            st.integers(0, 2**32 - 1),
            st.integers(1, 32),
        ),
    ),
    st.builds(lambda a: str(ipaddress.IPv4Address(a)), st.integers(0, 2**32 - 1)),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){3}(/[0-9.]{1,16})?", fullmatch=True),
)


@settings(max_examples=400)
@given(_domainish)
def test_domain_normalisation_is_idempotent_and_raises_only_our_error(text: str) -> None:
    """Any string: either NormalizeError, or a canonical form that is its own canonical form."""
    try:
        canonical = normalize_domain(text)
    except NormalizeError:
        return
    assert normalize_domain(canonical) == canonical


@settings(max_examples=400)
@given(_addressish)
def test_address_normalisation_is_idempotent_and_raises_only_our_error(text: str) -> None:
    """Any string: either NormalizeError, or a canonical a.b.c.d/n that maps to itself."""
    try:
        canonical = normalize_address(text)
    except NormalizeError:
        return
    assert normalize_address(canonical) == canonical
    assert ipaddress.IPv4Network(canonical).with_prefixlen == canonical


def _valid(values: list[str], fn: object) -> list[str]:
    out = []
    for value in values:
        try:
            fn(value)  # type: ignore[operator]
        except NormalizeError:
            continue
        out.append(value)
    return out


@given(st.lists(_domainish, max_size=8), st.randoms())
def test_canonical_domain_sets_do_not_depend_on_order(values: list[str], rnd: object) -> None:
    """Shuffling a list of patterns never changes its canonical set."""
    valid = _valid(values, normalize_domain)
    shuffled = list(valid)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert canonical_domains(valid) == canonical_domains(shuffled)


@given(st.lists(_addressish, max_size=8), st.randoms())
def test_canonical_address_sets_do_not_depend_on_order(values: list[str], rnd: object) -> None:
    """Shuffling a list of addresses never changes its canonical set."""
    valid = _valid(values, normalize_address)
    shuffled = list(valid)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert canonical_addresses(valid) == canonical_addresses(shuffled)


def test_pattern_covers_expands_brace_alternatives_in_hosts() -> None:
    """{a,b}.example.com covers a.example.com; *.example.com covers {a,b}.example.com."""
    braces = parse_domain("https://{a,b}.example.com/**")
    assert pattern_covers(braces, parse_domain("https://a.example.com/**"))
    assert not pattern_covers(braces, parse_domain("https://c.example.com/**"))
    assert pattern_covers(parse_domain("https://*.example.com/**"), braces)
    assert not pattern_covers(parse_domain("https://a.example.com/**"), braces)


def test_the_public_suffix_list_has_the_rules_the_library_builds() -> None:
    """`_public_suffixes` makes the punycode twins only of non-ASCII rules: the same rules
    (and an IDN suffix is still public, written either way)."""
    from publicsuffixlist import PublicSuffixList

    from rovo_reconcile.policy.normalize import _public_suffixes

    ours: Any = _public_suffixes()
    theirs = PublicSuffixList()
    assert ours._publicsuffix == theirs._publicsuffix
    assert ours._maxlabel == theirs._maxlabel
    assert ours.is_public("xn--55qx5d.cn")
    assert ours.is_public("公司.cn")
    assert not ours.is_public("example.xn--55qx5d.cn")
