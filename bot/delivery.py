"""The daily push and the weekly digest: exactly once per chat and period, at the platform's pace.

A ledger row (chat, kind, period) is claimed in the same transaction that moves the chat's
next push time on, so two processes never claim the same push. The question is built and saved
in the row before the first send and the row is marked sent as soon as the platform accepts, so
a crash at any moment loses nothing: a claim not confirmed within its lease is taken over and
sent again. Only sends actually in flight at the crash (at most `in_flight`) can repeat, since
no platform offers an idempotency key.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Mapping, Protocol

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from .models import Button, Chat, ChatUnreachable, Reply
from .storage import Storage, from_utc_text, utc_text
from .timeutil import last_local_time, local_date, next_local_time, parse_hhmm, utc_now

log = logging.getLogger(__name__)
CLAIM_CHUNK = 100  # chats claimed per transaction: the write lock is never held for long


class Sender(Protocol):
    async def send(self, chat: Chat, reply: Reply) -> str | None: ...


class Composer(Protocol):
    """What the engine offers delivery: the content of scheduled messages."""

    async def daily_question(self, chat_key: str) -> Reply | None: ...
    async def weekly_digest(self, chat_key: str) -> Reply | None: ...


@dataclass(frozen=True)
class DeliveryPolicy:
    catch_up: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=2)
    in_flight: int = 16
    max_attempts: int = 8
    per_second: Mapping[str, float] = field(default_factory=lambda: {"telegram": 25, "feishu": 40})
    send_tries: int = 3            # tries within one attempt, with back-off, before the claim waits for its lease
    backoff_seconds: float = 0.5
    digest_weekday: int = 7
    digest_time: str = "20:00"
    batch: int = 5000              # chats claimed per tick at most


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


def reply_to_json(reply: Reply) -> str:
    return json.dumps({"text": reply.text, "buttons": [[asdict(b) for b in row] for row in reply.buttons]},
                      ensure_ascii=False)


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    return Reply(data["text"], tuple(tuple(Button(**b) for b in row) for row in data["buttons"]))


def chat_of(key: str, is_group: bool, thread: str | None = None) -> Chat:
    platform, _, chat_id = key.partition(":")
    return Chat(platform, chat_id, is_group, thread)


class Delivery:
    def __init__(self, store: Storage, composer: Composer, senders: Mapping[str, Sender],
                 policy: DeliveryPolicy = DeliveryPolicy(), clock: Callable[[], datetime] = utc_now,
                 worker: str | None = None, on_unreachable: Callable[[str], Awaitable[None]] | None = None):
        self.store, self.composer, self.senders, self.policy, self.clock = store, composer, senders, policy, clock
        self.worker = worker or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._slots = asyncio.Semaphore(policy.in_flight)
        self._limiters = {platform: AsyncLimiter(rate, 1) for platform, rate in policy.per_second.items()}

    # --- the minute tick ------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """Claim every push that is due, take over stale claims, and send them all."""
        report = TickReport()
        now = self.clock()
        due = await self.store.all(
            "SELECT key, is_group, next_push_utc, push_time, timezone, weekdays, thread FROM chats "
            "WHERE subscribed = 1 AND paused = 0 AND next_push_utc <= ? ORDER BY next_push_utc LIMIT ?",
            utc_text(now), self.policy.batch)
        sending = []
        for start in range(0, len(due), CLAIM_CHUNK):  # short transactions; the first sends start at once
            claimed = await self._claim(due[start:start + CLAIM_CHUNK], now, report)
            sending += [asyncio.create_task(self.deliver(claim)) for claim in claimed]
        sending += [asyncio.create_task(self.deliver(claim)) for claim in await self._take_over_stale(now, report)]
        await self._count(sending, report)
        if report.claimed or report.retried or report.skipped:
            log.info("push tick: %s", report)
        return report

    async def _claim(self, due: list, now: datetime, report: TickReport) -> list[Claim]:
        claimed = []
        async with self.store.transaction() as db:
            for chat in due:
                at, tz = parse_hhmm(chat["push_time"]), chat["timezone"]
                latest = last_local_time(at, tz, now, chat["weekdays"])
                following = next_local_time(at, tz, now, chat["weekdays"])
                moved = await db.execute("UPDATE chats SET next_push_utc = ? WHERE key = ? AND next_push_utc = ?",
                                         (utc_text(following), chat["key"], chat["next_push_utc"]))
                if moved.rowcount == 0:
                    continue  # another process got here first
                period = local_date(latest, tz).isoformat()
                late = now - latest
                if late > self.policy.catch_up:
                    report.skipped += 1
                    log.warning("skipping the %s push to %s: %s late, beyond the %s catch-up window",
                                period, chat["key"], _hours(late), _hours(self.policy.catch_up))
                    await db.execute(
                        "INSERT OR IGNORE INTO deliveries (chat_key, kind, period, status, claimed_at, note) "
                        "VALUES (?, 'push', ?, 'skipped', ?, ?)", (chat["key"], period, utc_text(now), f"{_hours(late)} late"))
                    continue
                inserted = await db.execute(
                    "INSERT OR IGNORE INTO deliveries (chat_key, kind, period, status, claimed_by, claimed_at) "
                    "VALUES (?, 'push', ?, 'claimed', ?, ?)", (chat["key"], period, self.worker, utc_text(now)))
                if inserted.rowcount:
                    claimed.append(Claim(chat["key"], "push", period, bool(chat["is_group"]), thread=chat["thread"]))
        report.claimed += len(claimed)
        return claimed

    async def _take_over_stale(self, now: datetime, report: TickReport) -> list[Claim]:
        """Claims whose owner did not confirm within the lease: the owner crashed or gave up for now."""
        cutoff = utc_text(now - self.policy.lease)
        stale = await self.store.all(
            "SELECT d.chat_key, d.kind, d.period, d.payload, d.attempts, c.is_group, c.thread FROM deliveries d "
            "JOIN chats c ON c.key = d.chat_key WHERE d.status = 'claimed' AND d.claimed_at < ?", cutoff)
        taken = []
        async with self.store.transaction() as db:
            for row in stale:
                cursor = await db.execute(
                    "UPDATE deliveries SET claimed_by = ?, claimed_at = ? WHERE chat_key = ? AND kind = ? "
                    "AND period = ? AND status = 'claimed' AND claimed_at < ?",
                    (self.worker, utc_text(now), row["chat_key"], row["kind"], row["period"], cutoff))
                if cursor.rowcount:
                    taken.append(Claim(row["chat_key"], row["kind"], row["period"], bool(row["is_group"]),
                                       row["payload"], row["attempts"], row["thread"]))
        report.retried += len(taken)
        return taken

    @staticmethod
    async def _count(sending: list[asyncio.Task], report: TickReport) -> None:
        for outcome in await asyncio.gather(*sending):
            if outcome in ("sent", "unreachable", "failed"):
                setattr(report, outcome, getattr(report, outcome) + 1)

    # --- one message ----------------------------------------------------------------------

    async def deliver(self, claim: Claim) -> str:
        """Send one claimed ledger row; returns its new status ("claimed" if it waits for a retry)."""
        async with self._slots:
            where = claim.where
            reply = reply_from_json(claim.payload) if claim.payload else await self._compose(claim.kind, claim.chat_key)
            if reply is None:
                await self._finish(where, "failed", note="nothing to send")
                return "failed"
            if not claim.payload:  # saved before the first send, so a retry sends the very same message
                await self.store.write("UPDATE deliveries SET payload = ? WHERE chat_key = ? AND kind = ? AND period = ?",
                                       reply_to_json(reply), *where)
            try:
                message_id = await self._send(chat_of(claim.chat_key, claim.is_group, claim.thread), reply)
            except ChatUnreachable as e:
                log.warning("%s cannot be reached (%s): its pushes are paused", claim.chat_key, e)
                await self.store.update("chats", claim.chat_key, paused=1)
                await self._finish(where, "unreachable", note=str(e)[:200])
                return "unreachable"
            except Exception as e:  # a platform or network failure that outlasted the retries
                attempts = claim.attempts + 1
                status = "failed" if attempts >= self.policy.max_attempts else "claimed"
                log.warning("push to %s failed (attempt %d of %d): %s", claim.chat_key, attempts,
                            self.policy.max_attempts, e)
                await self.store.write("UPDATE deliveries SET attempts = ?, status = ?, note = ? WHERE chat_key = ? "
                                       "AND kind = ? AND period = ?", attempts, status, str(e)[:200], *where)
                return status
            await self._finish(where, "sent", message_id=message_id)
            return "sent"

    async def _compose(self, kind: str, chat_key: str) -> Reply | None:
        return await (self.composer.daily_question(chat_key) if kind == "push" else self.composer.weekly_digest(chat_key))

    async def _send(self, chat: Chat, reply: Reply) -> str | None:
        sender = self.senders.get(chat.platform)
        if sender is None:
            raise RuntimeError(f"no adapter running for {chat.platform}")
        limiter = self._limiters.get(chat.platform)
        async for attempt in AsyncRetrying(stop=stop_after_attempt(self.policy.send_tries), reraise=True,
                                           wait=wait_exponential(multiplier=self.policy.backoff_seconds, max=8),
                                           retry=retry_if_not_exception_type(ChatUnreachable)):
            with attempt:
                if limiter:
                    await limiter.acquire()
                return await sender.send(chat, reply)

    async def _finish(self, where: tuple[str, str, str], status: str, message_id: str | None = None,
                      note: str | None = None) -> None:
        await self.store.write("UPDATE deliveries SET status = ?, sent_at = ?, message_id = ?, note = ? "
                               "WHERE chat_key = ? AND kind = ? AND period = ?",
                               status, utc_text(self.clock()), message_id, note, *where)

    # --- the weekly digest ----------------------------------------------------------------

    async def digest_tick(self) -> TickReport:
        """Each subscribed chat gets one digest a week, once its local digest time has passed."""
        report, now = TickReport(), self.clock()
        at = parse_hhmm(self.policy.digest_time)
        chats = await self.store.all("SELECT key, is_group, timezone, thread FROM chats WHERE subscribed = 1 AND paused = 0")
        claimed = []
        async with self.store.transaction() as db:
            for chat in chats:
                moment = last_local_time(at, chat["timezone"], now, str(self.policy.digest_weekday))
                if now - moment > self.policy.catch_up:
                    continue  # this week's digest time has not come yet, or is long gone
                year, week, _ = local_date(moment, chat["timezone"]).isocalendar()
                period = f"{year}-W{week:02d}"
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO deliveries (chat_key, kind, period, status, claimed_by, claimed_at) "
                    "VALUES (?, 'digest', ?, 'claimed', ?, ?)", (chat["key"], period, self.worker, utc_text(now)))
                if cursor.rowcount:
                    claimed.append(Claim(chat["key"], "digest", period, bool(chat["is_group"]), thread=chat["thread"]))
        report.claimed = len(claimed)
        await self._count([asyncio.create_task(self.deliver(claim)) for claim in claimed], report)
        return report

    # --- by hand --------------------------------------------------------------------------

    async def due_now(self) -> list[dict]:
        """What the next tick would push (for `quizbot push --dry-run`); changes nothing."""
        now = self.clock()
        rows = await self.store.all(
            "SELECT key, next_push_utc, push_time, timezone FROM chats WHERE subscribed = 1 AND paused = 0 "
            "AND next_push_utc <= ? ORDER BY next_push_utc", utc_text(now))
        return [{"chat": r["key"], "due": r["next_push_utc"], "local": f"{r['push_time']} {r['timezone']}",
                 "late": now - from_utc_text(r["next_push_utc"]) > self.policy.catch_up} for r in rows]

    async def request_push(self, chat_key: str) -> bool:
        """Queue an extra push to one chat (`quizbot push --now`): a claim that is already past its
        lease, so the next tick of any running bot takes it over and delivers it."""
        if await self.store.one("SELECT key FROM chats WHERE key = ?", chat_key) is None:
            return False
        await self.store.write("INSERT INTO deliveries (chat_key, kind, period, status, claimed_by, claimed_at) "
                               "VALUES (?, 'push', ?, 'claimed', 'cli', ?)", chat_key,
                               "manual-" + utc_text(self.clock()), utc_text(datetime.fromtimestamp(0, timezone.utc)))
        return True


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"
