"""Is the bot alive? As an operator, a container platform and a load balancer ask it: `quizbot
health` (from any process, reading the database), GET /healthz, and the counter lines in the log."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.delivery import Delivery, DeliveryPolicy
from bot.health import Heartbeat, HealthServer, counted, live_workers, metrics, read_health
from bot.storage import Storage, utc_text
from bot.timeutil import utc_now
from bot.upkeep import Upkeep

from .conftest import person, write_bank
from .test_push import RecordingPlatform, at, subscribe

POLICY = DeliveryPolicy(backoff_seconds=0, per_second={"test": 10_000})


class Adapter:
    def __init__(self, platform: str, alive: bool = True):
        self.platform, self.alive = platform, alive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def test_alive_while_heartbeats_arrive_down_once_they_stop(store, tmp_path, clock):
    heartbeat = Heartbeat(store, "w1", [Adapter("telegram")], clock)
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert not alive and "the bot has not run on this database" in report["reason"]

    await heartbeat.beat()
    clock.advance(seconds=60)
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert alive and report["status"] == "ok" and report["seconds_since_tick"] == 60
    assert report["adapters"] == {"telegram": "up"} and report["workers"] == 1 and report["version"]

    clock.advance(seconds=150)  # 210 s without a beat: stopped or stuck
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert not alive and report["reason"].startswith("last heartbeat 210 s ago (limit 180 s)")

    await heartbeat.beat()
    await heartbeat.stopped()
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert not alive and report["reason"].startswith("the bot stopped at")


async def test_a_lost_adapter_makes_the_bot_unhealthy(store, tmp_path, clock):
    telegram = Adapter("telegram")
    heartbeat = Heartbeat(store, "w1", [telegram, Adapter("feishu")], clock)
    telegram.alive = False
    await heartbeat.beat()
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert not alive and report["reason"] == "adapter down: telegram"
    assert report["adapters"] == {"telegram": "down", "feishu": "up"}


async def test_one_live_process_of_two_is_enough_and_pending_pushes_are_counted(engine, store, tmp_path, clock):
    old, new = Heartbeat(store, "old", [], clock), Heartbeat(store, "new", [], clock)
    await old.beat()
    await old.stopped()
    await new.beat()
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-03 09:05", "Asia/Shanghai")           # due, not sent yet
    await new.beat()
    alive, report = read_health(tmp_path / "quizbot.db", clock.now)
    assert alive and report["workers"] == 1 and report["pending_pushes"] == 1
    assert await live_workers(store, clock.now) == ["new"]


async def test_health_reads_without_creating_or_migrating(tmp_path):
    missing = tmp_path / "nowhere.db"
    alive, report = read_health(missing)
    assert not alive and report["reason"] == f"no database at {missing}" and not missing.exists()
    older = await Storage.open(tmp_path / "old.db", upto_version=6)   # a database from quizbot 0.1
    await older.close()
    alive, report = read_health(tmp_path / "old.db")
    assert not alive and "no quizbot 0.2.0 or newer has run on this database" in report["reason"]
    assert sqlite3.connect(tmp_path / "old.db").execute("PRAGMA user_version").fetchone()[0] == 6


async def test_quizbot_health_exits_0_with_json_when_alive_and_1_otherwise(tmp_path):
    store = await Storage.open(tmp_path / "quizbot.db")
    await Heartbeat(store, "w1", [Adapter("telegram")]).beat()   # the real clock: beat just now
    await store.close()
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "health"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "ok"
    (tmp_path / "config.toml").write_text('[storage]\npath = "other.db"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "health"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["status"] == "down" and "no database at" in report["reason"]


async def test_healthz_answers_200_or_503_with_the_same_json(store, tmp_path, clock):
    port = free_port()
    server = HealthServer("127.0.0.1", port, tmp_path / "quizbot.db")
    await server.start()
    try:
        status, report = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and "has not run" in report["reason"]
        await Heartbeat(store, "w1", [Adapter("feishu")]).beat()
        status, report = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and report["status"] == "ok" and report["adapters"] == {"feishu": "up"}
        assert set(report) == set(read_health(tmp_path / "quizbot.db")[1])
    finally:
        await server.stop()


def test_the_running_bot_serves_healthz_and_says_when_it_stopped(tmp_path):
    """`quizbot run` with [health] port: /healthz is 200 while the console session lasts; after
    it ends, `quizbot health` reports the clean stop."""
    port = free_port()
    bank = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{bank}"\n[health]\nport = {port}\n',
                                          encoding="utf-8")
    bot = subprocess.Popen([sys.executable, "-m", "quizbot.cli", "run"], cwd=tmp_path, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 30, None
        while time.monotonic() < deadline and status != 200:
            try:
                status, report = get(f"http://127.0.0.1:{port}/healthz")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert status == 200 and report["adapters"] == {"console": "up"} and report["last_push_tick"]
        out, err = bot.communicate("/help\n", timeout=30)         # end of input ends the session
        assert bot.returncode == 0 and "/subscribe" in out and err == ""
    finally:
        bot.kill()
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "health"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and json.loads(done.stdout)["reason"].startswith("the bot stopped at")


def test_a_health_port_in_use_stops_the_bot_with_a_clear_message(tmp_path):
    bank = write_bank(tmp_path / "content")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{bank}"\n[health]\nport = {port}\n',
                                              encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input="/help\n", capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and f"[health] cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "/subscribe" not in done.stdout


async def test_updates_replies_and_pushes_are_counted_in_the_log(engine, store, clock, caplog):
    caplog.set_level(logging.INFO, logger="quizbot.counters")
    platform = RecordingPlatform()
    delivery = Delivery(store, engine, {"test": platform}, POLICY, clock=clock)
    upkeep = Upkeep(delivery, [platform])
    metrics.take("tick"), metrics.take("hour")                   # start both windows from here

    handle = counted(engine.handle)
    ada = person(engine, "1")
    for text in ("/start", "/subscribe 09:00 Asia/Shanghai"):
        await handle(_incoming(ada, text))
    at(clock, "2026-03-03 09:00", "Asia/Shanghai")
    report = await upkeep.push_tick()
    assert report.sent == 1 and len(platform.sent) == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "quizbot.counters"]
    assert line.startswith("counters since the last push tick: updates=2 replies=2 pushes_sent=1 pushes_failed=0")
    assert "grader_calls=0" in line

    caplog.clear()
    await upkeep.push_tick()                                      # nothing happened: no line
    assert not [r for r in caplog.records if r.name == "quizbot.counters"]
    await upkeep.hourly_counters()                                # the hourly line comes regardless
    [line] = [r.getMessage() for r in caplog.records if r.name == "quizbot.counters"]
    assert "updates=2 replies=2 pushes_sent=1" in line and line.startswith("counters for the last hour")

    row = await store.one("SELECT push_tick_at FROM heartbeats WHERE worker = ?", delivery.worker)
    assert row is None or row[0]                                  # push ticks note their time once beating
    await upkeep.beat()
    await upkeep.push_tick()
    row = await store.one("SELECT push_tick_at FROM heartbeats WHERE worker = ?", delivery.worker)
    assert row[0] == clock.now.isoformat(timespec="seconds")


def _incoming(someone, text: str):
    from bot.models import Incoming
    name, _, args = text[1:].partition(" ")
    return Incoming(someone.chat, someone.user, "command", name, args)


class Stuck:
    """A platform that answers only when released: a push to it lasts as long as the test wants."""

    platform = "test"

    def __init__(self):
        self.released = asyncio.Event()

    async def send(self, chat, reply):
        await self.released.wait()
        return "1"


async def test_a_push_that_never_ends_leaves_the_heartbeat_beating(engine, store, tmp_path, monkeypatch):
    from bot.scheduling import start_scheduler
    monkeypatch.setattr("bot.scheduling.BEAT_SECONDS", 0.3)
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    due = utc_now() - timedelta(minutes=1)                       # due a minute ago, by the real clock
    await store.write("UPDATE chats SET next_push_utc = ?, push_time = ?", utc_text(due),
                      due.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M"))
    stuck = Stuck()
    delivery = Delivery(store, engine, {"test": stuck}, POLICY)
    upkeep = Upkeep(delivery, [stuck])
    await upkeep.beat()
    first = (await store.one("SELECT beat_at FROM heartbeats"))[0]
    push = asyncio.create_task(upkeep.push_tick())              # the start-up tick, as `quizbot run` does
    scheduler = start_scheduler(delivery, upkeep)
    try:
        await asyncio.sleep(1.6)
        assert not push.done()                                   # still pushing …
        assert (await store.one("SELECT beat_at FROM heartbeats"))[0] > first   # … and still beating
        assert read_health(tmp_path / "quizbot.db")[0]
    finally:
        scheduler.shutdown(wait=False)
        stuck.released.set()
    assert (await push).sent == 1


@pytest.fixture(autouse=True)
def _fresh_counters():
    yield
    metrics.take("tick"), metrics.take("hour")
