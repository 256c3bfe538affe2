"""`parse_domain`'s direct path for plain `https://` patterns against `_parse_domain_exact`."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import DomainPattern, _parse_domain_exact, parse_domain

_label = st.one_of(
    # [a-z0-9-]{1,8}, drawn as text: from_regex took a third of this test's time
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8),
    st.sampled_from(["xn--bcher-kva", "ab--cd", "A", "*", "{app,api}", "", "a" * 64, "1", "255"]),
)
_host = st.lists(_label, min_size=1, max_size=5).map(".".join)
_port = st.one_of(
    st.just(""),
    st.integers(0, 70000).map(lambda n: f":{n}"),
    st.sampled_from([":443", ":0443", ":*", ":", ":80", ":65535", ":65536", ":08"]),
)
_path = st.one_of(
    st.just(""),
    st.text(alphabet="/abc*.-{},?#\\@% :", max_size=12).map(lambda p: "/" + p),
)
_scheme = st.sampled_from(["https", "HTTPS", "http", "wss", "ws", "file", "javascript", "h"])
_texts = st.one_of(
    st.tuples(_scheme, _host, _port, _path).map(lambda p: f"{p[0]}://{p[1]}{p[2]}{p[3]}"),
    st.text(max_size=30).map(lambda t: "https://" + t),
    st.text(max_size=20),
    st.integers(),
    st.none(),
)


def _outcome(parse: object, text: object) -> DomainPattern | tuple[str, str, str | None]:
    try:
        return parse(text)  # type: ignore[operator, no-any-return]
    except NormalizeError as e:
        return (e.code, e.message, e.hint)


@settings(max_examples=3000, deadline=None)
@given(_texts)
@example("https://example.com")
@example("https://example.com:443/x")
@example("https://example.com:8443/mcp/v2/**")
@example("https://1.2.3.4/")
@example("https://01.2.3.4/")
@example("https://" + "a" * 64 + ".com")
@example("https://" + ".".join(["a" * 60] * 5))
@example("https://a.com/x{y,z}")
@example("https://a.com/x\\y")
@example("https://a.com.")
def test_parse_domain_is_the_exact_parse(text: object) -> None:
    assert _outcome(parse_domain, text) == _outcome(_parse_domain_exact, text)
