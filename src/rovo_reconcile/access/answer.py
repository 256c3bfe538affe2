"""Would this AI tool's call to this app get through? Pure: an `OrgView` and a question in,
an `Answer` out, with a verdict and the deciding places per control.

Atlassian's page (the reference in DESIGN.md) makes a tool call succeed only when both
controls admit it: the tool's domain is allowed (the Atlassian-supported list when it is on,
or one of the org's own patterns), and the request comes from an address that an enabled IP
allowlist covering the called app admits; an app no enabled allowlist covers has no IP
restriction. Authentication is a third gate: OAuth 2.1 is always on, API tokens only when
the org turns them on.

Whether the domain rules bind API-token clients the page says both ways. This module takes
the reading two of Atlassian's sentences give (`TOKEN_READING`: they do not, which is the
wider access and the one `validate`'s lints assume) and answers for the other reading too,
so a caller can show both (`Answer.other_reading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rovo_reconcile.access.catalogue import Tool
from rovo_reconcile.access.match import admits, parse_uri
from rovo_reconcile.access.view import AddressRule, ListRule, OrgView
from rovo_reconcile.policy.normalize import DomainPattern
from rovo_reconcile.policy.ranges import minus, ranges, span, within

__all__ = [
    "OAUTH_ONLY_SENTENCES",
    "TOKEN_BOUND_SENTENCE",
    "TOKEN_READING",
    "Answer",
    "Auth",
    "Control",
    "Question",
    "Verdict",
    "answer",
    "combine",
]

Verdict = Literal["allowed", "blocked", "unknown"]
Auth = Literal["oauth", "token"]

TOKEN_READING = "domain rules bind only OAuth 2.1 clients"
OAUTH_ONLY_SENTENCES = (
    "You can only block domains for AI tools that use OAuth 2.1, but not when they use API "
    "tokens to access your organization.",
    "These domain rules only apply to tools connecting via OAuth 2.1.",
)
"""The sentences of Atlassian's settings page and of its domains page behind `TOKEN_READING`."""
TOKEN_BOUND_SENTENCE = (
    "A tool must use a domain that is allowed here, whether it connects via OAuth 2.1 or API token."
)
"""The sentence of the same settings page that says the opposite."""


@dataclass(frozen=True)
class Control:
    control: Literal["authentication", "domain", "ip"]
    verdict: Verdict | Literal["not applied"]
    reason: str
    where: tuple[str, ...] = ()
    """The places that decide it: `file:line`, or the live object."""

    def __post_init__(self) -> None:  # each place once, none empty (a setting not written)
        object.__setattr__(self, "where", tuple(dict.fromkeys(w for w in self.where if w)))


@dataclass(frozen=True)
class Question:
    app: str
    tool: Tool | None
    """The catalogue tool, when the call is one (by name, or by its redirect URI)."""
    uri: DomainPattern | None
    """The redirect URI asked about; None means the catalogue tool's own ones."""
    addresses: tuple[str, ...]
    """Canonical CIDRs the call may come from (`--from`, else the tool's egress ranges)."""
    addresses_from: str
    """Where `addresses` came from, in words."""
    auth: Auth = "oauth"

    @property
    def who(self) -> str:
        if self.tool is not None:
            return self.tool.label
        return str(self.uri) if self.uri is not None else "a tool"


@dataclass(frozen=True)
class Answer:
    question: Question
    verdict: Verdict
    controls: tuple[Control, ...]
    other_reading: Verdict | None = None
    """For `--auth token`: the verdict if domain rules bound API-token clients too."""
    other_domain: Control | None = None
    """For `--auth token`: what the domain control says under that other reading."""
    notes: tuple[str, ...] = field(default=())


def combine(verdicts: Sequence[str]) -> Verdict:
    """Blocked if any control blocks; else unknown if any cannot tell; else allowed."""
    if "blocked" in verdicts:
        return "blocked"
    if "unknown" in verdicts:
        return "unknown"
    return "allowed"


def answer(view: OrgView, question: Question) -> Answer:
    auth = _authentication(view, question.auth)
    domain = _domain(view, question)
    ip, notes = _ip(view, question)
    if question.auth == "oauth":
        controls = (auth, domain, ip)
        return Answer(question, combine([c.verdict for c in controls]), controls, notes=notes)
    skipped = Control(
        "domain",
        "not applied",
        f"read as: {TOKEN_READING} (Atlassian: {OAUTH_ONLY_SENTENCES[0]!r}); the same page also "
        f"says {TOKEN_BOUND_SENTENCE!r}, under which the domain control says: "
        f"{domain.verdict}: {domain.reason}",
        domain.where,
    )
    return Answer(
        question,
        combine([auth.verdict, ip.verdict]),
        (auth, skipped, ip),
        other_reading=combine([auth.verdict, domain.verdict, ip.verdict]),
        other_domain=domain,
        notes=notes,
    )


def _authentication(view: OrgView, auth: Auth) -> Control:
    if auth == "oauth":
        return Control("authentication", "allowed", "OAuth 2.1 is always on")
    if view.api_token is True:
        return Control(
            "authentication", "allowed", "API-token authentication is on", (view.api_token_where,)
        )
    if view.api_token is False:
        return Control(
            "authentication",
            "blocked",
            "API-token authentication is off: tools can only connect with OAuth 2.1",
            (view.api_token_where,),
        )
    return Control("authentication", "unknown", f"API-token authentication: {view.unknown_mcp}")


def _domain(view: OrgView, question: Question) -> Control:
    tool = question.tool
    uris: tuple[DomainPattern, ...]
    if question.uri is not None:
        uris = (question.uri,)
    else:
        uris = tuple(parse_uri(u) for u in tool.redirect_uris) if tool is not None else ()
    shown = ", ".join(str(u) for u in uris)
    matches = [
        (rule, uri) for rule in view.domains or () for uri in uris if admits(rule.pattern, uri)
    ]
    if matches:
        rule, uri = matches[0]
        return Control(
            "domain",
            "allowed",
            f"your domain {rule.pattern} admits {uri}",
            tuple(dict.fromkeys(r.where for r, _ in matches)),
        )
    on_list = tool is not None and tool.atlassian_supported
    if view.supported is True and on_list:
        assert tool is not None
        return Control(
            "domain",
            "allowed",
            f"the Atlassian-supported list is allowed, and Atlassian names {tool.vendor}'s "
            f"{tool.display_name} among its supported AI tools ({tool.supported_fact.cite()})",
            (view.supported_where,),
        )
    none_of = _none_of(view, shown)
    if view.supported is True and tool is None:
        return Control(
            "domain",
            "unknown",
            f"the Atlassian-supported list is allowed, but whether {shown} is on it is not "
            f"known to rovo-reconcile (it is not a catalogue tool's redirect URI); {none_of}",
            (view.supported_where, view.domains_where),
        )
    if view.supported is None or view.domains is None:
        unknown = "the supported list" if view.supported is None else "the org's own domains"
        return Control(
            "domain",
            "unknown",
            f"{unknown}: {view.unknown_mcp}; {none_of}",
            (view.supported_where, view.domains_where),
        )
    if view.supported is False:
        listed = "the Atlassian-supported list is blocked"
    else:
        listed = (
            "the Atlassian-supported list is allowed, but the catalogue does not count "
            f"{question.who} on it"
        )
    return Control(
        "domain",
        "blocked",
        f"{listed}, and {none_of}",
        (view.supported_where, view.domains_where),
    )


def _none_of(view: OrgView, shown: str) -> str:
    if view.domains is None:
        return f"no domain of the org is known to admit {shown}"
    count = len(view.domains)
    if count == 0:
        return f"the org lists no domains of its own, so nothing admits {shown}"
    return f"none of the org's {count} domain{'s' if count > 1 else ''} admits {shown}"


def _ip(view: OrgView, question: Question) -> tuple[Control, tuple[str, ...]]:
    notes: list[str] = []
    app = question.app
    tool = question.tool
    if (
        tool is not None
        and tool.egress
        and question.addresses
        and not within(ranges(question.addresses), ranges(tool.egress))
    ):
        notes.append(
            f"{tool.display_name} calls from {tool.vendor}'s cloud ({', '.join(tool.egress)}), "
            f"not from {', '.join(question.addresses)}: some AI tools set their own outbound "
            "addresses, so a user on an allowed network is still blocked unless the tool's "
            "ranges are allowlisted"
        )
    if view.allowlists is None:
        return Control("ip", "unknown", view.unknown_allowlists), tuple(notes)
    covering = [a for a in view.allowlists if a.enabled and app in a.apps]
    disabled = [a for a in view.allowlists if not a.enabled and app in a.apps]
    ignored = "".join(
        f"; allowlist {a.name!r} covers {app} but is disabled, so it is ignored" for a in disabled
    )
    if not covering:
        return (
            Control(
                "ip",
                "allowed",
                f"no enabled allowlist covers {app}, so {app} has no IP restriction{ignored}",
                (view.allowlists_where, *(a.where for a in disabled)),
            ),
            tuple(notes),
        )
    if not question.addresses:
        reason = "no source address to check: pass --from ADDRESS"
        if tool is not None:
            reason = (
                f"the catalogue holds no verified egress ranges for {tool.label} "
                f"({tool.egress_fact.cite()}), so where its calls come from is not known; "
                "pass --from ADDRESS"
            )
        return Control("ip", "unknown", reason, tuple(a.where for a in covering)), tuple(notes)
    live = [(a, rule) for a in covering for rule in a.addresses if rule.expired is None]
    admitted = ranges(rule.address for _, rule in live)
    asked = ranges(question.addresses)
    lists = ", ".join(repr(a.name) for a in covering)
    if within(asked, admitted):
        deciding = _deciding(live, asked)
        by = "; ".join(f"{rule.shown} in allowlist {a.name!r}" for a, rule in deciding)
        return (
            Control(
                "ip",
                "allowed",
                f"{_what(question)} is admitted by {by}{ignored}",
                tuple(rule.where for _, rule in deciding),
            ),
            tuple(notes),
        )
    left = minus(asked, admitted)
    part = left != asked
    lapsed = [
        (a, rule)
        for a in covering
        for rule in a.addresses
        if rule.expired is not None and _overlaps(rule.address, asked)
    ]
    expired = "".join(
        f"; {rule.shown} in allowlist {a.name!r} would admit it but expired on {rule.expired}"
        for a, rule in lapsed
    )
    how = "only part of" if part else "none of"
    return (
        Control(
            "ip",
            "blocked",
            f"the enabled allowlists covering {app} ({lists}) admit {how} {_what(question)}"
            f"{expired}{ignored}",
            tuple(dict.fromkeys([*(a.where for a in covering), *(r.where for _, r in lapsed)])),
        ),
        tuple(notes),
    )


def _what(question: Question) -> str:
    return f"{', '.join(question.addresses)} ({question.addresses_from})"


def _overlaps(address: str, asked: list[tuple[int, int]]) -> bool:
    found = span(address)
    return found is not None and any(found[0] <= b and a <= found[1] for a, b in asked)


def _deciding(
    live: list[tuple[ListRule, AddressRule]], asked: list[tuple[int, int]]
) -> list[tuple[ListRule, AddressRule]]:
    """The entries that admit the asked addresses: those holding a whole asked block first;
    where none holds one alone, every entry touching it (together they do)."""
    out: dict[str, tuple[ListRule, AddressRule]] = {}
    for first, last in asked:
        holding = [
            (a, rule)
            for a, rule in live
            if (found := span(rule.address)) is not None and found[0] <= first and last <= found[1]
        ]
        touching = holding[:1] or [
            (a, rule) for a, rule in live if _overlaps(rule.address, [(first, last)])
        ]
        for a, rule in touching:
            out.setdefault(rule.where + rule.address, (a, rule))
    return list(out.values())
