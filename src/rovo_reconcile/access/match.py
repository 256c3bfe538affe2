"""Whether an allowed-domain pattern admits a concrete redirect URI.

No matcher of its own: a URI is parsed into a pattern with no wildcard (`parse_domain`),
and a pattern admits it when the two are equal or the pattern covers it, by the same
`pattern_covers` that finds shadowed patterns in `validate`. For a URI without wildcards
that test is exact: `pattern_covers` is only conservative when the narrow side has a `*`.
"""

from __future__ import annotations

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import DomainPattern, parse_domain, pattern_covers

__all__ = ["admits", "parse_uri"]


def parse_uri(text: str) -> DomainPattern:
    """A concrete redirect URI as the normaliser spells it; NormalizeError when it is not one
    (a URI holds no wildcard or alternatives: it is what a tool sends, not a pattern)."""
    uri = parse_domain(text)
    if "*" in str(uri) or "{" in str(uri):
        raise NormalizeError(
            "access.uri-pattern",
            f"{text!r} is a pattern, not a redirect URI",
            "give the tool's redirect URI itself, such as https://claude.ai/api/mcp/auth_callback",
        )
    return uri


def admits(pattern: DomainPattern, uri: DomainPattern) -> bool:
    """Does the allowed-domain `pattern` admit the concrete redirect URI `uri`?"""
    return pattern == uri or pattern_covers(pattern, uri)
