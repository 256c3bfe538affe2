"""The three error shapes of the Admin API, and the one exception handlers raise.

Atlassian answers errors in three different bodies (reference section 1.6), and
a client must cope with all of them, so the emulator produces each exactly:

- ApplicationError `{"errors": [{"id", "status": "404", "code", "title", "detail"}]}`
  for 400/404/405/409/500 (and 503 half of the time) - `status` is a *string*;
- ProxyError `{"code": 401, "message"}` for 401 and 429 - `code` is a *number*;
- NoPermsError `{"timestamp", "path", "status": 403, "error": "Forbidden", "message",
  "requestId"}` for 403.

Handlers raise `Problem`; one exception handler turns it into an ApplicationError.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "Problem",
    "application_error",
    "json_response",
    "no_perms_error",
    "proxy_error",
]


class Problem(Exception):
    """An ApplicationError to answer with: `Problem(404, "ADMIN-404-5", "Policy not found", ...)`."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def application_error(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": str(status),
                "code": code,
                "title": title,
                "detail": detail,
            }
        ]
    }
    return json_response(body, status, headers)


def proxy_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return json_response({"code": status, "message": message}, status, headers)


def no_perms_error(path: str, message: str) -> JSONResponse:
    body = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime()),
        "path": path,
        "status": 403,
        "error": "Forbidden",
        "message": message,
        "requestId": uuid.uuid4().hex,
    }
    return json_response(body, 403)
