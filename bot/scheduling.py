"""APScheduler wiring: one tick a minute for the daily push, one every 15 minutes for the digest;
with an Upkeep, also the heartbeat (every 30 s), pruning and the hourly counter line.

No job per user: the tick asks the database which chats are due (an indexed next_push_utc), so
100k subscribers cost one query, and catch-up after downtime is the application's own logic,
where it can be tested, not APScheduler's misfire handling. The heartbeat is a job of its own so
a long push tick never makes a working bot look dead.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .delivery import Delivery
from .health import BEAT_SECONDS
from .upkeep import Upkeep


log = logging.getLogger(__name__)
_running: set[asyncio.Task] = set()  # job runs under way, so a shutdown can let them finish


def _tracked(job):
    """A job whose runs a shutdown waits for (and, past its patience, stops quietly)."""
    @functools.wraps(job)
    async def run():
        task = asyncio.current_task()
        _running.add(task)
        try:
            return await job()
        except asyncio.CancelledError:
            log.info("the %s job was stopped by the shutdown", getattr(job, "__name__", "scheduled"))
        finally:
            _running.discard(task)
    return run


async def stop_scheduler(scheduler: AsyncIOScheduler, timeout: float) -> None:
    """No new runs; runs under way get `timeout` seconds to finish, then are stopped (before the
    scheduler shuts down: its executor would cancel them and log each as an error)."""
    scheduler.pause()
    if _running:
        await asyncio.wait(set(_running), timeout=timeout)
        for task in set(_running):
            task.cancel()
        await asyncio.gather(*_running, return_exceptions=True)
    await asyncio.sleep(0)  # the executor's callbacks see the runs finish
    scheduler.shutdown(wait=False)


def start_scheduler(delivery: Delivery, upkeep: Upkeep | None = None) -> AsyncIOScheduler:
    """Start the jobs; the caller runs the first push tick itself at start-up (the catch-up after
    downtime), so it can wait for it to finish when stopping (stop_scheduler)."""
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    now = delivery.clock()
    push, digest = (upkeep.push_tick, upkeep.digest_tick) if upkeep else (delivery.tick, delivery.digest_tick)
    push, digest = _tracked(push), _tracked(digest)
    scheduler.add_job(push, "interval", minutes=1, id="push", next_run_time=now + timedelta(minutes=1),
                      coalesce=True, max_instances=1, misfire_grace_time=60)
    scheduler.add_job(digest, "interval", minutes=15, id="digest", next_run_time=now,
                      coalesce=True, max_instances=1, misfire_grace_time=15 * 60)
    if upkeep is not None:
        scheduler.add_job(_tracked(upkeep.beat), "interval", seconds=BEAT_SECONDS, id="heartbeat",
                          next_run_time=now + timedelta(seconds=BEAT_SECONDS), coalesce=True, max_instances=1,
                          misfire_grace_time=max(1, int(BEAT_SECONDS)))
        scheduler.add_job(_tracked(upkeep.prune), "interval", hours=1, id="prune", next_run_time=now + timedelta(minutes=5),
                          coalesce=True, max_instances=1, misfire_grace_time=3600)
        scheduler.add_job(_tracked(upkeep.hourly_counters), "interval", hours=1, id="counters",
                          next_run_time=now + timedelta(hours=1), coalesce=True, max_instances=1,
                          misfire_grace_time=3600)
    scheduler.start()
    return scheduler
