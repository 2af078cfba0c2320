"""Rows that serve no one any more, deleted hourly, so activity alone never grows the database.

- seen event ids past the redelivery window (Feishu redelivers up to 6 h later; kept 48 h);
- finished delivery-ledger rows older than `[storage] keep_days` (a claim still in flight stays:
  it is the promise that a push will go out; a finished past period is never claimed again,
  because claiming is gated by the chat's next push time, which has moved on);
- LLM-grader usage counters of past days, and heartbeats of processes gone for a week;
- /link codes past their expiry, and wrong-code attempts past the hour they are counted over.

Answers, questions asked and FSRS cards are the learners' history and are never pruned. Deletes
run in batches, each its own short transaction, so replies never wait long for the write lock.
SQLite reuses the freed pages, so the file stops growing once the windows are full.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .storage import Storage, utc_text

log = logging.getLogger(__name__)
SEEN_EVENTS_HOURS = 48
GRADER_USAGE_DAYS = 3
HEARTBEAT_DAYS = 7
LINK_FAILURE_HOURS = 1   # bot/account.py counts wrong codes over the last hour
BATCH = 2000


async def prune(store: Storage, now: datetime, keep_days: int) -> dict[str, int]:
    """Delete what has aged out; returns the number of rows deleted per table."""
    jobs = {
        "seen_events": ("seen_at < ?", utc_text(now - timedelta(hours=SEEN_EVENTS_HOURS))),
        "deliveries": ("claimed_at < ? AND status != 'claimed'",
                       utc_text(now - timedelta(days=keep_days))),
        "grader_usage": ("day < ?", (now - timedelta(days=GRADER_USAGE_DAYS)).date().isoformat()),
        "heartbeats": ("beat_at < ?", utc_text(now - timedelta(days=HEARTBEAT_DAYS))),
        "link_codes": ("expires_at < ?", utc_text(now)),                       # /link codes past their 10 minutes
        "link_failures": ("at < ?", utc_text(now - timedelta(hours=LINK_FAILURE_HOURS))),  # the guessing window
    }
    deleted = {}
    for table, (condition, cutoff) in jobs.items():
        deleted[table] = 0
        while True:
            async with store.transaction() as db:
                cursor = await db.execute(f"DELETE FROM {table} WHERE rowid IN "
                                          f"(SELECT rowid FROM {table} WHERE {condition} LIMIT {BATCH})", (cutoff,))
                count = cursor.rowcount
            deleted[table] += count
            if count < BATCH:
                break
    if any(deleted.values()):
        log.info("pruned %s", " ".join(f"{table}={n}" for table, n in deleted.items()))
    return deleted
