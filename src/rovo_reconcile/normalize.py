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
    "DomainPattern",
    "address_network",
    "canonical_addresses",
    "canonical_domains",
    "non_public_range",
    "normalize_address",
    "normalize_domain",
    "parse_domain",
    "pattern_covers",
]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}|\*", re.ASCII)
_DOTTED_QUAD = re.compile(r"[0-9]+(?:\.[0-9]+){3}", re.ASCII)
_PREFIX = re.compile(r"[0-9]{1,2}", re.ASCII)
_DEFAULT_PORTS = {"https": "443", "http": "80"}
_LOOPBACK_HOSTS = {"localhost", "[::1]"}
_BRACE_GROUP = re.compile(r"\{([^{}]*)\}")


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True, order=True)
class DomainPattern:
    """A parsed, canonical domain pattern: `scheme://host[:port]path`."""

    scheme: str
    host: str
    port: str | None
    path: str

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"


def normalize_domain(text: object) -> str:
    """Return the canonical spelling of a domain pattern, or raise NormalizeError."""
    return str(parse_domain(text))


def canonical_domains(patterns: Iterable[object]) -> tuple[str, ...]:
    """Canonical, de-duplicated and sorted: the same set in any order gives the same tuple."""
    return tuple(sorted({normalize_domain(p) for p in patterns}))


def parse_domain(text: object) -> DomainPattern:
    if not isinstance(text, str) or not text:
        raise NormalizeError("domain.empty", "a domain pattern must be a non-empty string")
    _reject_bad_characters(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise NormalizeError(
            "domain.no-protocol",
            f"domain pattern {text!r} has no protocol",
            f"write it with its protocol, such as https://{text}",
        )
    if not _SCHEME.fullmatch(scheme):
        raise NormalizeError("domain.bad-protocol", f"{scheme!r} is not a valid protocol name")
    scheme = scheme.lower()
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
    if port is not None and _DEFAULT_PORTS.get(scheme) == port:
        port = None
    if scheme == "http" and not _is_loopback_host(host):
        raise NormalizeError(
            "domain.http-not-loopback",
            f"plain http is allowed only for loopback hosts, not {host!r}",
            f"use https://{host}{path}" if "*" not in host else "use https://",
        )
    return DomainPattern(scheme, host, port, _canonical_path(path))


def _reject_bad_characters(text: str) -> None:
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
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise NormalizeError("domain.bad-host", "unclosed [ in the host")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if not tail:
            return host, None
        if not tail.startswith(":"):
            raise NormalizeError("domain.bad-host", f"unexpected {tail!r} after the host")
        port = tail[1:]
    else:
        host, colon, port = authority.rpartition(":")
        if not colon:
            return authority, None
    if not _PORT.fullmatch(port) or (port != "*" and not 0 < int(port) <= 65535):
        raise NormalizeError(
            "domain.bad-port",
            f"{port!r} is not a port",
            "use a number from 1 to 65535, or * for any",
        )
    return host, port if port == "*" else str(int(port))


def _canonical_host(host: str) -> str:
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
    if "{" in first or "}" in first:
        # Each alternative is one label: check it as a full host, keep its A-label.
        hosts = {_idna(f"{alt}.{rest}" if rest else alt) for alt in _brace_alternatives(first)}
        group = _brace_group({h.split(".", 1)[0] for h in hosts})
        return f"{group}.{_idna(rest)}" if rest else group
    if "{" in host or "}" in host:
        raise NormalizeError(
            "domain.braces", "braces may only stand for the whole leftmost label of the host"
        )
    return _idna(host)


def _brace_alternatives(label: str) -> list[str]:
    match = _BRACE_GROUP.fullmatch(label)
    if match is None:
        raise NormalizeError(
            "domain.braces",
            f"{label!r}: braces must enclose the whole leftmost label, as {{app,api}}.example.com",
        )
    alternatives = match.group(1).split(",")
    if any(not alt for alt in alternatives):
        raise NormalizeError("domain.braces", f"{label!r} has an empty alternative")
    for alt in alternatives:
        if "." in alt or "*" in alt:
            raise NormalizeError("domain.braces", f"{alt!r}: each alternative must be one label")
    return alternatives


def _idna(host: str) -> str:
    """Host through IDNA 2008 with UTS 46 mapping, to lower-case A-labels."""
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
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


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

    Conservative where it cannot be sure: it is used for a warning only.
    """
    if broad == narrow or broad.scheme != narrow.scheme:
        return False
    if broad.port not in ("*", narrow.port):
        return False
    if not _host_covers(broad.host, narrow.host):
        return False
    return _glob_regex(broad.path).fullmatch(narrow.path) is not None


def _host_covers(broad: str, narrow: str) -> bool:
    """Every host `narrow` names (braces expanded) is named by `broad` too."""
    broad_hosts = _expand_braces(broad)
    return all(
        any(b == n or (b.startswith("*.") and n.endswith(b[1:])) for b in broad_hosts)
        for n in _expand_braces(narrow)
    )


def _expand_braces(host: str) -> list[str]:
    match = _BRACE_GROUP.match(host)
    if match is None:
        return [host]
    rest = host[match.end() :]
    return [alt + rest for alt in match.group(1).split(",")]


@functools.lru_cache(maxsize=1024)
def _glob_regex(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "{" and (end := glob.find("}", i)) > 0:
            alternatives = glob[i + 1 : end].split(",")
            out.append("(?:" + "|".join(re.escape(a) for a in alternatives) + ")")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


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
    if any(ch.isspace() or not ch.isprintable() for ch in text):
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
    net = ipaddress.IPv4Network((addr, prefix_len), strict=False)
    if prefix_len == 0:
        raise NormalizeError(
            "address.any",
            f"{text!r} admits every address on the internet",
            "list your own egress addresses instead",
        )
    if net.network_address != ipaddress.IPv4Address(addr):
        raise NormalizeError(
            "address.host-bits",
            f"{text!r} has host bits set",
            f"did you mean {_format_network(net)}?",
        )
    return net


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


def non_public_range(net: ipaddress.IPv4Network) -> str | None:
    """Describe the non-public range `net` overlaps, or None when it is public."""
    for special, label in _NON_PUBLIC:
        if net.overlaps(special):
            return label
    return None
