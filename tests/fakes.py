"""Fakes for client tests: a clock that records the waits it is asked for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Monotonic and wall time advance only by sleeping; every sleep is recorded.

    `real_fraction` lets a test really sleep a capped part of each wait, for a
    server whose own window must pass (the rate limiter counts real seconds).
    """

    def __init__(self, *, real_cap: float = 0.0) -> None:
        self.now = 1000.0
        self.start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []
        self.real_cap = real_cap

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.now - 1000.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.real_cap:
            await asyncio.sleep(min(seconds, self.real_cap))
