"""The API key as a value that cannot leak by accident."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from rovo_reconcile.api.errors import ApiUnauthorized

__all__ = ["BearerAuth", "Secret", "api_key_problem", "redact"]

_REDACTED = "***"


class Secret:
    """Holds a secret string; repr and str never show it. Use `.reveal()` at the one place it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_REDACTED!r})"

    __str__ = __repr__


def redact(text: str, *secrets: Secret | None) -> str:
    """Replace every occurrence of the given secrets in `text`."""
    for secret in secrets:
        if secret is not None and secret.reveal():
            text = text.replace(secret.reveal(), _REDACTED)
    return text


def api_key_problem(key: Secret) -> str | None:
    """Why the key cannot go in a header, in words that never include it; None if it can.

    HTTP libraries refuse such a header and quote it, escaped, in their error: checked
    first, the key never reaches that error and `redact`'s exact match is never needed.
    """
    if all("!" <= char <= "~" for char in key.reveal()):
        return None
    return "the API key contains whitespace, control or non-ASCII characters"


class BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer` per request, so the key never sits in the client's headers."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        problem = api_key_problem(self._key)
        if problem is not None:
            raise ApiUnauthorized(
                f"{request.method} {request.url.path}: {problem}; nothing was sent"
            )
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(***)"
