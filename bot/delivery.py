"""The daily push and the weekly digest: exactly once per chat and period, at the platform's pace,
however many subscribers and however many bot processes share the database.

A tick claims due chats a window at a time (a few times `in_flight` ahead of the sends, see
bot/ledger.py) and keeps claiming until nothing is due, so a push of any size goes out in one
tick. The question is built and saved in its ledger row before the first send, and the row is
marked sent as soon as the platform accepts; claims held by a running worker are renewed, so only
a worker that stopped has its claims taken over, once their lease has passed. A crash at any
moment loses nothing; only the sends in flight at that moment (at most `in_flight`) can repeat,
since no platform offers an idempotency key. Sends are paced per platform through the database
(bot/pacing.py), so every process together keeps to the platform's limit.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Awaitable, Callable, Mapping, Protocol

from .ledger import Claim, Ledger, TickReport
from .models import Button, Chat, ChatUnreachable, Reply
from .pacing import SharedPace
from .storage import Storage, from_utc_text, utc_text
from .timeutil import parse_hhmm, utc_now

__all__ = ["Claim", "Delivery", "DeliveryPolicy", "TickReport", "in_flight_for", "policy_from"]
log = logging.getLogger(__name__)
CLAIM_AHEAD = 4             # claims held per send slot: the window a worker claims ahead of its sends
MIN_WINDOW = 64             # … but at least this many, so a claim transaction is never for a handful
EXPECTED_LATENCY = 0.1      # seconds a send takes against the real Bot API (30–100 ms measured from outside)
MIN_IN_FLIGHT, MAX_IN_FLIGHT = 8, 256


class Sender(Protocol):
    async def send(self, chat: Chat, reply: Reply) -> str | None: ...
    # optional: `push(chat, reply)` for messages nobody asked for (Telegram's paid broadcast)


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

    @property
    def window(self) -> int:
        return max(CLAIM_AHEAD * self.in_flight, MIN_WINDOW)


def in_flight_for(rate: float) -> int:
    """Sends under way at once to keep `rate` with the Bot API's latency (twice it, for slow answers)."""
    return max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, math.ceil(2 * rate * EXPECTED_LATENCY)))


def policy_from(settings) -> DeliveryPolicy:
    """The policy a `Settings` describes: Telegram's pace is the paid-broadcast one when that is on,
    and `in_flight = 0` follows the fastest pace."""
    push = settings.push
    telegram = push.telegram_paid_per_second if settings.telegram.paid_broadcast else push.telegram_per_second
    rates = {"telegram": telegram, "feishu": push.feishu_per_second, "console": push.console_per_second}
    fastest = max(telegram if settings.telegram.enabled else 0, push.feishu_per_second if settings.feishu.enabled else 0)
    return DeliveryPolicy(
        catch_up=timedelta(hours=settings.schedule.catch_up_hours), lease=timedelta(seconds=push.lease_seconds),
        in_flight=push.in_flight or in_flight_for(fastest), max_attempts=push.max_attempts, per_second=rates,
        digest_weekday=push.digest_weekday, digest_time=push.digest_time)


def reply_to_json(reply: Reply) -> str:
    data = {"text": reply.text, "buttons": [[asdict(b) for b in row] for row in reply.buttons]}
    if reply.lang:
        data["lang"] = reply.lang
    return json.dumps(data, ensure_ascii=False)


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    return Reply(data["text"], tuple(tuple(Button(**b) for b in row) for row in data["buttons"]), lang=data.get("lang"))


def chat_of(key: str, is_group: bool, thread: str | None = None) -> Chat:
    platform, _, chat_id = key.partition(":")
    return Chat(platform, chat_id, is_group, thread)


class Delivery:
    def __init__(self, store: Storage, composer: Composer, senders: Mapping[str, Sender],
                 policy: DeliveryPolicy = DeliveryPolicy(), clock: Callable[[], datetime] = utc_now,
                 worker: str | None = None, on_unreachable: Callable[[str], Awaitable[None]] | None = None):
        self.store, self.composer, self.senders, self.policy, self.clock = store, composer, senders, policy, clock
        self.worker = worker or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.ledger = Ledger(store, self.worker, policy.catch_up, policy.lease)
        self._slots = asyncio.Semaphore(policy.in_flight)
        self._paces = {platform: SharedPace(store, platform, rate) for platform, rate in policy.per_second.items()}
        self._ticking = False
        self._stopping = False

    def stop(self) -> None:
        """At shutdown: claim nothing more; what is claimed already (at most a window, a few seconds
        of sends) still goes out, so a tick ends within the shutdown grace."""
        self._stopping = True

    # --- the minute tick ------------------------------------------------------------------

    async def tick(self) -> TickReport:
        """Send every push that is due, and whatever stopped workers left claimed, until nothing is
        left. A tick started while another runs in this process returns at once: the running one
        picks up whatever fell due meanwhile."""
        report = TickReport()
        if self._ticking:
            return report
        self._ticking = True
        try:
            await self._pump(lambda room, look: self.ledger.claim_pushes(self.clock(), room, report, look), report)
        finally:
            self._ticking = False
        if report.claimed or report.retried or report.skipped:
            log.info("push tick: %s", report)
        return report

    async def digest_tick(self) -> TickReport:
        """Each subscribed chat gets one digest a week, once its local digest time has passed;
        only the chats whose digest is due are read (an indexed next_digest_utc)."""
        report = TickReport()
        at, weekday = parse_hhmm(self.policy.digest_time), self.policy.digest_weekday
        await self._pump(lambda room, look: self.ledger.claim_digests(self.clock(), room, at, weekday, report, look),
                         report)
        if report.claimed:
            log.info("digest tick: %s", report)
        return report

    async def _pump(self, claim: Callable[[int, bool], Awaitable[list[Claim]]], report: TickReport) -> None:
        """Claim a window, send it, claim more as sends finish; stop when a claim finds nothing and
        everything claimed is done."""
        window = self.policy.window
        pending: set[asyncio.Task] = set()
        room_made = asyncio.Event()

        def finished(task: asyncio.Task) -> None:  # a callback, not asyncio.wait: O(1) per message
            pending.discard(task)
            _count(task, report)
            if len(pending) <= window - window // 2:
                room_made.set()

        dry = True  # the last claim found nothing (or none was made yet): look before taking the write lock
        async with self._renewing():
            try:
                while True:
                    if self._stopping:
                        if not pending:
                            return
                    elif not pending or (not dry and window - len(pending) >= window // 2):
                        claims = await claim(window - len(pending), dry)
                        dry = not claims
                        for one in claims:
                            task = asyncio.create_task(self.deliver(one))
                            pending.add(task)
                            task.add_done_callback(finished)
                        if not pending:
                            return
                    room_made.clear()
                    await room_made.wait()
            finally:
                if pending:  # cancelled (shutdown): what was claimed waits for its lease
                    for task in list(pending):
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)

    @asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        """Renew this worker's claims every quarter lease while a pump runs."""
        async def renew() -> None:
            while True:
                await asyncio.sleep(self.policy.lease.total_seconds() / 4)
                try:
                    await self.ledger.renew(self.clock())
                except Exception as e:  # the next renewal, a quarter lease later, may well succeed
                    log.warning("could not renew this worker's push claims: %s", e)
        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()

    # --- one message ----------------------------------------------------------------------

    async def deliver(self, claim: Claim) -> str:
        """Send one claimed ledger row; returns its new status ("claimed" if it waits for a retry)."""
        async with self._slots:
            where = claim.where
            try:
                reply = reply_from_json(claim.payload) if claim.payload else await self._compose(claim)
            except Exception as e:  # a bug or a broken bank must not stall the push: counted as an attempt
                log.exception("could not compose the %s for %s", claim.kind, claim.chat_key)
                return await self._failed(claim, e)
            if reply is None:
                await self.ledger.finish(where, "failed", self.clock(), note="nothing to send")
                return "failed"
            try:
                message_id = await self._send(chat_of(claim.chat_key, claim.is_group, claim.thread), reply)
            except ChatUnreachable as e:
                log.warning("%s cannot be reached (%s): its pushes are paused", claim.chat_key, e)
                await self.store.update("chats", claim.chat_key, paused=1)
                await self.ledger.finish(where, "unreachable", self.clock(), note=str(e)[:200])
                return "unreachable"
            except Exception as e:  # a platform or network failure that outlasted the retries
                return await self._failed(claim, e)
            await self.ledger.finish(where, "sent", self.clock(), message_id=message_id)
            return "sent"

    async def _compose(self, claim: Claim) -> Reply | None:
        composer = self.composer
        reply = await (composer.daily_question(claim.chat_key) if claim.kind == "push"
                       else composer.weekly_digest(claim.chat_key))
        if reply is not None:  # saved before the first send, so a retry sends the very same message
            await self.ledger.save_payload(claim.where, reply_to_json(reply))
        return reply

    async def _failed(self, claim: Claim, error: Exception) -> str:
        attempts = claim.attempts + 1
        final = attempts >= self.policy.max_attempts
        log.warning("%s to %s failed (attempt %d of %d): %s", claim.kind, claim.chat_key, attempts,
                    self.policy.max_attempts, error)
        await self.ledger.give_up(claim.where, attempts, final, self.clock(), str(error)[:200])
        return "failed" if final else "claimed"

    async def _send(self, chat: Chat, reply: Reply) -> str | None:
        sender = self.senders.get(chat.platform)
        if sender is None:
            raise RuntimeError(f"no adapter running for {chat.platform}")
        send = getattr(sender, "push", None) or sender.send
        pace = self._paces.get(chat.platform)
        for attempt in range(1, self.policy.send_tries + 1):  # a loop, not tenacity: this runs for every message
            if pace is not None:
                await pace.acquire()
            try:
                return await send(chat, reply)
            except ChatUnreachable:
                raise
            except Exception:
                if attempt == self.policy.send_tries:
                    raise
                await asyncio.sleep(min(self.policy.backoff_seconds * 2 ** (attempt - 1), 8))

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
        await self.ledger.request(chat_key, self.clock(), datetime.fromtimestamp(0, timezone.utc))
        return True


def _count(task: asyncio.Task, report: TickReport) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:  # the ledger could not be written: the claim waits for its lease
        log.error("a push could not be recorded: %s", error)
        return
    outcome = task.result()
    if outcome in ("sent", "unreachable", "failed"):
        setattr(report, outcome, getattr(report, outcome) + 1)
