"""One SQLite file through aiosqlite: WAL, foreign keys, and a schema version migrated on open.

A single connection is shared by every task, so every write goes through `transaction()`, which
holds a lock: otherwise one task's commit would commit another task's half-done work.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiosqlite

# Append only: a database created by any earlier version is brought up to date by the rest.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        key TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', lang TEXT, created_at TEXT NOT NULL);
    CREATE TABLE chats (
        key TEXT PRIMARY KEY, platform TEXT NOT NULL, is_group INTEGER NOT NULL DEFAULT 0,
        lang TEXT, topic TEXT, plan TEXT, plan_started TEXT,
        subscribed INTEGER NOT NULL DEFAULT 0, push_time TEXT, timezone TEXT,
        next_push_utc TEXT, paused INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
    CREATE TABLE asks (
        id INTEGER PRIMARY KEY, chat_key TEXT NOT NULL REFERENCES chats(key),
        question_id TEXT NOT NULL, asked_at TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX asks_by_chat ON asks (chat_key, id);
    CREATE TABLE answers (
        id INTEGER PRIMARY KEY, ask_id INTEGER NOT NULL REFERENCES asks(id),
        user_key TEXT NOT NULL REFERENCES users(key), chat_key TEXT NOT NULL,
        question_id TEXT NOT NULL, text TEXT NOT NULL, answered_at TEXT NOT NULL,
        rating INTEGER, rated_at TEXT, card TEXT, UNIQUE (ask_id, user_key));
    CREATE INDEX answers_by_user ON answers (user_key, answered_at);
    CREATE TABLE cards (
        user_key TEXT NOT NULL REFERENCES users(key), question_id TEXT NOT NULL,
        card TEXT NOT NULL, due_utc TEXT NOT NULL, stability REAL NOT NULL,
        last_rating INTEGER NOT NULL, reviews INTEGER NOT NULL,
        PRIMARY KEY (user_key, question_id));
    CREATE INDEX cards_by_due ON cards (user_key, due_utc);
    """,
    """
    CREATE INDEX chats_by_next_push ON chats (next_push_utc) WHERE subscribed = 1 AND paused = 0;
    CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, seen_at TEXT NOT NULL);
    """,
    """
    ALTER TABLE chats ADD COLUMN user_key TEXT;  -- the person of a private chat, for pushes
    ALTER TABLE chats ADD COLUMN weekdays TEXT;  -- ISO weekday digits to push on ("12345"); NULL: every day
    CREATE TABLE deliveries (
        chat_key TEXT NOT NULL REFERENCES chats(key),
        kind TEXT NOT NULL,          -- "push" (the daily question) or "digest" (the weekly summary)
        period TEXT NOT NULL,        -- the chat's local date "2026-03-02", or ISO week "2026-W10"
        status TEXT NOT NULL,        -- claimed, sent, skipped, unreachable, failed
        claimed_by TEXT, claimed_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        payload TEXT,                -- the reply as JSON, written before the first send attempt
        sent_at TEXT, message_id TEXT, note TEXT,
        PRIMARY KEY (chat_key, kind, period));
    CREATE INDEX deliveries_in_flight ON deliveries (claimed_at) WHERE status = 'claimed';
    """,
    """
    ALTER TABLE answers ADD COLUMN due_utc TEXT;    -- when the rating schedules the question again
    ALTER TABLE answers ADD COLUMN stability REAL;  -- FSRS stability (days) after the rating
    -- cards mirror each user's latest rated answer per question, so rating is one statement.
    CREATE TRIGGER answers_rated AFTER UPDATE OF rating ON answers
    WHEN OLD.rating IS NULL AND NEW.rating IS NOT NULL BEGIN
        INSERT INTO cards (user_key, question_id, card, due_utc, stability, last_rating, reviews)
        VALUES (NEW.user_key, NEW.question_id, NEW.card, NEW.due_utc, NEW.stability, NEW.rating, 1)
        ON CONFLICT (user_key, question_id) DO UPDATE SET card = excluded.card, due_utc = excluded.due_utc,
            stability = excluded.stability, last_rating = excluded.last_rating, reviews = reviews + 1;
    END;
    """,
    """
    ALTER TABLE chats ADD COLUMN nudge INTEGER NOT NULL DEFAULT 1;  -- say how many more reviews are due
    """,
    """
    ALTER TABLE chats ADD COLUMN thread TEXT;          -- the forum topic a group's daily question goes to
    ALTER TABLE answers ADD COLUMN covered TEXT;       -- JSON list of the key point indexes the answer covered
    ALTER TABLE answers ADD COLUMN suggested INTEGER;  -- the rating the grader suggested
    ALTER TABLE answers ADD COLUMN grader TEXT;        -- "local" or "llm": whose verdict `covered` is
    ALTER TABLE answers ADD COLUMN feedback TEXT;      -- the LLM grader's one or two sentences
    CREATE TABLE grader_usage (
        user_key TEXT NOT NULL, day TEXT NOT NULL, calls INTEGER NOT NULL,
        PRIMARY KEY (user_key, day));
    CREATE INDEX seen_events_by_time ON seen_events (seen_at);
    """,
    """
    CREATE TABLE heartbeats (       -- one row per bot process: read by `quizbot health` and GET /healthz
        worker TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, version TEXT NOT NULL,
        started_at TEXT NOT NULL, beat_at TEXT NOT NULL, push_tick_at TEXT,
        adapters TEXT NOT NULL,     -- JSON {"telegram": "up"}
        stopped_at TEXT);           -- set by a clean shutdown
    CREATE INDEX deliveries_by_time ON deliveries (claimed_at);  -- pruning the ledger
    """,
    """
    CREATE TABLE mocks (            -- mock interviews: n questions in a row, one summary at the end
        id INTEGER PRIMARY KEY, chat_key TEXT NOT NULL, user_key TEXT NOT NULL, topic TEXT,
        total INTEGER NOT NULL, started_at TEXT NOT NULL, finished_at TEXT);
    ALTER TABLE chats ADD COLUMN mock_id INTEGER;  -- the mock interview under way in the chat
    ALTER TABLE asks ADD COLUMN mock_id INTEGER;   -- the mock interview an ask belongs to
    CREATE TABLE links (            -- an identity on another platform → the learner it studies as
        user_key TEXT PRIMARY KEY, learner_key TEXT NOT NULL, linked_at TEXT NOT NULL);
    CREATE TABLE link_codes (code TEXT PRIMARY KEY, user_key TEXT NOT NULL, expires_at TEXT NOT NULL);
    CREATE TABLE link_failures (user_key TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX link_failures_by_user ON link_failures (user_key, at);
    """,
    """
    -- The weekly digest reads only what is due, like the push: NULL until the digest tick works it out.
    ALTER TABLE chats ADD COLUMN next_digest_utc TEXT;
    CREATE INDEX chats_by_next_digest ON chats (next_digest_utc) WHERE subscribed = 1 AND paused = 0;
    -- A chat that (re)subscribes, resumes or moves to another time zone gets its digest time anew.
    CREATE TRIGGER chats_digest_anew AFTER UPDATE OF subscribed, paused, timezone ON chats
    WHEN NEW.next_digest_utc IS NOT NULL AND (OLD.subscribed IS NOT NEW.subscribed OR OLD.paused IS NOT NEW.paused
                                              OR OLD.timezone IS NOT NEW.timezone) BEGIN
        UPDATE chats SET next_digest_utc = NULL WHERE key = NEW.key;
    END;
    CREATE TABLE pacing (           -- per platform: the send budget every bot process shares (bot/pacing.py)
        key TEXT PRIMARY KEY, next_at REAL NOT NULL);  -- unix time up to which sends are reserved
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


_CHAT_COLUMNS = ("key", "platform", "is_group", "lang", "topic", "plan", "plan_started", "subscribed", "push_time",
                 "timezone", "next_push_utc", "paused", "created_at", "user_key", "weekdays", "nudge", "thread", "mock_id")
_ASK_COLUMNS = ("a.id AS ask_id, a.chat_key AS ask_chat, a.question_id AS ask_question, a.closed AS ask_closed, "
                "a.mock_id AS ask_mock, "
                "ans.id AS answer_id, ans.rating AS answer_rating, ans.text AS answer_text, cd.card AS answer_card")
_ANSWER_JOINS = ("LEFT JOIN answers ans ON ans.ask_id = a.id AND ans.user_key = :user "
                 "LEFT JOIN cards cd ON cd.user_key = :user AND cd.question_id = a.question_id")


@dataclass
class Context:
    """What the engine knows when an event arrives (see Storage.context)."""

    user: dict
    chat: dict
    ask: dict | None      # the chat's newest question, open or not
    answer: dict | None   # the sender's answer to it
    card: str | None      # the sender's FSRS card for its question
    new_chat: bool = False  # the chat was first seen with this event


def _attempt_of(row, user_key: str) -> tuple[dict | None, dict | None, str | None]:
    if row["ask_id"] is None:
        return None, None, None
    ask = {"id": row["ask_id"], "chat_key": row["ask_chat"], "question_id": row["ask_question"],
           "closed": row["ask_closed"], "mock_id": row["ask_mock"]}
    answer = None if row["answer_id"] is None else {
        "id": row["answer_id"], "ask_id": row["ask_id"], "user_key": user_key, "question_id": row["ask_question"],
        "rating": row["answer_rating"], "text": row["answer_text"]}
    return ask, answer, row["answer_card"]


class StorageUnavailable(Exception):
    """The database cannot be written (read-only file, locked by another program, disk full)."""


class NewerSchema(StorageUnavailable):
    """The database was written by a newer version of quizbot."""


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _unavailable(error: sqlite3.Error) -> StorageUnavailable:
    return StorageUnavailable(str(error))


class Storage:
    def __init__(self, db: aiosqlite.Connection):
        self._db = db
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, upto_version: int = SCHEMA_VERSION) -> "Storage":
        if not str(path).strip():  # SQLite would quietly use a temporary database, lost at exit
            raise StorageUnavailable("[storage] path is empty: name the database file, e.g. quizbot.db")
        folder = Path(path).parent
        if str(path) != ":memory:" and not folder.is_dir():  # say so plainly (and spare aiosqlite a failed start)
            raise StorageUnavailable(f"{path}: the folder {folder} does not exist")
        try:
            # Autocommit: a single statement commits by itself in one thread hop; several go inside
            # an explicit BEGIN IMMEDIATE (see transaction()), which takes the write lock up front and
            # so waits for another process instead of failing with "database is locked" when that
            # process commits between this one's first read and first write.
            db = await aiosqlite.connect(path, timeout=5, isolation_level=None)
        except sqlite3.Error as e:
            raise StorageUnavailable(f"{path}: {e}") from e
        db.row_factory = aiosqlite.Row
        store = cls(db)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await store._migrate(upto_version)
        except NewerSchema as e:
            await db.close()
            raise NewerSchema(f"{path}: {e}") from None
        except sqlite3.Error as e:
            await db.close()
            raise StorageUnavailable(f"{path}: {e}") from e
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self, upto_version: int) -> None:
        version = (await self.one("PRAGMA user_version"))[0]
        if version > SCHEMA_VERSION:  # written by a newer quizbot: writing into it could corrupt it
            raise NewerSchema(f"the database has schema version {version}, newer than this quizbot's "
                              f"{SCHEMA_VERSION}: upgrade quizbot, or restore a backup made for this version")
        for number in range(version, upto_version):
            async with self._write_lock:
                await self._db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; "
                                             f"PRAGMA user_version = {number + 1}; COMMIT;")

    async def version(self) -> int:
        return (await self.one("PRAGMA user_version"))[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Several writes that stand or fall together."""
        async with self._write_lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from e
            except BaseException:  # cancelled while BEGIN ran on aiosqlite's thread: it may still begin
                await asyncio.shield(self._rollback(always=True))
                raise
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except sqlite3.OperationalError as e:
                await self._rollback()
                raise _unavailable(e) from e
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self, always: bool = False) -> None:
        """Roll back the open transaction. `always`: queue it even if none is open yet (aiosqlite
        runs statements in order, so it follows a BEGIN still on its way)."""
        if always or self._db.in_transaction:
            try:
                await self._db.execute("ROLLBACK")
            except sqlite3.OperationalError:  # no transaction was open after all
                pass

    async def one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        rows = await self.all(sql, *params)
        return rows[0] if rows else None

    async def all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        """Parameters by position, or one dict of named ones."""
        if len(params) == 1 and isinstance(params[0], dict):
            params = params[0]
        try:  # one thread hop: execute, fetch and close together
            return list(await self._db.execute_fetchall(sql, params))
        except sqlite3.OperationalError as e:
            raise _unavailable(e) from e

    async def one_written(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        """One statement that writes and returns a row (… RETURNING), committed on its own."""
        async with self._write_lock:
            try:
                rows = list(await self._db.execute_fetchall(sql, params))
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from e
            return rows[0] if rows else None

    async def write(self, sql: str, *params: Any) -> int:
        """Run one statement, committed on its own (autocommit); returns the new row id."""
        async with self._write_lock:
            try:
                cursor = await self._db.execute(sql, params)
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from e
            return cursor.lastrowid

    # --- people and chats -------------------------------------------------------------

    async def user(self, key: str, name: str, now: datetime) -> aiosqlite.Row:
        row = await self.one("SELECT * FROM users WHERE key = ?", key)
        if row is None or (name and row["name"] != name):
            await self.write(
                "INSERT INTO users (key, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET name = excluded.name", key, name, utc_text(now))
            row = await self.one("SELECT * FROM users WHERE key = ?", key)
        return row

    async def chat(self, key: str, platform: str, is_group: bool, now: datetime) -> aiosqlite.Row:
        row = await self.one("SELECT * FROM chats WHERE key = ?", key)
        if row is None:
            await self.write("INSERT OR IGNORE INTO chats (key, platform, is_group, created_at) VALUES (?, ?, ?, ?)",
                             key, platform, int(is_group), utc_text(now))
            row = await self.one("SELECT * FROM chats WHERE key = ?", key)
        return row

    async def context(self, user_key: str, name: str, chat_key: str, platform: str, is_group: bool,
                      now: datetime) -> "Context":
        """Everything an event needs in one query: the learner the sender studies as (their own key,
        or the one /link joined it to), the chat, the chat's newest question and the learner's
        answer and FSRS card for it. Learner and chat are created on first contact."""
        row = await self.one(
            "SELECT me.key AS learner, u.key AS user_found, u.name AS user_name, u.lang AS user_lang, "
            f"{_ASK_COLUMNS}, c.* FROM "
            "(SELECT COALESCE((SELECT learner_key FROM links WHERE user_key = :user), :user) AS key) me "
            "LEFT JOIN users u ON u.key = me.key LEFT JOIN chats c ON c.key = :chat "
            "LEFT JOIN asks a ON a.id = (SELECT MAX(id) FROM asks WHERE chat_key = :chat) "
            f"{_ANSWER_JOINS.replace(':user', 'me.key')}", {"user": user_key, "chat": chat_key})
        learner = row["learner"]
        if row["user_found"] is None or (name and row["user_name"] != name):
            user = dict(await self.user(learner, name, now))
        else:
            user = {"key": learner, "name": row["user_name"], "lang": row["user_lang"]}
        if row["key"] is None:
            chat = dict(await self.chat(chat_key, platform, is_group, now))
        else:
            chat = {k: row[k] for k in row.keys() if k in _CHAT_COLUMNS}
        return Context(user, chat, *_attempt_of(row, learner), new_chat=row["key"] is None)

    async def move_chat(self, old_key: str, new_key: str) -> None:
        """A chat got a new id (a Telegram group upgraded to a supergroup): everything it had moves
        with it; its settings win over a row the new id may already have."""
        async with self.transaction() as db:
            await db.execute("PRAGMA defer_foreign_keys = ON")  # children follow the key before the commit
            if (await (await db.execute("SELECT 1 FROM chats WHERE key = ?", (old_key,))).fetchone()) is None:
                return
            await db.execute("DELETE FROM chats WHERE key = ?", (new_key,))
            await db.execute("UPDATE chats SET key = ? WHERE key = ?", (new_key, old_key))
            for table in ("asks", "answers"):
                await db.execute(f"UPDATE {table} SET chat_key = ? WHERE chat_key = ?", (new_key, old_key))
            await db.execute("UPDATE OR IGNORE deliveries SET chat_key = ? WHERE chat_key = ?", (new_key, old_key))
            await db.execute("DELETE FROM deliveries WHERE chat_key = ?", (old_key,))  # both had that day's push

    async def merge_learners(self, keep: str, absorb: str, identity: str, now: datetime) -> int:
        """Join learner `absorb` into `keep` (and let `identity` study as `keep` from now on): every
        answer is kept; where both have a card for a question, the latest rating's card wins and
        their review counts add up. Returns how many answers moved."""
        async with self.transaction() as db:
            moved = (await db.execute("UPDATE answers SET user_key = ? WHERE user_key = ?", (keep, absorb))).rowcount
            both = [r[0] for r in await db.execute_fetchall(
                "SELECT question_id FROM cards WHERE user_key = ? AND question_id IN "
                "(SELECT question_id FROM cards WHERE user_key = ?)", (absorb, keep))]
            for question_id in both:
                latest = await (await db.execute(
                    "SELECT card, due_utc, stability, rating FROM answers WHERE user_key = ? AND question_id = ? "
                    "AND rating IS NOT NULL ORDER BY rated_at DESC, id DESC LIMIT 1", (keep, question_id))).fetchone()
                await db.execute(
                    "UPDATE cards SET card = ?, due_utc = ?, stability = ?, last_rating = ?, reviews = reviews + "
                    "(SELECT reviews FROM cards WHERE user_key = ? AND question_id = ?) WHERE user_key = ? AND question_id = ?",
                    (*latest, absorb, question_id, keep, question_id))
                await db.execute("DELETE FROM cards WHERE user_key = ? AND question_id = ?", (absorb, question_id))
            await db.execute("UPDATE cards SET user_key = ? WHERE user_key = ?", (keep, absorb))
            for table in ("chats", "mocks"):
                await db.execute(f"UPDATE {table} SET user_key = ? WHERE user_key = ?", (keep, absorb))
            await db.execute("UPDATE links SET learner_key = ? WHERE learner_key = ?", (keep, absorb))
            await db.execute("INSERT OR REPLACE INTO links (user_key, learner_key, linked_at) VALUES (?, ?, ?)",
                             (identity, keep, utc_text(now)))
            return moved

    async def update(self, table: str, key: str, **fields: Any) -> None:
        assert table in ("users", "chats") and all(f.isidentifier() for f in fields)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.write(f"UPDATE {table} SET {assignments} WHERE key = ?", *fields.values(), key)

    # --- questions asked and answered -------------------------------------------------

    # A chat's newest ask is its open question unless skipped (closed), or in a private chat rated
    # (see Engine._open_question): asking anew replaces it, so opening a question is a single insert.

    async def asked_ids(self, chat_key: str) -> set[str]:
        return {r[0] for r in await self.all("SELECT DISTINCT question_id FROM asks WHERE chat_key = ?", chat_key)}

    async def ask(self, chat_key: str, question_id: str, now: datetime, mock_id: int | None = None) -> int:
        return await self.write("INSERT INTO asks (chat_key, question_id, asked_at, mock_id) VALUES (?, ?, ?, ?)",
                                chat_key, question_id, utc_text(now), mock_id)

    async def close_ask(self, ask_id: int) -> None:
        await self.write("UPDATE asks SET closed = 1 WHERE id = ?", ask_id)

    async def attempt(self, user_key: str, ask_id: int) -> tuple[dict | None, dict | None, str | None]:
        """(the ask `ask_id`, this user's answer to it, the user's card for its question)."""
        row = await self.one(f"SELECT {_ASK_COLUMNS} FROM asks a {_ANSWER_JOINS} WHERE a.id = :ask",
                             {"user": user_key, "ask": ask_id})
        return _attempt_of(row, user_key) if row else (None, None, None)

    async def answers_to(self, ask_id: int) -> list[aiosqlite.Row]:
        return await self.all("SELECT a.*, u.name FROM answers a JOIN users u ON u.key = a.user_key "
                              "WHERE a.ask_id = ? ORDER BY a.id", ask_id)

    async def add_answer(self, ask: aiosqlite.Row, user_key: str, text: str, now: datetime, verdict=None) -> int:
        """Keep an answer with the grader's verdict on it (None: nothing was graded)."""
        graded = verdict is not None and verdict.graded
        return await self.write(
            "INSERT INTO answers (ask_id, user_key, chat_key, question_id, text, answered_at, covered, suggested, grader) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ask["id"], user_key, ask["chat_key"], ask["question_id"], text,
            utc_text(now), json.dumps(list(verdict.covered)) if graded else None,
            verdict.suggested if verdict is not None else None, verdict.grader if graded else None)

    async def set_verdict(self, answer_id: int, verdict) -> None:
        """A better verdict (the LLM's) replaces the local one; the learner's rating is untouched."""
        await self.write("UPDATE answers SET covered = ?, suggested = ?, grader = ?, feedback = ? WHERE id = ?",
                         json.dumps(list(verdict.covered)), verdict.suggested, verdict.grader,
                         verdict.feedback or None, answer_id)

    async def spend_grading(self, user_key: str, day: str) -> int:
        """Count one LLM grading for the learner today; returns today's count so far."""
        row = await self.one_written(
            "INSERT INTO grader_usage (user_key, day, calls) VALUES (?, ?, 1) "
            "ON CONFLICT (user_key, day) DO UPDATE SET calls = calls + 1 RETURNING calls", user_key, day)
        return row[0]

    async def rate(self, answer: dict, rating: int, card_json: str, due: datetime, stability: float,
                   now: datetime) -> bool:
        """Store a self-rating and the FSRS card it produced (the answers_rated trigger updates
        `cards` in the same statement); False if the answer was rated already."""
        async with self._write_lock:
            try:
                cursor = await self._db.execute(
                    "UPDATE answers SET rating = ?, rated_at = ?, card = ?, due_utc = ?, stability = ? "
                    "WHERE id = ? AND rating IS NULL",
                    (rating, utc_text(now), card_json, utc_text(due), stability, answer["id"]))
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from e
            return cursor.rowcount == 1

    async def cards(self, user_key: str) -> list[aiosqlite.Row]:
        return await self.all("SELECT * FROM cards WHERE user_key = ? ORDER BY due_utc", user_key)

    async def answered_ids(self, user_key: str) -> set[str]:
        rows = await self.all("SELECT DISTINCT question_id FROM answers WHERE user_key = ?", user_key)
        return {r[0] for r in rows}

    async def studied(self, user_key: str) -> list[aiosqlite.Row]:
        """Every question the user answered, with its review due time and stability once rated
        (NULL while not), most due first — one query for the picker."""
        return await self.all(
            "SELECT question_id, due_utc, stability FROM cards WHERE user_key = :user UNION ALL "
            "SELECT DISTINCT question_id, NULL, NULL FROM answers WHERE user_key = :user AND question_id NOT IN "
            "(SELECT question_id FROM cards WHERE user_key = :user) ORDER BY 2", {"user": user_key})

    async def history(self, user_key: str, limit: int) -> list[aiosqlite.Row]:
        return await self.all("SELECT * FROM answers WHERE user_key = ? ORDER BY id DESC LIMIT ?", user_key, limit)

    async def answer_times(self, user_key: str) -> list[str]:
        rows = await self.all("SELECT answered_at FROM answers WHERE user_key = ? ORDER BY answered_at", user_key)
        return [r[0] for r in rows]

    async def weekly_board(self, chat_key: str, since_utc: str) -> list[aiosqlite.Row]:
        return await self.all(
            "SELECT a.user_key, u.name, COUNT(*) AS answers, AVG(a.rating) AS average "
            "FROM answers a JOIN users u ON u.key = a.user_key WHERE a.chat_key = ? AND a.answered_at >= ? "
            "GROUP BY a.user_key ORDER BY answers DESC, average DESC, a.user_key LIMIT 20", chat_key, since_utc)

    async def first_sighting(self, event_id: str, now: datetime) -> bool:
        """Record a platform event id; False if it was seen before (a redelivery)."""
        async with self.transaction() as db:
            cursor = await db.execute("INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                                      (event_id, utc_text(now)))
            return cursor.rowcount == 1
