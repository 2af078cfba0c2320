"""Hourly pruning: rows that serve no one go, the database stops growing with traffic alone, and
nothing a learner or a pending push needs is lost."""
from __future__ import annotations

from datetime import timedelta

from bot.delivery import Delivery, DeliveryPolicy
from bot.health import Heartbeat
from bot.pruning import prune
from bot.storage import utc_text

from .conftest import person
from .test_push import RecordingPlatform, at, subscribe

POLICY = DeliveryPolicy(backoff_seconds=0, per_second={"test": 10_000})


async def test_old_rows_go_and_what_is_still_needed_stays(engine, store, clock):
    ada = person(engine, "1")
    await ada.say("/topic rag")
    await ada.say("先检索，再生成")
    await store.first_sighting("test:old", clock.now - timedelta(hours=49))
    await store.first_sighting("test:recent", clock.now - timedelta(hours=30))
    for period, status, age in (("2025-01-01", "sent", 120), ("2025-01-02", "failed", 100),
                                ("2025-01-03", "claimed", 100), ("2026-02-20", "sent", 10)):
        await store.write("INSERT INTO deliveries (chat_key, kind, period, status, claimed_at) VALUES (?, 'push', ?, ?, ?)",
                          "test:1", period, status, utc_text(clock.now - timedelta(days=age)))
    await store.write("INSERT INTO grader_usage VALUES ('test:1', '2026-02-20', 5), ('test:1', '2026-03-01', 2)")
    gone = Heartbeat(store, "gone", [], lambda: clock.now - timedelta(days=8))
    await gone.beat()
    await Heartbeat(store, "live", [], clock).beat()
    await store.write("INSERT INTO link_codes VALUES ('OLDCODE1', 'test:1', ?), ('NEWCODE1', 'test:1', ?)",
                      utc_text(clock.now - timedelta(minutes=1)), utc_text(clock.now + timedelta(minutes=9)))
    await store.write("INSERT INTO link_failures VALUES ('test:2', ?), ('test:2', ?)",
                      utc_text(clock.now - timedelta(hours=2)), utc_text(clock.now - timedelta(minutes=5)))

    deleted = await prune(store, clock.now, keep_days=90)

    assert deleted == {"seen_events": 1, "deliveries": 2, "grader_usage": 1, "heartbeats": 1, "link_codes": 1,
                       "link_failures": 1}
    assert [r[0] for r in await store.all("SELECT code FROM link_codes")] == ["NEWCODE1"]  # still usable
    assert not await store.first_sighting("test:recent", clock.now)   # a redelivery is still caught
    periods = [r[0] for r in await store.all("SELECT period FROM deliveries ORDER BY period")]
    assert periods == ["2025-01-03", "2026-02-20"]                      # an old claim is a promise: kept
    assert [r[0] for r in await store.all("SELECT day FROM grader_usage")] == ["2026-03-01"]
    assert [r[0] for r in await store.all("SELECT worker FROM heartbeats")] == ["live"]
    assert (await store.one("SELECT COUNT(*) FROM answers"))[0] == 1     # learners' history is never pruned


async def test_a_pruned_ledger_never_sends_a_push_twice(engine, store, clock):
    platform = RecordingPlatform()
    delivery = Delivery(store, engine, {"test": platform}, POLICY, clock=clock)
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    for uid in "123":
        await subscribe(engine, uid, "09:00 Asia/Shanghai")
    for day in range(20):
        at(clock, f"2026-03-{2 + day:02d} 09:01", "Asia/Shanghai")
        await delivery.tick()
        for hour in range(0, 24, 6):                                    # prune through the day
            await prune(store, clock.now + timedelta(hours=hour), keep_days=2)
            await delivery.tick()
    assert platform.count() == {"test:1": 20, "test:2": 20, "test:3": 20}
    assert (await store.one("SELECT COUNT(*) FROM deliveries"))[0] <= 3 * 3


async def test_the_file_stops_growing_once_the_windows_are_full(engine, store, clock):
    platform = RecordingPlatform()
    delivery = Delivery(store, engine, {"test": platform}, POLICY, clock=clock)
    at(clock, "2026-03-02 08:00", "Asia/Shanghai")
    for uid in range(20):
        await subscribe(engine, str(uid), "09:00 Asia/Shanghai")
    pages = []
    for day in range(24):
        at(clock, f"2026-03-{2 + day:02d} 09:01", "Asia/Shanghai")
        await delivery.tick()
        for n in range(300):                                           # a day's platform events
            await store.first_sighting(f"test:{day}-{n}-{'x' * 40}", clock.now)
        await prune(store, clock.now, keep_days=3)
        pages.append((await store.one("PRAGMA page_count"))[0])
    assert len(platform.sent) == 20 * 24
    assert pages[-1] <= pages[7] * 1.1, pages                           # flat after the first few days
