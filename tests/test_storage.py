"""The SQLite file: WAL, migrations from older versions, and clear failures."""
from __future__ import annotations

import sqlite3

import pytest

from bot.storage import SCHEMA_VERSION, Storage, StorageUnavailable


async def test_new_database_uses_wal_foreign_keys_and_the_latest_schema(tmp_path):
    store = await Storage.open(tmp_path / "q.db")
    try:
        assert (await store.one("PRAGMA journal_mode"))[0] == "wal"
        assert (await store.one("PRAGMA foreign_keys"))[0] == 1
        assert await store.version() == SCHEMA_VERSION
    finally:
        await store.close()


async def test_a_first_version_database_opens_under_the_latest_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    old = await Storage.open(path, upto_version=1)
    await old.write("INSERT INTO users (key, name, created_at) VALUES ('tg:1', 'Ada', '2026-01-01T00:00:00+00:00')")
    await old.write("INSERT INTO chats (key, platform, created_at) VALUES ('tg:1', 'tg', '2026-01-01T00:00:00+00:00')")
    await old.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1

    store = await Storage.open(path)
    try:
        assert await store.version() == SCHEMA_VERSION
        assert (await store.one("SELECT name FROM users WHERE key = 'tg:1'"))["name"] == "Ada"
        tables = {r[0] for r in await store.all("SELECT name FROM sqlite_master")}
        assert {"seen_events", "chats_by_next_push"} <= tables
    finally:
        await store.close()


async def test_a_locked_database_is_reported_not_hung_on(tmp_path):
    path = tmp_path / "locked.db"
    await (await Storage.open(path, upto_version=1)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageUnavailable, match="locked"):
            await Storage.open(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_missing_folder_is_reported_with_the_path(tmp_path):
    with pytest.raises(StorageUnavailable, match="no-such-folder"):
        await Storage.open(tmp_path / "no-such-folder" / "q.db")


async def test_an_empty_path_is_refused_rather_than_a_database_lost_at_exit(tmp_path):
    with pytest.raises(StorageUnavailable, match=r"\[storage\] path is empty"):
        await Storage.open("")


async def test_a_database_from_a_newer_quizbot_is_refused_untouched(tmp_path):
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
        db.execute("CREATE TABLE kept (x)")
    with pytest.raises(StorageUnavailable) as refused:
        await Storage.open(path)
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 3}" in message and f"this quizbot's {SCHEMA_VERSION}" in message
    with sqlite3.connect(path) as db:  # nothing was written into it
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 3
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("kept",)]


async def test_a_transaction_cancelled_while_it_begins_leaves_the_database_usable(tmp_path):
    import asyncio
    store = await Storage.open(tmp_path / "q.db")
    try:
        async def write_one():
            async with store.transaction() as db:
                await db.execute("INSERT INTO seen_events (event_id, seen_at) VALUES ('x', 'now')")
        for _ in range(20):  # cancel at the moment BEGIN is on its way to SQLite's thread
            task = asyncio.create_task(write_one())
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with store.transaction() as db:  # would fail "cannot start a transaction within a transaction"
            await db.execute("INSERT INTO seen_events (event_id, seen_at) VALUES ('y', 'now')")
        assert (await store.one("SELECT COUNT(*) FROM seen_events WHERE event_id = 'y'"))[0] == 1
    finally:
        await store.close()
