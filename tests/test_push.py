"""The daily push, with time under control: on time in every zone, once, caught up or skipped
after downtime, retried through failures, paused when a chat is gone, never doubled."""
from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.content import load_bank
from bot.delivery import Delivery, DeliveryPolicy
from bot.engine import Engine
from bot.models import Chat, ChatUnreachable, Reply
from bot.storage import Storage

from .conftest import Clock, person


class RecordingPlatform:
    """A stand-in for an adapter's send: records deliveries, and fails on demand."""

    platform = "test"

    def __init__(self, fail_rate: float = 0.0, blocked: set[str] = frozenset(), seed: int = 7):
        self.sent: list[tuple[str, Reply]] = []
        self.fail_rate, self.blocked, self.random = fail_rate, blocked, random.Random(seed)
        self.failures = 0

    async def send(self, chat: Chat, reply: Reply) -> str:
        if chat.id in self.blocked:
            raise ChatUnreachable("Forbidden: bot was blocked by the user")
        if self.random.random() < self.fail_rate:
            self.failures += 1
            raise TimeoutError("simulated timeout / 5xx")
        self.sent.append((chat.key, reply))
        return str(len(self.sent))

    def count(self) -> Counter:
        return Counter(key for key, _ in self.sent)


POLICY = DeliveryPolicy(lease=timedelta(minutes=2), backoff_seconds=0, per_second={"test": 10_000})


@pytest.fixture
def platform() -> RecordingPlatform:
    return RecordingPlatform()


@pytest.fixture
def delivery(engine, store, platform, clock) -> Delivery:
    return Delivery(store, engine, {"test": platform}, POLICY, clock=clock)


async def subscribe(engine, uid: str, args: str) -> None:
    [reply] = await person(engine, uid).say(f"/subscribe {args}")
    assert "已订阅" in reply.text, reply.text


def at(clock: Clock, text: str, tz: str) -> None:
    clock.now = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


async def test_pushes_at_nine_local_time_once_a_day(engine, delivery, platform, clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 08:59", "Asia/Shanghai")
    assert (await delivery.tick()).sent == 0
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    assert (await delivery.tick()).sent == 1
    key, reply = platform.sent[0]
    assert key == "test:1" and "每日一题" in reply.text and "看答案" in [b.label for r in reply.buttons for b in r]
    for minute in range(1, 30):
        clock.advance(minutes=1)
        await delivery.tick()
    assert len(platform.sent) == 1
    at(clock, "2026-03-03 09:00", "Asia/Shanghai")
    await delivery.tick()
    assert len(platform.sent) == 2 and platform.sent[1][1].text != platform.sent[0][1].text


@pytest.mark.parametrize("tz, start, days", [
    ("America/New_York", "2026-03-06 12:00", 4),   # spring forward on Sunday 8 March
    ("America/New_York", "2026-10-30 12:00", 4),   # fall back on Sunday 1 November
    ("Asia/Shanghai", "2026-03-06 12:00", 4),      # no DST
])
async def test_across_dst_switches_each_local_day_gets_one_push_at_nine(engine, delivery, platform, clock, tz, start, days):
    at(clock, start, tz)
    await subscribe(engine, "1", f"09:00 {tz}")
    pushed_at = []
    for _ in range(days * 24 * 4):  # a tick every 15 minutes, four days long
        clock.advance(minutes=15)
        before = len(platform.sent)
        await delivery.tick()
        if len(platform.sent) > before:
            pushed_at.append(clock.now.astimezone(ZoneInfo(tz)))
    assert [p.strftime("%H:%M") for p in pushed_at] == ["09:00"] * days
    assert len({p.date() for p in pushed_at}) == days


async def test_two_hours_of_downtime_are_caught_up(engine, delivery, platform, clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 11:00", "Asia/Shanghai")  # the bot was down from 08:00 to 11:00
    assert (await delivery.tick()).sent == 1


async def test_two_days_of_downtime_skip_and_log_then_resume(engine, delivery, platform, clock, caplog):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-04 20:00", "Asia/Shanghai")  # back two and a half days later, 11 h after today's push time
    with caplog.at_level(logging.WARNING):
        report = await delivery.tick()
    assert report.sent == 0 and report.skipped == 1
    assert "skipping the 2026-03-04 push to test:1" in caplog.text
    at(clock, "2026-03-05 09:00", "Asia/Shanghai")
    assert (await delivery.tick()).sent == 1


async def test_weekday_subscriptions_skip_the_weekend(engine, delivery, platform, clock):
    at(clock, "2026-03-06 08:00", "Asia/Shanghai")  # a Friday
    await subscribe(engine, "1", "09:00 Asia/Shanghai weekdays")
    for _ in range(4 * 24):
        clock.advance(hours=1)
        await delivery.tick()
    assert len(platform.sent) == 2  # Friday and Monday


async def test_failures_and_timeouts_are_retried_until_everyone_has_the_question(engine, store, clock):
    flaky = RecordingPlatform(fail_rate=0.3)
    delivery = Delivery(store, engine, {"test": flaky}, DeliveryPolicy(send_tries=1, backoff_seconds=0,
                                                                        per_second={"test": 10_000}), clock=clock)
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    for uid in range(60):
        await subscribe(engine, str(uid), "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    for _ in range(30):
        await delivery.tick()
        clock.advance(minutes=3)  # past the lease: unconfirmed claims are retried
    assert flaky.failures > 0
    assert flaky.count() == Counter({f"test:{uid}": 1 for uid in range(60)})
    statuses = await store.all("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
    assert [(r["status"], r["n"]) for r in statuses] == [("sent", 60)]


async def test_a_blocked_chat_is_paused_and_not_retried(engine, store, clock):
    platform = RecordingPlatform(blocked={"2"})
    delivery = Delivery(store, engine, {"test": platform}, POLICY, clock=clock)
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    for uid in ("1", "2"):
        await subscribe(engine, uid, "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    report = await delivery.tick()
    assert (report.sent, report.unreachable) == (1, 1)
    assert (await store.one("SELECT paused FROM chats WHERE key = 'test:2'"))["paused"] == 1
    at(clock, "2026-03-03 09:00", "Asia/Shanghai")
    await delivery.tick()
    assert platform.count() == Counter({"test:1": 2})


async def test_two_workers_on_one_database_never_double_send(tmp_path, bank_dir, clock):
    path = tmp_path / "shared.db"
    stores = [await Storage.open(path) for _ in range(2)]
    platform = RecordingPlatform()
    engines = [Engine(s, load_bank(bank_dir), clock=clock) for s in stores]
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    for uid in range(200):
        await subscribe(engines[0], str(uid), "09:00 Asia/Shanghai")
    workers = [Delivery(s, e, {"test": platform}, POLICY, clock=clock, worker=f"w{i}")
               for i, (s, e) in enumerate(zip(stores, engines))]
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    reports = await asyncio.gather(*(w.tick() for w in workers))
    assert platform.count() == Counter({f"test:{uid}": 1 for uid in range(200)})
    assert sum(r.claimed for r in reports) == 200
    for s in stores:
        await s.close()


async def test_a_group_gets_one_question_for_everybody_and_yesterdays_summary(engine, delivery, platform, clock):
    group = Chat("test", "-100", is_group=True)
    admin = person(engine, "1", chat=group, name="Ada", is_admin=True)
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await admin.say("/subscribe 09:00")
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    await delivery.tick()
    [board] = await admin.say("我的答案")
    await admin.press([b.data for r in board.buttons for b in r][2])
    at(clock, "2026-03-03 09:00", "Asia/Shanghai")
    await delivery.tick()
    first, second = platform.sent
    assert first[0] == second[0] == "test:-100"
    assert "1 人作答，平均自评 3.0" in second[1].text and first[1].text.split("\n")[-3] != second[1].text.split("\n")[-3]


async def test_the_weekly_digest_arrives_once_on_sunday_evening(engine, delivery, platform, clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")  # Monday
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    p = person(engine, "1")
    await p.say("/next")
    [reference] = await p.say("答案")
    await p.press([b.data for r in reference.buttons for b in r][0])
    for _ in range(7 * 24 * 4):
        clock.advance(minutes=15)
        await delivery.digest_tick()
    digests = [reply.text for _, reply in platform.sent if "本周小结" in reply.text]
    assert len(digests) == 1 and "本周作答 1 次" in digests[0] and "最需要加强的主题" in digests[0]


async def test_dry_run_lists_who_is_due_without_sending(engine, delivery, platform, clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 09:30", "Asia/Shanghai")
    due = await delivery.due_now()
    assert [d["chat"] for d in due] == ["test:1"] and not platform.sent
    preview = await engine.preview_daily("test:1")
    await delivery.tick()
    assert preview.q in platform.sent[0][1].text


async def test_a_requested_push_is_delivered_by_the_next_tick_even_after_todays(engine, delivery, platform, clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    at(clock, "2026-03-02 09:00", "Asia/Shanghai")
    await delivery.tick()
    assert await delivery.request_push("test:1") and not await delivery.request_push("test:404")
    clock.advance(minutes=1)
    report = await delivery.tick()
    assert report.retried == 1 and len(platform.sent) == 2


async def test_the_daily_question_says_how_many_more_reviews_are_due_unless_turned_off(engine, delivery, platform,
                                                                                         clock):
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    p = person(engine, "1")
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    for _ in range(3):  # three questions rated Again: all due tomorrow
        await p.say("/next")
        [reference] = await p.say("不会")
        await p.press([b.data for r in reference.buttons for b in r][0])
    at(clock, "2026-03-03 09:00", "Asia/Shanghai")
    await delivery.tick()
    assert "另外还有 2 道题到期复习" in platform.sent[-1][1].text
    [off] = await p.say("/nudge off")
    assert "关" in off.text
    at(clock, "2026-03-04 09:00", "Asia/Shanghai")
    await delivery.tick()
    assert "到期复习" not in platform.sent[-1][1].text


# --- at scale, and with several workers --------------------------------------------------

class SlowPlatform(RecordingPlatform):
    """Each send takes a while, as a real platform's do."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    async def send(self, chat: Chat, reply: Reply) -> str:
        await asyncio.sleep(self.seconds)
        return await super().send(chat, reply)


async def many_subscribers(store: Storage, count: int, due: datetime) -> None:
    """`count` private chats whose daily push (at `due`, in UTC) has just come due."""
    at = due.astimezone(timezone.utc)
    async with store.transaction() as db:
        await db.executemany("INSERT INTO users (key, name, created_at) VALUES (?, 'x', ?)",
                             [(f"test:{i}", at.isoformat()) for i in range(count)])
        await db.executemany(
            "INSERT INTO chats (key, platform, subscribed, push_time, timezone, next_push_utc, user_key, created_at) "
            "VALUES (?, 'test', 1, ?, 'UTC', ?, ?, ?)",
            [(f"test:{i}", at.strftime("%H:%M"), at.isoformat(timespec="seconds"), f"test:{i}", at.isoformat())
             for i in range(count)])


async def test_one_tick_sends_a_push_of_any_size(engine, store, clock):
    platform = RecordingPlatform()
    policy = DeliveryPolicy(in_flight=2, backoff_seconds=0, per_second={"test": 10_000})  # claims 64 at a time
    await many_subscribers(store, 500, clock.now)
    report = await Delivery(store, engine, {"test": platform}, policy, clock=clock).tick()
    assert report.sent == 500
    assert platform.count() == Counter({f"test:{i}": 1 for i in range(500)})


async def test_a_push_lasting_several_leases_is_sent_once_while_another_worker_ticks(tmp_path, bank_dir):
    """A 1 s lease and a push of ~3 s: claims are renewed while their owner still means to send
    them, so the other worker takes over none of them (it takes its share of the due chats)."""
    stores = [await Storage.open(tmp_path / "shared.db") for _ in range(2)]
    await many_subscribers(stores[0], 200, datetime.now(timezone.utc) - timedelta(minutes=1))
    platform = SlowPlatform(0.03)
    policy = DeliveryPolicy(lease=timedelta(seconds=1), in_flight=2, backoff_seconds=0, per_second={"test": 10_000})
    first, second = (Delivery(s, Engine(s, load_bank(bank_dir)), {"test": platform}, policy, worker=f"w{i}")
                     for i, s in enumerate(stores))
    pushing = asyncio.create_task(first.tick())
    while not pushing.done():
        await second.tick()
        await asyncio.sleep(0.2)
    await pushing
    assert platform.count() == Counter({f"test:{i}": 1 for i in range(200)})
    statuses = await stores[0].all("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
    assert [(r["status"], r["n"]) for r in statuses] == [("sent", 200)]
    for s in stores:
        await s.close()


async def test_the_weekly_digest_follows_a_move_to_another_time_zone(engine, delivery, platform, clock):
    at(clock, "2026-03-03 08:00", "Asia/Shanghai")  # Tuesday (Monday evening in New York)
    await subscribe(engine, "1", "09:00 Asia/Shanghai")
    await delivery.digest_tick()  # works out Sunday 20:00 in Shanghai
    await subscribe(engine, "1", "09:00 America/New_York")
    digests = []
    for _ in range(7 * 24 * 4):
        clock.advance(minutes=15)
        before = len(platform.sent)
        await delivery.digest_tick()
        if len(platform.sent) > before:
            digests.append(clock.now.astimezone(ZoneInfo("America/New_York")))
    assert [d.strftime("%a %H:%M") for d in digests] == ["Sun 20:00"]


def test_in_flight_follows_the_pace_unless_set():
    from bot.config import Settings
    from bot.delivery import policy_from
    free = Settings(telegram={"token": "1:x"})
    paid = Settings(telegram={"token": "1:x", "paid_broadcast": True})
    fixed = Settings(telegram={"token": "1:x", "paid_broadcast": True}, push={"in_flight": 16})
    assert (policy_from(free).per_second["telegram"], policy_from(free).in_flight) == (25, 8)
    assert (policy_from(paid).per_second["telegram"], policy_from(paid).in_flight) == (950, 190)
    assert policy_from(fixed).in_flight == 16
