"""When to try a request again, and how long to wait first.

Only requests that read are ever sent again by the HTTP layer: GET, HEAD and the
one POST that only reads (the workspaces search). They are retried after 429 and
503, and after a connection failure. A connection that never opened (nothing
was sent) is retried for every method; a refused one only a few times, quickly
(nothing is listening, and waiting rarely changes that).

A write (POST, PUT, PATCH, DELETE) is never resent here (DESIGN.md section 5):
a 429 or 5xx may come from a gateway after the origin committed, and a lost
answer says nothing either way. The client raises `AmbiguousWrite` (carrying
the wait the server asked for) and the apply re-reads the object to decide
whether the write landed, resending only one that did not. Even a PUT, which
carries the whole value, goes through that re-read: resent blindly it could
overwrite a colleague's edit made since the first send landed.

The wait honours `Retry-After` (never earlier), then `X-RateLimit-Reset`, else a
capped exponential backoff with full jitter; a total time budget bounds it all.
A header we cannot read is ignored, never an error.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from rovo_reconcile.api.transport import is_read_only_request

__all__ = [
    "RETRY_STATUSES",
    "Clock",
    "RetryPolicy",
    "SystemClock",
    "can_resend",
    "outcome_unknown",
    "server_wait",
]

RETRY_STATUSES = frozenset({429, 503})
"""Statuses after which a read is sent again."""
# Epoch values above this are milliseconds: as seconds it would be the year 5138.
_EPOCH_MS_THRESHOLD = 10**11
_EPOCH_SECONDS_FLOOR = 10**9
"""Below this (September 2001) an X-RateLimit-Reset number is read as seconds to wait."""
_EPOCH = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def can_resend(method: str, path: str) -> bool:
    """Whether the HTTP layer may send this request again: only when it reads."""
    return is_read_only_request(method, path)


def outcome_unknown(method: str, path: str, status: int) -> bool:
    """Whether this answer to a write leaves open that the write landed: a 429 or a 5xx
    (a gateway may answer so after the origin committed). The caller must re-read."""
    return not can_resend(method, path) and (status == 429 or status >= 500)


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay: float = 0.5
    max_delay: float = 30.0
    budget: float = 120.0
    """Total seconds one request may spend waiting between attempts."""
    refused_attempts: int = 3
    """Attempts when the connection is refused: fail fast when nothing is listening."""
    refused_max_delay: float = 1.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, attempt: int, *, cap: float | None = None) -> float:
        """Full jitter: uniform in [0, min(cap or max_delay, base * 2**attempt)]."""
        ceiling = self.max_delay if cap is None else cap
        return self.rng.uniform(0, min(ceiling, self.base_delay * 2**attempt))

    def delay(self, response: httpx.Response | None, attempt: int, now: datetime) -> float:
        wait = server_wait(response, now) if response is not None else None
        if wait is None:
            return self.backoff(attempt)
        # Never earlier than the server asked; a little jitter after it spreads the herd.
        return wait + self.rng.uniform(0, min(1.0, self.base_delay))


def server_wait(response: httpx.Response, now: datetime) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or X-RateLimit-Reset."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        text = retry_after.strip()
        if text.isascii() and text.isdigit():
            return float(text)
        wait = _until(_parse_http_date(text), now)
        if wait is not None:
            return wait
    reset = response.headers.get("X-RateLimit-Reset")
    if reset is not None:
        return _reset_wait(reset.strip(), now)
    return None


def _until(when: datetime | None, now: datetime) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _parse_http_date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _reset_wait(text: str, now: datetime) -> float | None:
    """Atlassian documents `yyyy-MM-ddTHH:mmZ`; accept full ISO 8601, epoch seconds or
    milliseconds, and a small number as seconds to wait. None (ignore the header) otherwise."""
    try:
        if not _EPOCH.fullmatch(text):
            return _until(datetime.fromisoformat(text.replace("Z", "+00:00")), now)
        stamp = float(text)
        if stamp < _EPOCH_SECONDS_FLOOR:
            return stamp  # a delay in seconds, not a moment in 1970
        if stamp > _EPOCH_MS_THRESHOLD:
            stamp /= 1000
        return _until(datetime.fromtimestamp(stamp, UTC), now)
    except (ValueError, OverflowError, OSError):
        return None
