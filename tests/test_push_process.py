"""The daily push across real processes: `quizbot run` subprocesses push 2,000 chats through the
real Telegram adapter to the stand-in Bot API. One is killed with SIGKILL mid-push and restarted;
two run at once on the same database for a push that lasts many leases, sharing the token's pace.
Every chat must get its question, with repeats no more than the sends that were in flight."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.push import subscribers

from .conftest import write_bank
from .fakes.telegram_api import FakeBotAPI

CHATS = 2000
IN_FLIGHT = 16
TIMEOUT = 120  # seconds: a bound on every wait, never an expectation


@pytest.fixture
async def api():
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


async def subscribed_database(tmp_path: Path) -> Path:
    """A database with CHATS private Telegram chats whose push time was a minute ago."""
    path = tmp_path / "q.db"
    await subscribers(path, CHATS)
    return path


def write_config(tmp_path: Path, api: FakeBotAPI, db: Path, per_second: float = 1000, lease: float = 2) -> Path:
    folder = write_bank(tmp_path / "content")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[storage]
path = "{db}"
[bot]
content_dir = "{folder}"
[push]
telegram_per_second = {per_second}
in_flight = {IN_FLIGHT}
lease_seconds = {lease}
[telegram]
token = "{api.token}"
api_base_url = "{api.base_url}"
messages_per_second = 0
""", encoding="utf-8")
    return config


async def start_bot(config: Path, log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as stderr:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "quizbot.cli", "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            cwd=config.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def pushes(api: FakeBotAPI) -> Counter:
    return Counter(call.chat_id for call in api.calls
                   if call.method == "sendMessage" and call.status == 200 and 0 < (call.chat_id or 0) <= CHATS)


async def until(predicate, what: str) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_kill_9_mid_push_then_restart_loses_nothing(tmp_path, api, capsys):
    db = await subscribed_database(tmp_path)
    config = write_config(tmp_path, api, db)
    first = await start_bot(config, tmp_path / "bot.log")
    await until(lambda: len(pushes(api)) >= CHATS // 4, "the first quarter of the push")
    first.kill()  # SIGKILL: no clean-up of any kind
    await first.wait()
    delivered_before_crash = len(pushes(api))
    assert delivered_before_crash < CHATS, "the push finished before the kill: the test proved nothing"
    await asyncio.sleep(3)  # a restart takes a moment: by then the dead process's claims are past their lease

    second = await start_bot(config, tmp_path / "bot.log")
    try:
        await until(lambda: len(pushes(api)) == CHATS, "every chat to have its question")
        await asyncio.sleep(3)  # longer than the lease: anything still unconfirmed would be sent again now
    finally:
        await stop(second)
    counts = pushes(api)
    repeats = sum(counts.values()) - CHATS
    with capsys.disabled():
        print(f"\n[kill -9 test] killed after {delivered_before_crash} of {CHATS} pushes; "
              f"after restart every chat had its question; repeated sends: {repeats} (in flight: {IN_FLIGHT})")
    assert set(counts) == set(range(1, CHATS + 1))
    assert repeats <= IN_FLIGHT
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall() == [("sent", CHATS)]


async def test_two_bot_processes_share_a_push_of_many_leases_and_the_tokens_pace(tmp_path):
    """150 msg/s for the token, a 1 s lease, 2,000 chats: ~13 leases long. Each process alone
    would keep under the stand-in's 200/s, both unaware of each other would go over it."""
    api = await FakeBotAPI(sends_per_second=200).start()
    db = await subscribed_database(tmp_path)
    config = write_config(tmp_path, api, db, per_second=150, lease=1)
    bots = [await start_bot(config, tmp_path / f"bot{i}.log") for i in range(2)]
    try:
        await until(lambda: len(pushes(api)) == CHATS, "every chat to have its question")
        await asyncio.sleep(2)  # past the lease: a wrongly duplicated claim would show up now
    finally:
        for bot in bots:
            await stop(bot)
        await api.stop()
    counts = pushes(api)
    assert set(counts) == set(range(1, CHATS + 1)) and max(counts.values()) == 1
    assert api.too_many == 0  # the stand-in refused nothing: together they kept to the token's pace
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall() == [("sent", CHATS)]
        assert con.execute("SELECT COUNT(DISTINCT claimed_by) FROM deliveries").fetchone() == (2,)  # both took part


async def test_a_push_through_random_5xx_and_429_bursts_reaches_everyone(tmp_path, api):
    """In-process this time: the real engine, Telegram adapter and delivery against a stand-in
    that fails 10 % of sends with 502 and starts with a burst of 429s."""
    from adapters.telegram import TelegramAdapter
    from bot.config import Settings
    from quizbot.app import build_delivery, build_engine

    count = 300
    path = tmp_path / "q.db"
    await subscribers(path, count)
    settings = Settings(storage={"path": str(path)}, bot={"content_dir": write_bank(tmp_path / "content")},
                        telegram={"token": api.token, "api_base_url": api.base_url, "messages_per_second": 0},
                        push={"telegram_per_second": 1000, "lease_seconds": 0.5})
    api.error_rate = 0.10
    api.fail("sendMessage", 429, times=25, retry_after=1)
    engine = await build_engine(settings)
    adapter = TelegramAdapter(settings.telegram, backoff=0.01)
    await adapter.start(engine.handle)
    try:
        delivery = build_delivery(settings, engine, [adapter])
        async with asyncio.timeout(TIMEOUT):
            while len(pushes(api)) < count:
                await delivery.tick()
                await asyncio.sleep(0.6)  # past the lease: what failed every try is taken over again
    finally:
        await adapter.stop()
        await engine.store.close()
    failures = Counter(call.status for call in api.calls if call.method == "sendMessage" and call.status != 200)
    assert failures[502] > 0 and failures[429] >= 25
    assert pushes(api) == Counter({chat: 1 for chat in range(1, count + 1)})  # everyone, once


async def test_paid_broadcast_sends_pushes_as_paid_broadcasts_and_replies_as_usual(tmp_path, api):
    from adapters.telegram import TelegramAdapter
    from bot.config import Settings
    from bot.models import Chat, Reply
    from quizbot.app import build_delivery, build_engine

    path = tmp_path / "q.db"
    await subscribers(path, 20)
    settings = Settings(storage={"path": str(path)}, bot={"content_dir": write_bank(tmp_path / "content")},
                        telegram={"token": api.token, "api_base_url": api.base_url, "paid_broadcast": True})
    engine = await build_engine(settings)
    adapter = TelegramAdapter(settings.telegram)
    await adapter.start(engine.handle)
    try:
        delivery = build_delivery(settings, engine, [adapter])
        assert (await delivery.tick()).sent == 20
        await adapter.send(Chat("telegram", "424242"), Reply("a reply to somebody"))
    finally:
        await adapter.stop()
        await engine.store.close()
    sent = [call for call in api.calls if call.method == "sendMessage"]
    assert [call.params.get("allow_paid_broadcast") for call in sent if call.chat_id <= 20] == ["true"] * 20
    assert [call.params.get("allow_paid_broadcast") for call in sent if call.chat_id == 424242] == [None]
