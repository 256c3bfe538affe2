"""AdminClient: the one place that sends requests to the Admin API (or the emulator).

One shared `httpx.AsyncClient` per run, a cap on requests in flight, retries per
`retry.RetryPolicy`, pagination that follows `links.next` (same origin only: the
bearer token never goes to another host) and falls back to `meta.next` as
`?cursor=`, and every failure translated into an `ApiError` with the key redacted.

Work is bounded (`ReadLimits`): an answer larger than the cap is refused while it is
read, and a listing stops with an error after too many pages, too long, or pages that
bring nothing new (a cursor that never ends). Only a 2xx is an answer; a redirect is not.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from rovo_reconcile.api.errors import (
    AmbiguousWrite,
    ApiConnectionError,
    ApiError,
    ApiMalformed,
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
from rovo_reconcile.api.shapes import Page, parse
from rovo_reconcile.errors import UsageError

__all__ = ["MAX_RESPONSE_ENV", "AdminClient", "Json", "ReadLimits"]

Json = dict[str, Any]
MAX_RESPONSE_ENV = "ROVO_RECONCILE_MAX_RESPONSE_MB"
_MIB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """How much one answer and one listing may cost before the client gives up on them."""

    max_response_bytes: int = 20 * _MIB
    """An answer (after decompression) larger than this is an error, read no further."""
    max_pages: int = 1_000
    max_listing_seconds: float = 300.0
    """Wall time one listing may take over all its pages, retries included."""
    idle_pages: int = 5
    """Consecutive next pages with no item not seen before: the cursor never ends."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadLimits:
        """The defaults, with the response cap from $ROVO_RECONCILE_MAX_RESPONSE_MB."""
        text = env.get(MAX_RESPONSE_ENV, "").strip()
        if not text:
            return cls()
        try:
            mib = float(text)
        except ValueError:
            mib = -1.0
        if not 0 < mib <= 4096:
            raise UsageError(f"{MAX_RESPONSE_ENV}={text!r} is not a size in MiB (0 to 4096)")
        return cls(max_response_bytes=int(mib * _MIB))


@dataclass(frozen=True)
class _Failed:
    """An attempt that got no answer and is safe to try again."""

    error: httpx.TransportError
    reason: str
    """What went wrong, for the final message; never the raw text of a protocol error."""
    refused: bool = False


def _refused(error: BaseException) -> bool:
    """Whether nothing can be reached at all: the connection was refused or the host name does
    not resolve (httpx wraps the cause several levels deep). Retried only a few times, quickly:
    a mistyped --api-url should fail in seconds, not after the whole retry budget."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError | socket.gaierror):
            return True
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def _unreachable(error: BaseException) -> str:
    text = str(error)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "cannot connect: the host name does not resolve"
    return "cannot connect: connection refused"


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
        limits: ReadLimits | None = None,
    ) -> None:
        self.http = http
        self.limits = limits or ReadLimits()
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
        """Send with retries; return a 2xx response or raise an ApiError.

        A 3xx is an error too: the Admin API never redirects, redirects are not followed
        (the key would go along), and the body of one is not the answer that was asked for.
        """
        started = self.clock.monotonic()
        attempt = 0
        path = httpx.URL(url).path
        while True:
            attempt += 1
            outcome = await self._send_once(method, url, json_body, params)
            response = outcome if isinstance(outcome, httpx.Response) else None
            if response is not None and response.status_code < 300:
                return response
            if response is not None and outcome_unknown(method, path, response.status_code):
                raise self._ambiguous(method, path, response)  # never resent here: see retry.py
            if response is not None and response.status_code < 400:
                where = response.headers.get("Location")
                raise ApiError(
                    self._clean(
                        f"{method} {path}: the server answered HTTP {response.status_code}"
                        + (f" to {where}" if where else "")
                        + "; the Admin API does not redirect, so this is not taken as an answer"
                    ),
                    status=response.status_code,
                )
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
            why = (
                f"HTTP {response.status_code}"
                if response is not None
                else outcome.reason.partition(":")[0]  # "cannot connect" or "no answer"
                if isinstance(outcome, _Failed)
                else "no answer"
            )
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
                request = self.http.build_request(method, url, json=json_body, params=params)
                response = await self.http.send(request, stream=True)
                try:
                    body = await self._read_capped(method, path, response)
                finally:
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # Nothing was sent: retrying cannot duplicate anything.
            if _refused(e):
                return _Failed(e, _unreachable(e), refused=True)
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
            return _Failed(e, f"no answer: {type(e).__name__}")
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    async def _read_capped(self, method: str, path: str, response: httpx.Response) -> bytes:
        """The whole body, refused as soon as it is known to pass `max_response_bytes`."""
        limit = self.limits.max_response_bytes
        declared = response.headers.get("Content-Length", "").strip()
        too_large = ApiMalformed(
            f"{method} {path}: the answer is larger than {_size(limit)} "
            f"(HTTP {response.status_code}); not read further "
            f"(set {MAX_RESPONSE_ENV} to allow more)",
            status=response.status_code,
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

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
        except RecursionError as e:
            raise ApiMalformed(
                f"{method} {httpx.URL(url).path}: the answer is nested too deeply to read",
                status=response.status_code,
            ) from e
        except ValueError as e:  # also an integer of more digits than Python converts
            reason = str(e).partition(";")[0][:120]
            raise ApiMalformed(
                f"{method} {httpx.URL(url).path}: the answer is not JSON ({reason})",
                status=response.status_code,
            ) from e
        if not isinstance(data, dict):
            raise ApiMalformed(
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
        """Every item of `data` over all pages: `links.next` first, else `meta.next` as cursor.

        Each page must be `{data: [object, ...], links?, meta?}`; the items' own shapes are
        the caller's to check. Bounded by `ReadLimits`: pages, seconds and idle pages.
        """
        origin = httpx.URL(url)
        where = f"{method} {origin.path}"
        limits = self.limits
        next_url = url
        next_params = dict(params or {})
        seen_pages: set[str] = set()
        seen_items: set[str] = set()
        idle = 0
        started = self.clock.monotonic()
        for number in itertools.count(1):
            response = await self.request(
                method, next_url, params=next_params or None, json_body=json_body
            )
            page = parse(Page, self._json(response, method, next_url), where, f"page {number}")
            fresh = 0
            for item in page.data:
                identity = json.dumps(item.get("id", item), sort_keys=True, default=str)
                if identity not in seen_items:
                    seen_items.add(identity)
                    fresh += 1
                yield item
            idle = 0 if fresh or number == 1 else idle + 1
            link = page.links.next if page.links is not None else None
            cursor = page.meta.next if page.meta is not None else None
            if link:
                target = origin.join(link)
                if (target.scheme, target.host, target.port) != (
                    origin.scheme,
                    origin.host,
                    origin.port,
                ):
                    raise ApiError(f"{where}: refusing to follow a next-page link to another host")
                next_url, next_params = str(target), {}
            elif cursor:
                next_url, next_params = url, {**(params or {}), "cursor": cursor}
            else:
                return
            key = f"{next_url}?{sorted(next_params.items())}"
            if key in seen_pages:
                raise ApiError(f"{where}: the server returned the same next page twice")
            seen_pages.add(key)
            if idle >= limits.idle_pages:
                raise ApiError(
                    f"{where}: {idle} next pages in a row brought nothing new; the listing's "
                    "cursor never ends, so it is not read further"
                )
            if number >= limits.max_pages:
                raise ApiError(f"{where}: more than {limits.max_pages} pages; not read further")
            elapsed = self.clock.monotonic() - started
            if elapsed > limits.max_listing_seconds:
                raise ApiError(
                    f"{where}: still paging after {elapsed:.0f} s ({number} pages, more than "
                    f"the {limits.max_listing_seconds:.0f} s a listing may take); not read further"
                )

    async def aclose(self) -> None:
        await self.http.aclose()


def _size(count: int) -> str:
    return f"{count / _MIB:g} MiB" if count >= _MIB else f"{count} bytes"
