"""Is the bot alive? A heartbeat row per bot process in the database, read by `quizbot health`
(no need for the bot's own process) and by the optional GET /healthz; and the counters behind
the INFO lines that show an operator the bot at work.

A bot is alive when one of its processes recorded a heartbeat within ALIVE_SECONDS and did not
stop since. The heartbeat has its own scheduler job, so a long push (5,000 chats at 25/s take
over three minutes) never makes a working bot look dead.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from .storage import Storage, from_utc_text, utc_text
from .timeutil import utc_now
from .version import package_version

ALIVE_SECONDS = 180   # a heartbeat older than this: the bot is stopped or stuck
BEAT_SECONDS = 30     # how often a running bot records one
COUNTERS = ("updates", "replies", "pushes_sent", "pushes_failed", "pushes_unreachable", "grader_calls")


class Metrics:
    """Process-wide counters: `metrics.count("updates")`. Each reader ("tick", "hour") takes the
    counts since its own previous take, so the minute line and the hourly line never disturb each other."""

    def __init__(self) -> None:
        self._totals: Counter[str] = Counter()
        self._marks: dict[str, Counter[str]] = {}

    def count(self, name: str, n: int = 1) -> None:
        self._totals[name] += n

    def total(self, name: str) -> int:
        return self._totals[name]

    def take(self, window: str) -> dict[str, int]:
        mark = self._marks.get(window, Counter())
        names = list(COUNTERS) + sorted(set(self._totals) - set(COUNTERS))
        self._marks[window] = self._totals.copy()
        return {name: self._totals[name] - mark[name] for name in names}


def counter_line(counts: dict[str, int]) -> str:
    return " ".join(f"{name}={value}" for name, value in counts.items())


metrics = Metrics()


def counted(handler: Callable[[Any], Awaitable[list]]) -> Callable[[Any], Awaitable[list]]:
    """The engine's handler as an adapter gets it, counting each update and the replies it returns."""
    async def handle(incoming: Any) -> list:
        metrics.count("updates")
        replies = await handler(incoming)
        metrics.count("replies", len(replies))
        return replies
    return handle


# --- the heartbeat, written by the running bot ---------------------------------------------

class Heartbeat:
    """This process's row in `heartbeats`: when it last beat and last finished a push tick, and
    whether each adapter is up (an adapter may expose `alive = False` when its connection is lost)."""

    def __init__(self, store: Storage, worker: str, adapters: Iterable[object],
                 clock: Callable[[], datetime] = utc_now):
        self.store, self.worker, self.adapters, self.clock = store, worker, list(adapters), clock
        self.started_at = utc_text(clock())

    def _adapters(self) -> str:
        return json.dumps({a.platform: "up" if getattr(a, "alive", True) else "down" for a in self.adapters})

    async def beat(self) -> None:
        await self.store.write(
            "INSERT INTO heartbeats (worker, host, pid, version, started_at, beat_at, adapters) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET beat_at = excluded.beat_at, "
            "adapters = excluded.adapters, stopped_at = NULL", self.worker, socket.gethostname(), os.getpid(),
            package_version(), self.started_at, utc_text(self.clock()), self._adapters())

    async def push_ticked(self) -> None:
        await self.store.write("UPDATE heartbeats SET push_tick_at = ? WHERE worker = ?",
                               utc_text(self.clock()), self.worker)

    async def stopped(self) -> None:
        await self.store.write("UPDATE heartbeats SET stopped_at = ? WHERE worker = ?",
                               utc_text(self.clock()), self.worker)


async def live_workers(store: Storage, now: datetime, max_age: int = ALIVE_SECONDS) -> list[str]:
    """The bot processes on this database that beat within `max_age` and did not stop (e.g. to
    share a platform's rate budget between them)."""
    rows = await store.all("SELECT worker FROM heartbeats WHERE stopped_at IS NULL AND beat_at >= ? ORDER BY worker",
                           utc_text(now - timedelta(seconds=max_age)))
    return [r[0] for r in rows]


# --- reading it: `quizbot health` and GET /healthz ------------------------------------------

def read_health(path: str | Path, now: datetime | None = None, max_age: int = ALIVE_SECONDS) -> tuple[bool, dict]:
    """(alive, the JSON report). Opens the database read-only: it never creates or migrates it."""
    now = now or datetime.now(timezone.utc)
    where = Path(path).expanduser().resolve()
    report: dict = {"status": "down", "database": str(where), "checked_at": utc_text(now)}

    def down(reason: str) -> tuple[bool, dict]:
        report["reason"] = reason
        return False, report

    if not where.is_file():
        return down(f"no database at {where}")
    try:
        db = sqlite3.connect(f"{where.as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as e:
        return down(f"cannot open {where}: {e}")
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM heartbeats ORDER BY beat_at DESC").fetchall()
        pending, failed = db.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'claimed') + (SELECT COUNT(*) FROM chats "
            "WHERE subscribed = 1 AND paused = 0 AND next_push_utc <= :now), (SELECT COUNT(*) FROM deliveries "
            "WHERE status = 'failed' AND claimed_at >= :day_ago)",
            {"now": utc_text(now), "day_ago": utc_text(now - timedelta(days=1))}).fetchone()
    except sqlite3.Error as e:
        if "no such table" in str(e):
            return down(f"no heartbeat table in {where}: no quizbot 0.2.0 or newer has run on this database")
        return down(f"cannot read {where}: {e}")
    finally:
        db.close()
    report.update(pending_pushes=pending, failed_pushes_24h=failed, max_age_seconds=max_age)
    if not rows:
        return down(f"no heartbeat in {where}: the bot has not run on this database")

    def age(row) -> int:
        return int((now - from_utc_text(row["beat_at"])).total_seconds())

    alive = [r for r in rows if r["stopped_at"] is None and age(r) <= max_age]
    newest = alive[0] if alive else rows[0]
    adapters = json.loads(newest["adapters"])
    report.update(last_tick=newest["beat_at"], seconds_since_tick=age(newest), last_push_tick=newest["push_tick_at"],
                  adapters=adapters, version=newest["version"], host=newest["host"], pid=newest["pid"],
                  started_at=newest["started_at"], workers=len(alive))
    if not alive:
        if newest["stopped_at"] is not None:
            return down(f"the bot stopped at {newest['stopped_at']}")
        return down(f"last heartbeat {age(newest)} s ago (limit {max_age} s): the bot is not running, or is stuck")
    broken = sorted(platform for platform, state in adapters.items() if state != "up")
    if broken:
        return down(f"adapter down: {', '.join(broken)}")
    report["status"] = "ok"
    return True, report


def health_command(db_path: str | Path) -> int:
    """`quizbot health`: the report as one JSON line; exit 0 when alive, 1 otherwise."""
    alive, report = read_health(db_path)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if alive else 1


class HealthServer:
    """GET /healthz → 200 or 503 with the same JSON as `quizbot health` (only with `[health] port`)."""

    def __init__(self, listen: str, port: int, db_path: str | Path, max_age: int = ALIVE_SECONDS):
        self.listen, self.port, self.db_path, self.max_age = listen, port, db_path, max_age
        self._runner = None

    async def start(self) -> None:
        from .config import ConfigError
        try:
            from aiohttp import web
        except ImportError:
            raise ConfigError("[health] port is set but aiohttp is missing: install it with  "
                              "pip install 'quizbot[health]'") from None

        async def healthz(request: web.Request) -> web.Response:
            alive, report = await asyncio.to_thread(read_health, self.db_path, None, self.max_age)
            return web.json_response(report, status=200 if alive else 503,
                                     dumps=lambda data: json.dumps(data, ensure_ascii=False))

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.listen, self.port).start()
        except OSError as e:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(f"[health] cannot listen on {self.listen}:{self.port}: {e.strerror or e}") from None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
