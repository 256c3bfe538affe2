"""The questions one `access` run asks: the command line's --app, --tool, --from and --auth
turned into `Question` values, every bad value a UsageError that says what was wrong."""

from __future__ import annotations

from rovo_reconcile.access.answer import Auth, Question
from rovo_reconcile.access.catalogue import Tool, catalogue
from rovo_reconcile.access.match import parse_uri
from rovo_reconcile.errors import NormalizeError, UsageError
from rovo_reconcile.policy.normalize import DomainPattern, address_span
from rovo_reconcile.policy.rules import AI_TOOL_APPS

__all__ = ["build_questions", "resolve_tool"]


def resolve_tool(text: str) -> tuple[Tool | None, DomainPattern | None]:
    """A catalogue name (`anthropic`) or a redirect URI (`https://claude.ai/api/mcp/auth_callback`,
    which names its catalogue tool when the catalogue knows it)."""
    known = catalogue()
    if ":" in text:
        try:
            uri = parse_uri(text)
        except NormalizeError as e:
            hint = f" ({e.hint})" if e.hint else ""
            raise UsageError(f"--tool {text!r}: {e.message}{hint}") from e
        return known.by_redirect(str(uri)), uri
    tool = known.get(text)
    if tool is None:
        raise UsageError(
            f"--tool {text!r} is neither a redirect URI nor an AI tool of the catalogue; "
            f"{known.suggest(text)}"
        )
    return tool, None


def _source_address(text: str) -> str:
    try:
        return address_span(text)[2]
    except NormalizeError as e:
        hint = f" ({e.hint})" if e.hint else ""
        raise UsageError(f"--from {text!r}: {e.message}{hint}") from e


def build_questions(
    app: str | None, tool: str | None, source: str | None, auth: Auth
) -> list[Question]:
    """One question per (app, tool): every AI-tool app when --app is not given, every
    catalogue tool when --tool is not; the source is --from, else each tool's egress ranges."""
    apps = [app] if app is not None else list(AI_TOOL_APPS)
    tools = [resolve_tool(tool)] if tool is not None else [(t, None) for t in catalogue().tools]
    address = _source_address(source) if source is not None else None
    questions = []
    for the_app in apps:
        for the_tool, uri in tools:
            addresses: tuple[str, ...]
            if address is not None:
                addresses, origin = (address,), "--from"
            elif the_tool is not None and the_tool.egress:
                addresses = the_tool.egress
                origin = f"{the_tool.display_name}'s published egress ranges"
            else:
                addresses, origin = (), "no source address"
            questions.append(Question(the_app, the_tool, uri, addresses, origin, auth))
    return questions
