"""Admin API errors, and the parser for Atlassian's three error body shapes.

    ApiError (exit 1)
    ├── ApiBadRequest       400  the request was malformed (our bug, or a value Atlassian refuses)
    ├── ApiUnauthorized     401  the API key is missing, wrong or expired
    ├── ApiForbidden        403  the key may not do this (read-only key, not an org admin)
    ├── ApiNotFound         404  unknown organization, policy or domain
    ├── ApiConflict         409  the object already exists
    ├── ApiUnavailable      429/5xx  still failing when retries or the time budget ran out
    ├── ApiConnectionError  the server could not be reached
    ├── ApiMalformed        a 2xx whose body is not the documented shape, or is too large
    └── AmbiguousWrite      a write whose outcome is unknown (no answer, 429, 5xx): re-read, then decide
    WriteRefused (exit 1)   a write attempted by a read-only command, stopped before it left

Bodies come as ApplicationError `{"errors": [{"status": "404", "code", "title", "detail"}]}`,
ProxyError `{"code": 401, "message"}` or NoPermsError `{"status": 403, "error", "message"}`;
the parser accepts all three and anything else.
"""

from __future__ import annotations

import json
from typing import Any

from rovo_reconcile.errors import RovoError

__all__ = [
    "AmbiguousWrite",
    "ApiBadRequest",
    "ApiConflict",
    "ApiConnectionError",
    "ApiError",
    "ApiForbidden",
    "ApiMalformed",
    "ApiNotFound",
    "ApiUnauthorized",
    "ApiUnavailable",
    "WriteRefused",
    "error_from_response",
]


class ApiError(RovoError):
    """The Admin API failed. `status` is the HTTP status (0 when there was no response)."""

    hint: str | None = None

    def __init__(self, message: str, *, status: int = 0, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.hint})" if self.hint else text


class ApiBadRequest(ApiError):
    pass


class ApiUnauthorized(ApiError):
    hint = "check ATLASSIAN_ADMIN_API_KEY or --api-key-file: the key is missing, wrong or expired"


class ApiForbidden(ApiError):
    hint = (
        "the API key lacks the permission: writes need an organization admin key with write scope"
    )


class ApiNotFound(ApiError):
    pass


class ApiConflict(ApiError):
    pass


class ApiUnavailable(ApiError):
    pass


class ApiConnectionError(ApiError):
    pass


class ApiMalformed(ApiError):
    """An answer that cannot be trusted as a read: never taken as empty, it stops the org."""


class AmbiguousWrite(ApiError):
    """A write was sent and its answer (none, 429 or 5xx) does not say whether it happened."""

    wait: float | None = None
    """Seconds the server asked to wait before anything is sent again (Retry-After)."""


class WriteRefused(RovoError):
    """A read-only command tried to send a write; the transport stopped it."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiBadRequest,
    401: ApiUnauthorized,
    403: ApiForbidden,
    404: ApiNotFound,
    409: ApiConflict,
}


def error_from_response(method: str, path: str, status: int, body: bytes) -> ApiError:
    """An ApiError for a failed response, with the server's own words where it gave any."""
    detail, code = _parse_body(body)
    cls = _BY_STATUS.get(status, ApiUnavailable if status == 429 or status >= 500 else ApiError)
    message = f"{method} {path} failed: HTTP {status}" + (f": {detail}" if detail else "")
    return cls(message, status=status, code=code)


def _parse_body(body: bytes) -> tuple[str | None, str | None]:
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]  # ApplicationError
        parts = [str(first[k]) for k in ("title", "detail") if first.get(k)]
        code = first.get("code")
        return ("; ".join(parts) or None), (str(code) if code is not None else None)
    message = data.get("message")  # ProxyError and NoPermsError
    if isinstance(message, str) and message:
        code = data.get("code", data.get("error"))
        return message, (str(code) if code is not None else None)
    return None, None
