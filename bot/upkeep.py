"""The jobs that keep a long-running bot observable and its database small (see bot/scheduling.py):
the push ticks with their counters, the heartbeat, and the hourly pruning and counter line."""
from __future__ import annotations

import logging
from typing import Iterable

from .delivery import Delivery, TickReport
from .health import Heartbeat, counter_line, metrics
from .pruning import prune

log = logging.getLogger("quizbot.counters")


class Upkeep:
    def __init__(self, delivery: Delivery, adapters: Iterable[object], keep_days: int = 90):
        self.delivery, self.keep_days = delivery, keep_days
        self.heartbeat = Heartbeat(delivery.store, delivery.worker, adapters, delivery.clock)

    async def push_tick(self) -> TickReport:
        """A delivery tick, counted; then a counter line if anything happened since the last one."""
        report = await self.delivery.tick()
        _count(report)
        await self.heartbeat.push_ticked()
        counts = metrics.take("tick")
        if any(counts.values()):
            log.info("counters since the last push tick: %s", counter_line(counts))
        return report

    async def digest_tick(self) -> TickReport:
        report = await self.delivery.digest_tick()
        _count(report)
        return report

    async def beat(self) -> None:
        await self.heartbeat.beat()

    async def prune(self) -> None:
        await prune(self.delivery.store, self.delivery.clock(), self.keep_days)

    async def hourly_counters(self) -> None:
        log.info("counters for the last hour: %s", counter_line(metrics.take("hour")))

    async def stopped(self) -> None:
        await self.heartbeat.stopped()


def _count(report: TickReport) -> None:
    metrics.count("pushes_sent", report.sent)
    metrics.count("pushes_failed", report.failed)
    metrics.count("pushes_unreachable", report.unreachable)
