"""One send budget per platform, shared by every bot process on the database.

A platform limits a bot token, not a process: two processes that each paced themselves at the
limit would send at twice it. So sends are reserved from a row of `pacing`, a virtual clock for
the platform: reserving n sends moves the clock n / rate seconds on from where it stood (or from
BURST_SECONDS ago, if it stood further back), in one statement, and the process spaces those n
sends over the interval it got. Intervals never overlap, so all processes together keep to the
rate, with at most one second's worth at once after a quiet spell (a token bucket holding one
second, as aiolimiter's and, as far as is known, Telegram's own). A block a process could not
use in time is given up rather than spent late in a burst.
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Callable

from .storage import Storage

BLOCK_SECONDS = 0.25   # how much of the budget one reservation takes: 4 small writes a second while sending
BURST_SECONDS = 1.0    # how much unused budget may be caught up at once
MAX_AHEAD = 30.0       # a clock further ahead than this was left by a wall-clock jump: start again from now


class SharedPace:
    """`await pace.acquire()` before each send: returns when this process may send the next one."""

    def __init__(self, store: Storage, key: str, rate: float, clock: Callable[[], float] = time.time):
        self.store, self.key, self.rate, self.clock = store, key, rate, clock
        self.block = max(1, math.ceil(rate * BLOCK_SECONDS))
        self._start, self._used, self._count = 0.0, 0, 0
        self._lock = asyncio.Lock()       # first come, first served

    async def acquire(self) -> None:
        async with self._lock:
            now = self.clock()
            slot = self._start + self._used / self.rate
            if self._used >= self._count or slot < now - BURST_SECONDS:  # used up, or left too long unused
                await self._reserve(now)
                now = self.clock()
                slot = self._start
            self._used += 1
            if slot > now:
                await asyncio.sleep(slot - now)

    async def _reserve(self, now: float) -> None:
        span = self.block / self.rate
        row = await self.store.one_written(
            "INSERT INTO pacing (key, next_at) VALUES (?1, ?2 - ?5 + ?3) ON CONFLICT (key) DO UPDATE "
            "SET next_at = max(min(next_at, ?2 + ?4), ?2 - ?5) + ?3 RETURNING next_at",
            self.key, now, span, MAX_AHEAD, BURST_SECONDS)
        self._start, self._used, self._count = row[0] - span, 0, self.block
