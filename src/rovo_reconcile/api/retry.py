"""When to try a request again, and how long to wait first.

429 and 503 are retried for every method: the server says it did nothing.
Connection failures before the request was sent are retried too. A failure
after a non-idempotent write (POST, DELETE) was sent is never retried blindly:
the caller re-reads and re-plans instead. PUT and PATCH carry the whole desired
value, so sending them again is safe.

The wait honours `Retry-After` (never earlier), then `X-RateLimit-Reset`, else a
capped exponential backoff with full jitter; a total time budget bounds it all.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "Clock",
    "RetryPolicy",
    "SystemClock",
    "server_wait",
]

RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH"})


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
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

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
        if text.isdigit():
            return float(text)
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, (when - now).total_seconds())
    reset = response.headers.get("X-RateLimit-Reset")
    if reset is not None:
        when = _parse_reset(reset.strip())
        if when is not None:
            return max(0.0, (when - now).total_seconds())
    return None


def _parse_reset(text: str) -> datetime | None:
    """Atlassian documents `yyyy-MM-ddTHH:mmZ`; accept full ISO 8601 and epoch seconds too."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
