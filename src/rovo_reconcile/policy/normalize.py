"""Canonical forms of MCP domain patterns and IPv4 allowlist addresses.

Both the desired side (policy files) and the live side (the Admin API) go
through these functions, so that equal settings compare equal and a plan never
shows a perpetual diff caused by spelling.

Every function here either returns a canonical string or raises
`NormalizeError`; nothing else escapes, whatever the input.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rovo_reconcile.errors import NormalizeError

__all__ = [
    "MAX_ALTERNATIVES",
    "SHADOWING_WORK_CAP",
    "DomainPattern",
    "Shadowing",
    "address_network",
    "address_span",
    "canonical_addresses",
    "canonical_domains",
    "domain_warnings",
    "find_shadowing",
    "non_public_range",
    "non_public_span",
    "normalize_address",
    "normalize_domain",
    "parse_domain",
    "pattern_covers",
]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}|\*", re.ASCII)
_DOTTED_QUAD = re.compile(r"[0-9]+(?:\.[0-9]+){3}", re.ASCII)
_PREFIX = re.compile(r"[0-9]{1,2}", re.ASCII)
_DEFAULT_PORTS = {"https": "443", "http": "80", "wss": "443", "ws": "80"}
_WEB_SCHEMES = frozenset({"https", "http", "wss", "ws"})
"""Schemes whose URLs always name a host, and where an empty path is the same URL as `/`."""
_LOOPBACK_HOSTS = {"localhost", "[::1]"}
_BRACE_GROUP = re.compile(r"\{([^{}]*)\}")
_HOST_AND_PORT = re.compile(r"(?:[0-9]+|\*|\{[^/]*\})(?:/.*)?", re.ASCII | re.DOTALL)
"""What follows the colon of `host:port/path` written without a protocol."""


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True, order=True)
class DomainPattern:
    """A parsed, canonical domain pattern: `scheme://host[:port]path`, or `scheme:/path` for an
    app's private-use scheme (RFC 8252 section 7.1), which has no host (`host` is empty).

    `host` and `port` may hold one brace group (`{a,b}.example.com`, `{8080,8443}`) in
    canonical form; `_expand_host` and `_expand_port` spell out what they stand for.
    """

    scheme: str
    host: str
    port: str | None
    path: str

    def __str__(self) -> str:
        if not self.host:
            return f"{self.scheme}:{self.path}"
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"


def normalize_domain(text: object) -> str:
    """Return the canonical spelling of a domain pattern, or raise NormalizeError."""
    return str(parse_domain(text))


def canonical_domains(patterns: Iterable[object]) -> tuple[str, ...]:
    """Canonical, de-duplicated and sorted: the same set in any order gives the same tuple."""
    return tuple(sorted({normalize_domain(p) for p in patterns}))


_PLAIN_HTTPS = re.compile(r"https://([a-z0-9.-]+)(?::([1-9][0-9]{0,4}))?(/[!-~]*)?", re.ASCII)
"""`https://host[:port][/path]` as `parse_domain` keeps it: a lower-case host of letters,
digits, dots and hyphens, a port with no leading zero; the path is checked apart."""
_PATH_SPECIAL = re.compile(r"[?#{}\\]")


def parse_domain(text: object) -> DomainPattern:
    """Parse and canonicalise a domain pattern, or raise NormalizeError.

    The commonest spelling (`https://` with a plain lower-case host name, an optional port
    and a path without braces) is built directly; it is the value `_parse_domain_exact`
    gives, which handles everything else (property-tested against it).
    """
    if isinstance(text, str):
        match = _PLAIN_HTTPS.fullmatch(text)
        if (
            match is not None
            and _LDH_HOST.fullmatch(host := match.group(1))
            and not _DOTTED_QUAD.fullmatch(host)
            and not _PATH_SPECIAL.search(path := match.group(3) or "")
        ):
            port = match.group(2)
            if path == "/":
                path = ""  # `https://host/` is `https://host`
            if port is None or port == "443":
                return DomainPattern("https", host, None, path)
            if int(port) <= 65535:
                return DomainPattern("https", host, port, path)
    return _parse_domain_exact(text)


def _parse_domain_exact(text: object) -> DomainPattern:
    if not isinstance(text, str) or not text:
        raise NormalizeError("domain.empty", "a domain pattern must be a non-empty string")
    _reject_bad_characters(text)
    written, colon, rest = text.partition(":")
    if (
        not colon
        or "/" in written
        or (not rest.startswith("//") and _HOST_AND_PORT.fullmatch(rest))
    ):
        raise NormalizeError(
            "domain.no-protocol",
            f"domain pattern {text!r} has no protocol",
            f"write it with its protocol, such as https://{text}",
        )
    if not _SCHEME.fullmatch(written):
        if rest.startswith("//"):
            raise NormalizeError("domain.bad-protocol", f"{written!r} is not a valid protocol name")
        raise NormalizeError(
            "domain.no-protocol",
            f"domain pattern {text!r} has no protocol",
            f"write it with its protocol, such as https://{text}",
        )
    scheme = written.lower()
    _refuse_scheme(scheme)
    if "?" in rest:
        raise NormalizeError(
            "domain.query", "a domain pattern cannot carry a query (?...)", "remove the ?... part"
        )
    if "#" in rest:
        raise NormalizeError(
            "domain.fragment",
            "a domain pattern cannot carry a fragment (#...)",
            "remove the #... part",
        )
    if not rest.startswith("//"):
        return _private_use_pattern(text, scheme, rest)
    rest = rest[2:]
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in authority:
        raise NormalizeError(
            "domain.userinfo",
            "a domain pattern cannot carry a user name or password (user@host)",
            "remove everything up to and including the @",
        )
    host, port = _split_port(authority)
    host = _canonical_host(host)
    port = _canonical_port(scheme, port)
    if _expansion_size(host, port) > MAX_ALTERNATIVES:
        raise NormalizeError(
            "domain.braces-too-many",
            f"the braces in {authority!r} stand for more than {MAX_ALTERNATIVES} host and port "
            "combinations, too many to check",
            "split the pattern into several, or use a wildcard such as *.example.com",
        )
    if scheme == "ws":
        for one in _expand_host(host):
            if not _is_loopback_host(one):
                raise NormalizeError(
                    "domain.ws-not-loopback",
                    "plain ws (unencrypted WebSocket) is allowed only for loopback hosts, "
                    f"not {one!r}",
                    f"use wss://{host}{path}" if "*" not in host else "use wss://",
                )
    if scheme in _WEB_SCHEMES and path == "/":
        path = ""  # the same URL (RFC 3986 section 6.2.3): one pattern, the origin's spelling
    return DomainPattern(scheme, host, port, _canonical_path(path))


def _refuse_scheme(scheme: str) -> None:
    """Refuse a scheme no allowed MCP domain may have, whatever follows it."""
    if scheme in _SCRIPT_SCHEMES:
        raise NormalizeError(
            "domain.script-scheme",
            f"{scheme}: URLs run code or carry content inline; an allowed MCP domain with this "
            "scheme would let a sign-in redirect execute script",
            "list the https:// address of the client instead",
        )


def _private_use_pattern(text: str, scheme: str, rest: str) -> DomainPattern:
    """`scheme:/path`, the redirect URI of an app's private-use scheme (RFC 8252 section 7.1,
    `com.example.app:/oauth2redirect`); every other reading of `scheme:rest` is refused."""
    if scheme in _WEB_SCHEMES:
        fixed = f"{scheme}://{rest.lstrip('/')}"
        raise NormalizeError(
            "domain.no-host",
            f"{text!r} has no host: a {scheme} pattern is {scheme}://host/path",
            f"did you mean {fixed}?",
        )
    if len(scheme) == 1:
        raise NormalizeError(
            "domain.file-path",
            f"{text!r} is a Windows file path ({scheme.upper()}:), not a sign-in redirect",
            "list the https:// address of the client, or the private-use scheme of a desktop "
            "app (com.example.app:/callback)",
        )
    if not rest.startswith("/"):
        raise NormalizeError(
            "domain.opaque",
            f"{text!r} names neither a host ({scheme}://host/...) nor a path ({scheme}:/...), "
            "so no sign-in redirect can match it",
            f"an app's private-use scheme is written {scheme}:/path (RFC 8252)"
            if scheme not in _NON_WEB_SCHEMES and scheme != "urn"
            else "list the https:// address of the client, or the private-use scheme of a "
            "desktop app (com.example.app:/callback)",
        )
    return DomainPattern(scheme, "", None, _canonical_path(rest))


def domain_warnings(pattern: DomainPattern) -> list[NormalizeError]:
    """What is suspicious but not wrong in a valid pattern: plain http to a host that is not
    this machine, a non-web scheme, a host label that mixes scripts or is spelled in letters
    that look Latin (an IDN homograph).

    Each comes back as a NormalizeError for its code, message and hint; none is raised.
    """
    found: list[NormalizeError] = []
    hosts = _expand_host(pattern.host)
    if pattern.scheme == "http":
        remote = [host for host in hosts if not _is_loopback_host(host)]
        if remote:
            found.append(
                NormalizeError(
                    "domain.http-not-loopback",
                    f"plain http to {', '.join(map(repr, remote))} is not encrypted: sign-in "
                    "codes and tokens would cross the network readable by anyone on the way",
                    f"use https://{pattern.host}{pattern.path}"
                    if "*" not in pattern.host
                    else "use https://",
                )
            )
    if pattern.scheme in _NON_WEB_SCHEMES:
        found.append(
            NormalizeError(
                "domain.non-web-scheme",
                f"{pattern.scheme}: is not a scheme an MCP client signs in from "
                "(web origins are https, desktop apps use their own private-use scheme)",
                "check that this is the pattern you meant, such as https://",
            )
        )
    for host in hosts:
        for label in host.split("."):
            if (problem := _homograph(label)) is not None:
                found.append(problem)
    return found


_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "data"})
"""Schemes whose URL is code or inline content: refused (an OAuth redirect to one runs script)."""
_NON_WEB_SCHEMES = frozenset({"file", "ftp", "mailto", "tel", "sms", "about", "blob"})
"""Registered schemes no MCP client signs in from: allowed, with a warning (a redirect to one
is useless, not dangerous). Any other scheme is an app's private-use scheme (`vscode://`,
`com.example.app:/`), accepted as it is."""

# Unicode Technical Standard 39 ("highly restrictive"): these scripts may share a label.
_SCRIPT_SETS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
# Cyrillic and Greek letters that look like a Latin one (from Unicode's confusables list).
_LATIN_LOOKALIKES = dict(
    zip(
        "\u0430\u0441\u0501\u0435\u04bb\u0456\u0458\u043a\u04cf\u043e"
        "\u0440\u051b\u0455\u0443\u051d\u0445\u04af\u03bd\u03bf\u03c1"
        "\u03b9\u03ba\u03c5\u03c7",
        "acdehijklopqsywxyvopikux",
        strict=True,
    )
)


def _script(ch: str) -> str | None:
    """The script of a letter, from the first word of its Unicode name; None for the rest."""
    if unicodedata.category(ch) not in ("Ll", "Lu", "Lt", "Lo"):
        return None  # digits, hyphens, marks and modifier letters go with any script
    return unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]


def _homograph(label: str) -> NormalizeError | None:
    """A warning for an IDN label that mixes scripts or passes for a Latin word."""
    if not label.startswith("xn--"):
        return None
    import idna

    try:
        unicode_label = str(idna.decode(label))
    except (idna.IDNAError, UnicodeError, ValueError):
        return None  # canonical labels decode; anything else is not ours to judge
    scripts = {s for s in map(_script, unicode_label) if s is not None}
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
        names = " and ".join(sorted(s.title() for s in scripts))
        return NormalizeError(
            "domain.homograph",
            f"host label {unicode_label!r} ({label}) mixes {names} letters, a common way to "
            "imitate another name",
            "retype the host in one script; if it is right, keep it and note why",
        )
    letters = [ch for ch in unicode_label if _script(ch) is not None]
    if letters and all(ch in _LATIN_LOOKALIKES for ch in letters):
        lookalike = "".join(_LATIN_LOOKALIKES.get(ch, ch) for ch in unicode_label)
        return NormalizeError(
            "domain.homograph",
            f"host label {unicode_label!r} ({label}) is spelled in {' and '.join(sorted(s.title() for s in scripts))} "
            f"letters that look like the Latin {lookalike!r}",
            f"if you meant {lookalike!r}, retype it in Latin letters",
        )
    return None


_PLAIN_ASCII = re.compile(r"[!-\[\]-~]*", re.ASCII)
"""Printable ASCII but space and backslash: nothing for `_reject_bad_characters` to find."""


def _reject_bad_characters(text: str) -> None:
    if _PLAIN_ASCII.fullmatch(text):
        return
    for ch in text:
        if ch.isspace():
            raise NormalizeError("domain.whitespace", "a domain pattern cannot contain whitespace")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise NormalizeError(
                "domain.control-character",
                f"a domain pattern cannot contain the invisible or control character U+{ord(ch):04X}",
            )
        if ch == "\\":
            raise NormalizeError(
                "domain.backslash",
                "a domain pattern cannot contain a backslash",
                "use forward slashes (/) in the path",
            )


def _split_port(authority: str) -> tuple[str, str | None]:
    """`host[:port]` as the host and the port's text (None when there is no port)."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise NormalizeError("domain.bad-host", "unclosed [ in the host")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if not tail:
            return host, None
        if not tail.startswith(":"):
            raise NormalizeError("domain.bad-host", f"unexpected {tail!r} after the host")
        return host, tail[1:]
    host, colon, port = authority.rpartition(":")
    if not colon:
        return authority, None
    if (
        "{" in host
        and host.count("{") != host.count("}")
        and authority.count("{") == authority.count("}")
    ):
        raise NormalizeError(
            "domain.braces",
            f"{authority!r}: a brace group stands for hosts or for ports, not both",
            "give the host and the port braces of their own, as {app,api}.example.com:{8080,8443}",
        )
    return host, port


def _canonical_port(scheme: str, port: str | None) -> str | None:
    """The port as canonical text: no leading zeros, none for the scheme's default port, and
    a brace group (`{8080,8443}`) sorted by number, without repeats."""
    if port is None:
        return None
    inner = port[1:-1]
    if port.startswith("{") and port.endswith("}") and "{" not in inner and "}" not in inner:
        ports = {_one_port(p) for p in inner.split(",")}
        if "*" in ports:
            raise NormalizeError(
                "domain.bad-port",
                f"{port!r}: a port group lists port numbers; :* alone stands for any port",
                "use :* for any port, or list the ports, as :{8080,8443}",
            )
    else:
        ports = {_one_port(port)}
    if len(ports) == 1:
        (only,) = ports
        return None if only == _DEFAULT_PORTS.get(scheme) else only
    return "{" + ",".join(sorted(ports, key=int)) + "}"


def _one_port(port: str) -> str:
    if not _PORT.fullmatch(port) or (port != "*" and not 0 < int(port) <= 65535):
        raise NormalizeError(
            "domain.bad-port",
            f"{port!r} is not a port",
            "use a number from 1 to 65535, * for any, or {8080,8443} for several",
        )
    return port if port == "*" else str(int(port))


def _canonical_host(host: str) -> str:
    """The host in lower-case A-labels; braces, which may stand for several labels, whole
    hosts or parts of labels, are spelt out (at most MAX_ALTERNATIVES hosts), each host is
    checked on its own, and the set is written back as one canonical brace group."""
    if host.startswith("[") or ("{" not in host and "}" not in host):
        return _one_host(host)
    match = _LABELS_IN_FRONT.fullmatch(host)
    if match is not None:  # `{app,api}.example.com`, the commonest braces, built directly
        labels, rest = set(match.group(1).split(",")), match.group(2)
        if len(labels) <= MAX_ALTERNATIVES and all(
            _LDH_HOST.fullmatch(one := f"{label}.{rest}") and not _DOTTED_QUAD.fullmatch(one)
            for label in labels
        ):
            return (
                _brace_group(labels) + "." + rest if len(labels) > 1 else f"{labels.pop()}.{rest}"
            )
    return _canonical_brace_host(host)


_LABELS_IN_FRONT = re.compile(r"\{([a-z0-9-]+(?:,[a-z0-9-]+)*)\}\.([a-z0-9.-]+)", re.ASCII)
"""A brace group of lower-case labels in front of a lower-case host name: `_canonical_host`
gives what `_canonical_brace_host` would (property-tested), without spelling hosts out."""


def _canonical_brace_host(host: str) -> str:
    hosts = _expand(host, MAX_ALTERNATIVES)
    if hosts is None:
        raise NormalizeError(
            "domain.braces-too-many",
            f"the braces in {host!r} stand for more than {MAX_ALTERNATIVES} hosts, too many "
            "to check",
            "split the pattern into several, or use a wildcard such as *.example.com",
        )
    canonical = set()
    for one in hosts:
        if "{" in one or "}" in one:  # what is left of braces that do not pair up
            raise NormalizeError("domain.braces", f"unbalanced braces in the host: {host!r}")
        if not one or one.startswith(".") or ".." in one:
            raise NormalizeError(
                "domain.braces",
                f"{host!r} stands for the host {one!r}, which has an empty label",
                "remove the empty alternative, or the dot beside the braces",
            )
        canonical.add(_one_host(one))
    return _brace_hosts(canonical)


def _brace_hosts(hosts: set[str]) -> str:
    """One spelling for a set of canonical hosts, whatever braces first stood for them: the
    host itself when there is one; else one brace group of the hosts, sorted, with the labels
    they all end in taken out (`{api,app}.example.com`) unless one is an IP address."""
    ordered = sorted(hosts)
    if len(ordered) == 1:
        return ordered[0]
    if any(h.startswith("[") or _DOTTED_QUAD.fullmatch(h) for h in ordered):
        return "{" + ",".join(ordered) + "}"
    split = [h.split(".") for h in ordered]
    shortest = min(len(labels) for labels in split)
    shared = 0  # every host keeps one label of its own at least
    while shared < shortest - 1 and len({labels[-1 - shared] for labels in split}) == 1:
        shared += 1
    if not shared:
        return "{" + ",".join(ordered) + "}"
    heads = sorted(".".join(labels[:-shared]) for labels in split)
    return "{" + ",".join(heads) + "}." + ".".join(split[0][-shared:])


def _one_host(host: str) -> str:
    """One host, without braces, in canonical form."""
    if host.startswith("["):
        if host.lower() == "[::1]":
            return "[::1]"
        raise NormalizeError(
            "domain.bad-host", "IPv6 hosts other than [::1] are not supported in domain patterns"
        )
    if host.endswith("."):
        host = host[:-1]
    if host.endswith("."):
        raise NormalizeError(
            "domain.idna", f"{host + '.'!r} is not a valid host name (it ends in two dots)"
        )
    if not host:
        raise NormalizeError("domain.no-host", "the domain pattern has no host")
    if _DOTTED_QUAD.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError as e:
            raise NormalizeError("domain.bad-host", f"{host!r} is not a valid IPv4 address") from e
    labels = host.split(".")
    first = labels[0]
    rest = ".".join(labels[1:])
    if any("*" in label for label in labels[1:]) or ("*" in first and first != "*"):
        raise NormalizeError(
            "domain.wildcard-label",
            f"in {host!r} a wildcard may only be the whole leftmost label",
            "write it as *.example.com",
        )
    if first == "*":
        if not rest:
            raise NormalizeError(
                "domain.wildcard-public-suffix", "a wildcard host must name a domain under it"
            )
        rest = _idna(rest)
        if _is_public_suffix(rest):
            raise NormalizeError(
                "domain.wildcard-public-suffix",
                f"*.{rest} would match every domain under the public suffix {rest!r}",
                f"name your own domain, such as *.example.{rest}",
            )
        return f"*.{rest}"
    return _idna(host)


def _expansion_size(host: str, port: str | None) -> int:
    """How many (host, port) pairs a canonical host and port stand for."""
    if not host.startswith("{") and (port is None or not port.startswith("{")):
        return 1
    ports = port[1:-1].count(",") + 1 if port is not None and port.startswith("{") else 1
    return len(_expand_host(host)) * ports


_LDH_HOST = re.compile(
    r"(?!.{254})(?:(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
    r"(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
    re.ASCII | re.IGNORECASE,
)
"""Host names of ASCII letters, digits and inner hyphens, no label longer than 63 nor with
`--` in its third and fourth place (punycode and reserved), at most 253 characters: IDNA
leaves them as they are but for lower case, so they skip the `idna` package."""


def _idna(host: str) -> str:
    """Host through IDNA 2008 with UTS 46 mapping, to lower-case A-labels."""
    if _LDH_HOST.fullmatch(host):
        return host.lower()
    return _idna_slow(host)


@functools.lru_cache(maxsize=4096)
def _idna_slow(host: str) -> str:
    import idna

    try:
        return str(idna.encode(host, uts46=True).decode("ascii")).lower()
    except (idna.IDNAError, UnicodeError, ValueError) as e:
        raise NormalizeError(
            "domain.idna", f"{host!r} is not a valid host name ({_idna_reason(e)})"
        ) from e


def _idna_reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text[:120]


@functools.cache
def _public_suffixes() -> object:
    """The bundled Public Suffix List, with a punycode twin of each non-ASCII rule.

    `PublicSuffixList()` makes those twins itself by passing every one of ~10,000 rules
    through Python's slow `idna` codec: ~40 ms of each command that reads a domain (issue 9).
    Only ~460 rules are not ASCII, and an ASCII rule is its own punycode; the list's rules
    are lower case and NFC already, so a non-ASCII label's twin is its bare punycode. The
    rules are the library's own set (tests/test_normalize.py).
    """
    from publicsuffixlist import PSLFILE, PublicSuffixList

    with open(PSLFILE, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    twins = []
    for line in lines:
        rule = line.lower().split(" ")[0].rstrip()
        if rule.isascii() or rule.startswith("//"):
            continue
        twin = ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in rule.lstrip("!").split(".")
        )
        twins.append("!" + twin if rule.startswith("!") else twin)
    return PublicSuffixList(lines + twins, accept_encoded_idn=False)


@functools.lru_cache(maxsize=4096)
def _is_public_suffix(host: str) -> bool:
    psl = _public_suffixes()
    return bool(psl.is_public(host))  # type: ignore[attr-defined]


def _is_loopback_host(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def _canonical_path(path: str) -> str:
    if path.count("{") != path.count("}"):
        raise NormalizeError("domain.braces", "unbalanced braces in the path")

    return _BRACE_GROUP.sub(lambda m: _brace_group(set(m.group(1).split(","))), path)


def _brace_group(alternatives: set[str]) -> str:
    """Sorted alternatives in braces; a single alternative needs no braces."""
    if len(alternatives) == 1:
        return next(iter(alternatives))
    return "{" + ",".join(sorted(alternatives)) + "}"


def pattern_covers(broad: DomainPattern, narrow: DomainPattern) -> bool:
    """True when every origin and path `narrow` admits is admitted by `broad` too.

    Conservative where it cannot be sure (it is used for a warning only), and never slow
    to decide: see `_glob_includes`.
    """
    if broad == narrow or broad.scheme != narrow.scheme:
        return False
    if broad.port != "*" and not set(_ports(narrow)) <= set(_ports(broad)):
        return False
    if not _host_covers(broad.host, narrow.host):
        return False
    return _path_covers(_path_of(broad), _path_of(narrow))


def _host_covers(broad: str, narrow: str) -> bool:
    """Every host `narrow` names (braces expanded) is named by `broad` too."""
    broad_hosts = _expand_host(broad)
    return all(
        any(b == n or (b.startswith("*.") and n.endswith(b[1:])) for b in broad_hosts)
        for n in _expand_host(narrow)
    )


def _expand_host(host: str) -> list[str]:
    """The hosts a canonical host stands for (it has one brace group at most, in front)."""
    match = _BRACE_GROUP.match(host)
    if match is None:
        return [host]
    rest = host[match.end() :]
    return [alt + rest for alt in match.group(1).split(",")]


def _ports(pattern: DomainPattern) -> tuple[str | None, ...]:
    """The ports a canonical pattern stands for; None for the scheme's default port."""
    port = pattern.port
    if port is None or not port.startswith("{"):
        return (port,)
    default = _DEFAULT_PORTS.get(pattern.scheme)
    return tuple(None if p == default else p for p in port[1:-1].split(","))


def _path_of(pattern: DomainPattern) -> str:
    """The path as a glob: a web URL's empty path is `/`."""
    if not pattern.path and pattern.scheme in _WEB_SCHEMES:
        return "/"
    return pattern.path


# Path globs: `**` matches anything, `*` anything within one path segment (no `/`), and
# `{a,b}` stands for its alternatives. Whether one glob covers another is a question of
# language inclusion, decided below without backtracking: braces are expanded (a bounded
# number of alternatives), then a bit-parallel automaton runs the broad glob over the
# narrow one read as text, its `*` and `**` as two symbols of their own. Cost:
# O(len(broad) * len(narrow) / 64) machine words per pair, whatever the patterns.

MAX_ALTERNATIVES = 64
"""Brace alternatives a path may expand to for the shadowing check (beyond, it is not checked),
and hosts times ports a pattern may stand for (beyond, it is refused)."""
_SEGMENT_STAR = "\x00"
"""A `*` of the narrow glob, as a symbol of its text."""
_ANY_STAR = "\x01"
"""A `**` of the narrow glob, as a symbol of its text (control characters never reach here)."""
_STAR, _ANY = -1, -2


def _path_covers(broad: str, narrow: str) -> bool:
    broad_globs = _expand_path(broad)
    narrow_globs = _expand_path(narrow)
    if broad_globs is None or narrow_globs is None:
        return False
    return all(any(_glob_includes(b, n) for b in broad_globs) for n in narrow_globs)


@functools.lru_cache(maxsize=4096)
def _expand_path(path: str) -> tuple[str, ...] | None:
    """Every brace alternative of `path` spelled out (nested groups too), or None past the cap."""
    return _expand(path, MAX_ALTERNATIVES)


def _expand(text: str, cap: int) -> tuple[str, ...] | None:
    """Every brace alternative of `text` spelled out (nested groups too), or None when there
    would be more than `cap` of them: the work stops as soon as the count passes the cap."""
    done: list[str] = []
    todo = [text]
    steps = 0
    while todo:
        steps += 1
        if steps > 4 * cap:
            return None
        current = todo.pop()
        match = _BRACE_GROUP.search(current)
        if match is None:
            done.append(current)
        else:
            head, tail = current[: match.start()], current[match.end() :]
            todo.extend(head + alt + tail for alt in reversed(match.group(1).split(",")))
        if len(done) + len(todo) > cap:
            return None
    return tuple(done)


@functools.lru_cache(maxsize=4096)
def _glob_tokens(glob: str) -> tuple[int | str, ...]:
    """A brace-free glob as tokens: _ANY for `**`, _STAR for `*`, else one character."""
    tokens: list[int | str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            token: int | str = _ANY
            i += 2
        elif glob[i] == "*":
            token = _STAR
            i += 1
        else:
            token = glob[i]
            i += 1
        if tokens and tokens[-1] == _ANY and token in (_ANY, _STAR):
            continue  # `**` then `*` is `**`
        tokens.append(token)
    return tuple(tokens)


class _Text:
    """A narrow glob read as text, with the bit masks the automaton needs (bit i: position i)."""

    def __init__(self, glob: str) -> None:
        text = "".join(
            _ANY_STAR if t == _ANY else _SEGMENT_STAR if t == _STAR else str(t)
            for t in _glob_tokens(glob)
        )
        self.length = len(text)
        self._reversed = text[::-1]
        self._masks: dict[str, int] = {}
        # What a `*` of the broad glob may consume: anything but `/` and a narrow `**`.
        self.segment = self._mask_of(f"[^/{_ANY_STAR}]")

    def _mask_of(self, char_class: str) -> int:
        if not self.length:
            return 0
        marked = re.sub(char_class, "\x02", self._reversed)
        return int(re.sub("[^\x02]", "0", marked).replace("\x02", "1"), 2)

    def mask(self, char: str) -> int:
        mask = self._masks.get(char)
        if mask is None:
            mask = self._masks[char] = self._mask_of(re.escape(char))
        return mask


@functools.lru_cache(maxsize=4096)
def _text(glob: str) -> _Text:
    return _Text(glob)


def _glob_includes(broad: str, narrow: str) -> bool:
    """Whether the brace-free glob `broad` matches everything the brace-free glob `narrow` does.

    The set of positions of the narrow text that a prefix of `broad` can reach is one integer;
    each broad token updates it with a few whole-integer operations. Sound (a True is always
    right); it answers False in the rare cases where only a split of a narrow `*` would show
    inclusion.
    """
    text = _text(narrow)
    reach = 1  # position 0
    for token in _glob_tokens(broad):
        if token == _ANY:
            low = reach & -reach  # every position from the first one reached on
            reach = ((1 << (text.length + 1)) - 1) & ~(low - 1)
        elif token == _STAR:
            # From each reached position, run on through the segment's consumable symbols:
            # adding the reached bits to the run carries through to the run's end.
            allowed = text.segment
            carried = allowed + (reach & allowed)
            reach |= (allowed & ~carried) | (carried & ~allowed)
        else:
            reach = (reach & text.mask(str(token))) << 1
        if not reach:
            return False
    return bool(reach >> text.length & 1)


@dataclass(frozen=True)
class Shadowing:
    covered_by: dict[int, int]
    """Index of each shadowed pattern -> index of the first broader pattern that covers it."""
    complete: bool
    """False when the work cap stopped the check before every pair was decided."""


SHADOWING_WORK_CAP = 3_000_000
"""Bound on the shadowing check of one list (about a few seconds at worst), in units of
`_pair_cost`; typical lists use a tiny fraction of it."""


def _pair_cost(broad: DomainPattern, narrow: DomainPattern) -> int:
    """About the time `pattern_covers` takes: a step per broad token, whose cost grows with
    the narrow path only past a few hundred characters (whole-integer operations)."""
    return len(broad.path) + 8 + (len(broad.path) + 1) * (len(narrow.path) // 512)


def find_shadowing(patterns: list[DomainPattern], work_cap: int | None = None) -> Shadowing:
    """For each pattern, the first other pattern (in list order) that covers it.

    Only plausible pairs are compared: patterns are indexed by scheme, host (each brace
    alternative, and `*.suffix` for each parent of a host), port, and the literal start of
    their path, which a covering pattern's path must be a prefix of.
    """
    index: dict[tuple[str, str, str | None], dict[str, list[int]]] = {}
    for i, pattern in enumerate(patterns):
        start = _literal_start(_path_of(pattern))
        for host in _expand_host(pattern.host):
            for port in _ports(pattern):
                index.setdefault((pattern.scheme, host, port), {}).setdefault(start, []).append(i)
    lengths = {key: sorted({len(s) for s in table}) for key, table in index.items()}
    cap = SHADOWING_WORK_CAP if work_cap is None else work_cap
    covered_by: dict[int, int] = {}
    work = 0
    for j, narrow in enumerate(patterns):
        globs = _expand_path(_path_of(narrow))
        if globs is None:
            continue
        starts = {_literal_start(g) for g in globs}
        candidates: set[int] = set()
        for key in _index_keys(narrow):
            table = index.get(key)
            if table is None:
                continue
            for start in starts:
                for size in lengths[key]:
                    if size > len(start):
                        break
                    candidates.update(table.get(start[:size], ()))
        candidates.discard(j)
        for i in sorted(candidates):
            work += _pair_cost(patterns[i], narrow)
            if work > cap:
                return Shadowing(covered_by, complete=False)
            if pattern_covers(patterns[i], narrow):
                covered_by[j] = i
                break
    return Shadowing(covered_by, complete=True)


def _literal_start(path: str) -> str:
    """The path up to its first wildcard or brace: what every string it admits begins with."""
    cut = len(path)
    for special in "*{":
        at = path.find(special)
        if 0 <= at < cut:
            cut = at
    return path[:cut]


def _index_keys(narrow: DomainPattern) -> set[tuple[str, str, str | None]]:
    """The (scheme, host, port) keys under which a pattern covering `narrow` is indexed."""
    keys: set[tuple[str, str, str | None]] = set()
    ports = {*_ports(narrow), "*"}
    for host in _expand_host(narrow.host):
        labels = host.split(".")
        hosts = {host} | {"*." + ".".join(labels[k:]) for k in range(1, len(labels))}
        keys.update((narrow.scheme, h, port) for h in hosts for port in ports)
    return keys


# --------------------------------------------------------------------------- addresses


def normalize_address(text: object) -> str:
    """Return `a.b.c.d/n` for an IPv4 address or CIDR block, or raise NormalizeError."""
    return _format_network(address_network(text))


def canonical_addresses(addresses: Iterable[object]) -> tuple[str, ...]:
    """Canonical, de-duplicated, sorted by numeric order."""
    networks = {address_network(a) for a in addresses}
    return tuple(_format_network(n) for n in sorted(networks))


def _format_network(net: ipaddress.IPv4Network) -> str:
    return f"{net.network_address}/{net.prefixlen}"


def address_network(text: object) -> ipaddress.IPv4Network:
    if not isinstance(text, str) or not text:
        raise NormalizeError("address.empty", "an address must be a non-empty string")
    if not _PLAIN_ASCII.fullmatch(text) and any(
        ch.isspace() or not ch.isprintable() for ch in text
    ):
        raise NormalizeError(
            "address.syntax", "an address cannot contain spaces or control characters"
        )
    if ":" in text:
        raise NormalizeError(
            "address.ipv6",
            f"{text!r} is IPv6; Atlassian IP allowlists take IPv4 addresses only",
        )
    addr, slash, prefix = text.partition("/")
    if not _DOTTED_QUAD.fullmatch(addr):
        raise NormalizeError(
            "address.syntax",
            f"{text!r} is not an IPv4 address or CIDR block",
            "write it as 203.0.113.7 or 203.0.113.0/24",
        )
    octets = addr.split(".")
    if any(int(o) > 255 for o in octets):
        raise NormalizeError("address.syntax", f"{addr!r} has an octet above 255")
    if any(len(o) > 1 and o.startswith("0") for o in octets):
        fixed = ".".join(str(int(o)) for o in octets) + (f"/{prefix}" if slash else "")
        raise NormalizeError(
            "address.leading-zeros",
            f"{text!r} has leading zeros, which some systems read as octal",
            f"did you mean {fixed}?",
        )
    if not slash:
        prefix_len = 32
    elif "." in prefix:
        raise NormalizeError(
            "address.netmask",
            f"{text!r} uses netmask notation; write the prefix length instead",
            _netmask_hint(addr, prefix),
        )
    elif (
        _PREFIX.fullmatch(prefix)
        and int(prefix) <= 32
        and not (len(prefix) > 1 and prefix[0] == "0")
    ):
        prefix_len = int(prefix)
    else:
        raise NormalizeError(
            "address.prefix", f"{prefix!r} is not a prefix length", "use a number from 1 to 32"
        )
    if prefix_len == 0:
        raise NormalizeError(
            "address.any",
            f"{text!r} admits every address on the internet",
            "list your own egress addresses instead",
        )
    value = int.from_bytes(bytes(map(int, octets)), "big")
    if value & ((1 << (32 - prefix_len)) - 1):
        net = ipaddress.IPv4Network((value, prefix_len), strict=False)
        raise NormalizeError(
            "address.host-bits",
            f"{text!r} has host bits set",
            f"did you mean {_format_network(net)}?",
        )
    return _network(value, prefix_len)


@functools.lru_cache(maxsize=1 << 13)
def _network(value: int, prefix_len: int) -> ipaddress.IPv4Network:
    """Networks are immutable: the same block, spelt alike on both sides, is built once."""
    return ipaddress.IPv4Network((value, prefix_len))


def _netmask_hint(addr: str, mask: str) -> str | None:
    try:
        net = ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
    except ValueError:
        return "use a prefix length, such as /24"
    return f"did you mean {_format_network(net)}?"


_NON_PUBLIC: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(cidr), label)
    for cidr, label in (
        ("0.0.0.0/8", "a 'this network' range"),
        ("10.0.0.0/8", "a private range (RFC 1918)"),
        ("100.64.0.0/10", "a carrier-grade NAT range (RFC 6598)"),
        ("127.0.0.0/8", "a loopback range"),
        ("169.254.0.0/16", "a link-local range"),
        ("172.16.0.0/12", "a private range (RFC 1918)"),
        ("192.0.0.0/24", "an IETF protocol range"),
        ("192.0.2.0/24", "a documentation range (RFC 5737)"),
        ("192.168.0.0/16", "a private range (RFC 1918)"),
        ("198.18.0.0/15", "a benchmarking range (RFC 2544)"),
        ("198.51.100.0/24", "a documentation range (RFC 5737)"),
        ("203.0.113.0/24", "a documentation range (RFC 5737)"),
        ("224.0.0.0/4", "a multicast range"),
        ("240.0.0.0/4", "a reserved range"),
    )
)


_NON_PUBLIC_BOUNDS = tuple(
    (int(special.network_address), int(special.broadcast_address), label)
    for special, label in _NON_PUBLIC
)


def non_public_range(net: ipaddress.IPv4Network) -> str | None:
    """Describe the non-public range `net` overlaps, or None when it is public."""
    low = int(net.network_address)
    return non_public_span(low, low | int(net.hostmask))


def non_public_span(low: int, high: int) -> str | None:
    """`non_public_range` of the block from `low` to `high` (integers, both included)."""
    for first, last, label in _NON_PUBLIC_BOUNDS:
        if low <= last and first <= high:  # two CIDR blocks overlap when their ranges do
            return label
    return None


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_ADDRESS = re.compile(
    rf"({_OCTET})\.({_OCTET})\.({_OCTET})\.({_OCTET})(?:/(3[0-2]|[12][0-9]|[1-9]))?", re.ASCII
)
"""An address `address_network` takes as it is: no leading zeros, a prefix of 1 to 32."""


def address_span(text: object) -> tuple[int, int, str]:
    """`address_network(text)` as its first and last address and its canonical spelling
    (`a.b.c.d/n`), in integer arithmetic; the same NormalizeError for anything it refuses.

    Plainly written addresses skip `ipaddress`; the rest (and host bits) take the exact path.
    """
    if not isinstance(text, str):
        address_network(text)  # raises: an address is a non-empty string
    return _address_span(str(text))


@functools.lru_cache(maxsize=1 << 13)
def _address_span(text: str) -> tuple[int, int, str]:
    match = _PLAIN_ADDRESS.fullmatch(text)
    if match is not None:
        a, b, c, d, prefix = match.groups()
        first = int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)
        host = (1 << (32 - int(prefix))) - 1 if prefix is not None else 0
        if not first & host:
            return first, first | host, f"{a}.{b}.{c}.{d}/{prefix or 32}"
    net = address_network(text)
    low = int(net.network_address)
    return low, low | int(net.hostmask), _format_network(net)
