"""AdminClient: the one place that sends requests to the Admin API (or the emulator).

One shared `httpx.AsyncClient` per run, a cap on requests in flight, retries per
`retry.RetryPolicy`, pagination that follows `links.next` (same origin only: the
bearer token never goes to another host) and falls back to `meta.next` as
`?cursor=`, and every failure translated into an `ApiError` with the key redacted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from rovo_reconcile.api.errors import (
    AmbiguousWrite,
    ApiConnectionError,
    ApiError,
    ApiUnavailable,
    error_from_response,
)
from rovo_reconcile.api.retry import (
    RETRY_STATUSES,
    Clock,
    RetryPolicy,
    SystemClock,
    can_resend,
    outcome_unknown,
    server_wait,
)
from rovo_reconcile.api.secrets import Secret, redact

__all__ = ["AdminClient", "Json"]

Json = dict[str, Any]
_MAX_PAGES = 10_000


@dataclass(frozen=True)
class _Failed:
    """An attempt that got no answer and is safe to try again."""

    error: httpx.TransportError
    reason: str
    """What went wrong, for the final message; never the raw text of a protocol error."""
    refused: bool = False


def _refused(error: BaseException) -> bool:
    """Whether a connection refusal lies under this error (httpx wraps it several levels deep)."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


class AdminClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        secret: Secret | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self._log = log or (lambda _message: None)
        self.retry = retry or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self._secret = secret
        self._slots = asyncio.Semaphore(concurrency)

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Json | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise an ApiError."""
        started = self.clock.monotonic()
        attempt = 0
        path = httpx.URL(url).path
        while True:
            attempt += 1
            outcome = await self._send_once(method, url, json_body, params)
            response = outcome if isinstance(outcome, httpx.Response) else None
            if response is not None and response.status_code < 400:
                return response
            if response is not None and outcome_unknown(method, path, response.status_code):
                raise self._ambiguous(method, path, response)  # never resent here: see retry.py
            if response is not None and response.status_code not in RETRY_STATUSES:
                raise self._error(method, path, response)
            refused = isinstance(outcome, _Failed) and outcome.refused
            limit = self.retry.max_attempts
            if refused:
                limit = min(limit, self.retry.refused_attempts)
            if attempt >= limit:
                raise self._gave_up(method, path, outcome, f"after {attempt} attempts")
            if refused:
                wait = self.retry.backoff(attempt, cap=self.retry.refused_max_delay)
            else:
                wait = self.retry.delay(response, attempt, self.clock.wall())
            if self.clock.monotonic() - started + wait > self.retry.budget:
                raise self._gave_up(method, path, outcome, "the retry time budget ran out")
            why = f"HTTP {response.status_code}" if response is not None else "cannot connect"
            self._log(
                f"{method} {path}: {why}; retrying in {wait:.1f} s "
                f"(attempt {attempt + 1} of {limit})"
            )
            await self.clock.sleep(wait)

    async def _send_once(
        self,
        method: str,
        url: str,
        json_body: Json | None,
        params: dict[str, str] | None,
    ) -> httpx.Response | _Failed:
        """One attempt: the response, or a failure that is safe to retry."""
        path = httpx.URL(url).path
        try:
            async with self._slots:
                return await self.http.request(method, url, json=json_body, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # Nothing was sent: retrying cannot duplicate anything.
            if _refused(e):
                return _Failed(e, "cannot connect: connection refused", refused=True)
            return _Failed(e, f"cannot connect: {str(e) or type(e).__name__}")
        except httpx.LocalProtocolError as e:
            # We built a request the HTTP library will not send. Its message quotes the
            # offending header, so only the exception's name goes into ours.
            raise ApiError(
                f"{method} {path}: the request could not be sent ({type(e).__name__})"
            ) from e
        except httpx.TransportError as e:
            if not can_resend(method, path):
                raise AmbiguousWrite(
                    self._clean(
                        f"{method} {path}: the connection failed after the request was sent "
                        f"({type(e).__name__}); it may or may not have been applied"
                    )
                ) from e
            return _Failed(e, f"failed: {type(e).__name__}")

    def _error(self, method: str, path: str, response: httpx.Response) -> ApiError:
        error = error_from_response(method, path, response.status_code, response.content)
        error.args = (self._clean(str(error.args[0])),)
        return error

    def _ambiguous(self, method: str, path: str, response: httpx.Response) -> AmbiguousWrite:
        error = self._error(method, path, response)
        ambiguous = AmbiguousWrite(
            f"{error.args[0]}; the write may or may not have been applied",
            status=response.status_code,
            code=error.code,
        )
        ambiguous.wait = server_wait(response, self.clock.wall())
        return ambiguous

    def _gave_up(
        self, method: str, path: str, outcome: httpx.Response | _Failed, why: str
    ) -> ApiError:
        if isinstance(outcome, _Failed):
            failed = ApiConnectionError(self._clean(f"{method} {path}: {outcome.reason} ({why})"))
            failed.__cause__ = outcome.error  # as `raise ... from`, for whoever reads the chain
            return failed
        error = self._error(method, path, outcome)
        return ApiUnavailable(
            f"{error.args[0]} ({why})", status=outcome.status_code, code=error.code
        )

    def _clean(self, text: str) -> str:
        return redact(text, self._secret)

    # ------------------------------------------------------------------ json helpers

    async def get_json(self, url: str, params: dict[str, str] | None = None) -> Json:
        return self._json(await self.request("GET", url, params=params), "GET", url)

    async def send_json(self, method: str, url: str, body: Json | None = None) -> Json | None:
        response = await self.request(method, url, json_body=body)
        return self._json(response, method, url) if response.content else None

    def _json(self, response: httpx.Response, method: str, url: str) -> Json:
        try:
            data = json.loads(response.content)
        except ValueError as e:
            raise ApiError(
                f"{method} {httpx.URL(url).path}: the answer is not JSON",
                status=response.status_code,
            ) from e
        if not isinstance(data, dict):
            raise ApiError(
                f"{method} {httpx.URL(url).path}: expected a JSON object",
                status=response.status_code,
            )
        return data

    async def pages(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Json | None = None,
    ) -> AsyncIterator[Json]:
        """Every item of `data` over all pages: `links.next` first, else `meta.next` as cursor."""
        origin = httpx.URL(url)
        next_url: str | None = url
        next_params = dict(params or {})
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            assert next_url is not None
            response = await self.request(
                method, next_url, params=next_params or None, json_body=json_body
            )
            page = self._json(response, method, next_url)
            for item in page.get("data") or []:
                if isinstance(item, dict):
                    yield item
            link = (page.get("links") or {}).get("next")
            cursor = (page.get("meta") or {}).get("next")
            if link:
                target = origin.join(str(link))
                if (target.scheme, target.host, target.port) != (
                    origin.scheme,
                    origin.host,
                    origin.port,
                ):
                    raise ApiError(
                        f"{origin.path}: refusing to follow a next-page link to another host"
                    )
                next_url, next_params = str(target), {}
            elif cursor:
                next_url, next_params = url, {**(params or {}), "cursor": str(cursor)}
            else:
                return
            key = f"{next_url}?{sorted(next_params.items())}"
            if key in seen:
                raise ApiError(f"{origin.path}: the server returned the same next page twice")
            seen.add(key)
        raise ApiError(f"{origin.path}: more than {_MAX_PAGES} pages")

    async def aclose(self) -> None:
        await self.http.aclose()
