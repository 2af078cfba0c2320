"""The delivery ledger (`deliveries`): one row per chat, kind and period, claimed a window at a
time, kept alive while its owner means to send it, and its outcome recorded in group commits.

Claiming runs in one BEGIN IMMEDIATE transaction: the due chats are read while holding the write
lock, their next push (or digest) time moves on and their ledger rows are inserted in a few set
statements, so no other process can claim the same chats, whatever their number.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Iterable

from .storage import Storage, utc_text
from .timeutil import last_local_time, local_date, next_local_time, parse_hhmm

log = logging.getLogger("bot.delivery")


@dataclass(frozen=True)
class Claim:
    """A ledger row this worker holds, with what sending it needs (so it is not read again)."""

    chat_key: str
    kind: str
    period: str
    is_group: bool
    payload: str | None = None
    attempts: int = 0
    thread: str | None = None  # the forum topic the chat's pushes go to

    @property
    def where(self) -> tuple[str, str, str]:
        return self.chat_key, self.kind, self.period


@dataclass
class TickReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    unreachable: int = 0
    failed: int = 0


_DUE_PUSHES = ("SELECT key, is_group, push_time, timezone, weekdays, thread FROM chats "
               "WHERE subscribed = 1 AND paused = 0 AND next_push_utc <= ? ORDER BY next_push_utc LIMIT ?")
_STALE = "SELECT 1 FROM deliveries WHERE status = 'claimed' AND claimed_at < ? LIMIT 1"
_INSERT_CLAIMS = ("INSERT OR IGNORE INTO deliveries (chat_key, kind, period, status, claimed_by, claimed_at) "
                  "SELECT j.value ->> 0, ?, j.value ->> 1, 'claimed', ?, ? FROM json_each(?) j "
                  "RETURNING chat_key, period")
_TAKE_OVER = ("UPDATE deliveries SET claimed_by = ?, claimed_at = ? WHERE rowid IN (SELECT rowid FROM deliveries "
              "WHERE status = 'claimed' AND claimed_at < ? ORDER BY claimed_at LIMIT ?) RETURNING chat_key, kind, "
              "period, payload, attempts, (SELECT is_group FROM chats WHERE key = chat_key), "
              "(SELECT thread FROM chats WHERE key = chat_key)")
_DIGESTS_UNKNOWN = ("SELECT key, is_group, timezone, thread, 1 AS fresh FROM chats "
                    "WHERE subscribed = 1 AND paused = 0 AND next_digest_utc IS NULL LIMIT ?")
_DIGESTS_DUE = ("SELECT key, is_group, timezone, thread, 0 AS fresh FROM chats "
                "WHERE subscribed = 1 AND paused = 0 AND next_digest_utc <= ? ORDER BY next_digest_utc LIMIT ?")


_FIELDS = ("payload", "status", "sent_at", "message_id", "note", "attempts", "claimed_by", "claimed_at")
# One statement updates any number of rows, each with its own fields (a field absent from a row's
# JSON object keeps its value; present as null, it becomes NULL): one SQLite call and one commit.
_UPDATE_ROWS = ("UPDATE deliveries SET " + ", ".join(
    f"{name} = iif(u.value -> '{name}' IS NULL, {name}, u.value ->> '{name}')" for name in _FIELDS) +
    " FROM json_each(?) u WHERE deliveries.chat_key = u.value ->> 'chat' AND deliveries.kind = u.value ->> 'kind' "
    "AND deliveries.period = u.value ->> 'period'")


class GroupCommit:
    """Ledger updates from concurrent senders, committed together: each caller waits until the
    statement holding its update has committed (so a confirmed send is on disk before the sender
    moves on), while a hundred senders cost one SQLite call and one commit instead of a hundred."""

    def __init__(self, store: Storage):
        self.store = store
        self._rows: list[dict] = []
        self._waiting: list[asyncio.Future] = []
        self._flushing = False

    async def update(self, where: Iterable[str], **fields) -> None:
        chat, kind, period = where
        future = asyncio.get_running_loop().create_future()
        self._rows.append({"chat": chat, "kind": kind, "period": period, **fields})
        self._waiting.append(future)
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                rows, waiting = self._rows, self._waiting
                self._rows, self._waiting = [], []
                try:
                    await self.store.write(_UPDATE_ROWS, json.dumps(rows, ensure_ascii=False))
                except Exception as e:
                    for future in waiting:
                        if not future.done():
                            future.set_exception(e)
                else:
                    for future in waiting:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False


class Ledger:
    def __init__(self, store: Storage, worker: str, catch_up: timedelta, lease: timedelta):
        self.store, self.worker, self.catch_up, self.lease = store, worker, catch_up, lease
        self.commits = GroupCommit(store)

    # --- claiming -------------------------------------------------------------------------

    async def claim_pushes(self, now: datetime, limit: int, report: TickReport, look: bool = True) -> list[Claim]:
        """Up to `limit` claims: first those whose owner let the lease pass (crashed, or gave up
        for now after failing), then daily pushes that are due; none only when nothing is left
        to claim (chats whose push is skipped as too late are passed over until then). `look`:
        read first whether there is anything to claim, so an idle tick takes no write lock."""
        stamp, cutoff = utc_text(now), utc_text(now - self.lease)
        if look and not await self.store.one(_STALE, cutoff) and not await self.store.one(_DUE_PUSHES, stamp, 1):
            return []
        while True:
            claims, more = await self._claim_pushes(now, stamp, cutoff, limit, report)
            if claims or not more:
                return claims

    async def _claim_pushes(self, now: datetime, stamp: str, cutoff: str, limit: int,
                            report: TickReport) -> tuple[list[Claim], bool]:
        async with self.store.transaction() as db:
            taken = [Claim(r[0], r[1], r[2], bool(r[5]), r[3], r[4], r[6])
                     for r in await db.execute_fetchall(_TAKE_OVER, (self.worker, stamp, cutoff, limit))]
            due = await db.execute_fetchall(_DUE_PUSHES, (stamp, limit - len(taken)))
            moves, wanted, skipped = [], [], []
            for chat in due:
                moved, period, late = _next_push(chat, now)
                moves.append((moved, chat["key"]))
                if period is None:
                    continue
                if late > self.catch_up:
                    log.warning("skipping the %s push to %s: %s late, beyond the %s catch-up window",
                                period, chat["key"], _hours(late), _hours(self.catch_up))
                    skipped.append((chat["key"], period, stamp, f"{_hours(late)} late"))
                else:
                    wanted.append((chat["key"], period))
            await db.executemany("UPDATE chats SET next_push_utc = ? WHERE key = ?", moves)
            if skipped:
                await db.executemany("INSERT OR IGNORE INTO deliveries (chat_key, kind, period, status, claimed_at, "
                                     "note) VALUES (?, 'push', ?, 'skipped', ?, ?)", skipped)
            inserted = await self._insert(db, "push", wanted, stamp)
        chats = {chat["key"]: chat for chat in due}
        claimed = [Claim(key, "push", period, bool(chats[key]["is_group"]), thread=chats[key]["thread"])
                   for key, period in inserted]
        report.retried += len(taken)
        report.claimed += len(claimed)
        report.skipped += len(skipped)
        return taken + claimed, len(taken) + len(due) == limit

    async def claim_digests(self, now: datetime, limit: int, at: time, weekday: int, report: TickReport,
                            look: bool = True) -> list[Claim]:
        """Up to `limit` weekly digests that are due; none only when none is left. A chat whose
        next digest time is not known yet (newly subscribed, resumed, or moved to another time
        zone) gets it worked out here."""
        stamp = utc_text(now)
        if look and not await self.store.one(_DIGESTS_UNKNOWN, 1) and not await self.store.one(_DIGESTS_DUE, stamp, 1):
            return []
        while True:
            async with self.store.transaction() as db:
                rows = list(await db.execute_fetchall(_DIGESTS_UNKNOWN, (limit,)))
                rows += await db.execute_fetchall(_DIGESTS_DUE, (stamp, limit - len(rows)))
                moves, wanted = [], []
                for chat in rows:
                    moved, period = _next_digest(chat, now, at, weekday, self.catch_up)
                    moves.append((moved, chat["key"]))
                    if period is not None:
                        wanted.append((chat["key"], period))
                await db.executemany("UPDATE chats SET next_digest_utc = ? WHERE key = ?", moves)
                inserted = await self._insert(db, "digest", wanted, stamp)
            chats = {chat["key"]: chat for chat in rows}
            claimed = [Claim(key, "digest", period, bool(chats[key]["is_group"]), thread=chats[key]["thread"])
                       for key, period in inserted]
            report.claimed += len(claimed)
            if claimed or len(rows) < limit:
                return claimed

    async def _insert(self, db, kind: str, wanted: list[tuple[str, str]], stamp: str) -> list[tuple[str, str]]:
        """Ledger rows for (chat, period); only those not there already come back (once per period)."""
        if not wanted:
            return []
        rows = await db.execute_fetchall(_INSERT_CLAIMS, (kind, self.worker, stamp, json.dumps(wanted)))
        return [(r[0], r[1]) for r in rows]

    async def renew(self, now: datetime) -> None:
        """Keep this worker's claims alive: the lease runs out only for a worker that stopped."""
        await self.store.write("UPDATE deliveries SET claimed_at = ? WHERE status = 'claimed' AND claimed_by = ?",
                               utc_text(now), self.worker)

    async def request(self, chat_key: str, now: datetime, long_ago: datetime) -> None:
        """An extra push: a claim already past its lease, which the next tick of any bot takes over."""
        await self.store.write("INSERT INTO deliveries (chat_key, kind, period, status, claimed_by, claimed_at) "
                               "VALUES (?, 'push', ?, 'claimed', 'cli', ?)", chat_key,
                               "manual-" + utc_text(now), utc_text(long_ago))

    # --- recording (group commits) --------------------------------------------------------

    async def save_payload(self, where: Iterable[str], payload: str) -> None:
        await self.commits.update(where, payload=payload)

    async def finish(self, where: Iterable[str], status: str, now: datetime, message_id: str | None = None,
                     note: str | None = None) -> None:
        await self.commits.update(where, status=status, sent_at=utc_text(now), message_id=message_id, note=note)

    async def give_up(self, where: Iterable[str], attempts: int, final: bool, now: datetime, note: str) -> None:
        """A send that failed every try: it waits a lease for any worker to try again, or, after
        the last attempt, is marked failed."""
        await self.commits.update(where, attempts=attempts, status="failed" if final else "claimed", note=note,
                                  claimed_by=None, claimed_at=utc_text(now))


def _next_push(chat, now: datetime) -> tuple[str | None, str | None, timedelta]:
    """(the chat's next push time, the local date of the push that fell due, how late it is);
    a chat whose schedule cannot be read gets no next push and is logged."""
    at, tz = parse_hhmm(chat["push_time"] or ""), chat["timezone"]
    try:
        latest = last_local_time(at, tz, now, chat["weekdays"])
        following = next_local_time(at, tz, now, chat["weekdays"])
    except Exception as e:  # a hand-edited row: never let it stall every other chat's push
        log.warning("%s has an unreadable schedule (%r at %r): its pushes stop (%s)", chat["key"],
                    chat["push_time"], tz, e)
        return None, None, timedelta(0)
    return utc_text(following), local_date(latest, tz).isoformat(), now - latest


def _next_digest(chat, now: datetime, at: time, weekday: int, catch_up: timedelta) -> tuple[str, str | None]:
    """(the chat's next digest time, the ISO week of a digest due now or None). A chat whose time
    zone cannot be read gets a digest time far away and is logged."""
    tz = chat["timezone"] or "UTC"
    try:
        latest = last_local_time(at, tz, now, str(weekday))
        following = next_local_time(at, tz, now, str(weekday))
    except Exception as e:
        log.warning("%s has an unreadable time zone (%r): no weekly digest (%s)", chat["key"], tz, e)
        return utc_text(now + timedelta(days=365)), None
    if now - latest > catch_up:  # this week's digest time has not come yet, or is long gone
        return utc_text(following), None
    year, week, _ = local_date(latest, tz).isocalendar()
    return utc_text(following), f"{year}-W{week:02d}"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"
