"""Answer + rate round trips through the engine on a real SQLite file, beside the raw aiosqlite
single-row insert rate measured in the same run.

    .venv/bin/python -m bench.engine [--rounds 2000]

Targets: median ≤ 1 ms per round trip, and round trips per second ≥ 0.5 × raw inserts per second.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite

from bot.content import load_bank
from bot.engine import Engine
from bot.models import Chat, Incoming, User
from bot.storage import Storage



async def raw_insert_rate(path: Path, count: int) -> float:
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, user TEXT, text TEXT, at TEXT)")
        start = time.perf_counter()
        for i in range(count):
            await db.execute("INSERT INTO t (user, text, at) VALUES (?, ?, ?)", ("tg:1", "答案" * 20, "2026-01-01"))
            await db.commit()
        return count / (time.perf_counter() - start)


async def round_trips(path: Path, rounds: int) -> list[float]:
    from bench.push import write_bench_bank  # a bank the shipped one's size, written fresh (it may be mid-rewrite)
    store = await Storage.open(path)
    engine = Engine(store, load_bank(write_bench_bank(path.parent / "bank")))
    users = [User("bench", str(i), f"user{i}") for i in range(50)]
    latencies = []
    try:
        for i in range(rounds):
            user = users[i % len(users)]
            chat = Chat("bench", user.id)
            [question] = await engine.handle(Incoming(chat, user, "command", "next"))
            reveal = question.buttons[0][0].data  # "reveal:<ask>" names the open question
            ask_id = reveal.split(":")[1]
            start = time.perf_counter()
            await engine.handle(Incoming(chat, user, "text", "先检索再生成，缓解幻觉和知识过时。" * 3))
            await engine.handle(Incoming(chat, user, "button", f"rate:{ask_id}:{1 + i % 4}"))
            latencies.append(time.perf_counter() - start)
    finally:
        await store.close()
    return latencies


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        raw = await raw_insert_rate(Path(folder) / "raw.db", rounds)
        latencies = await round_trips(Path(folder) / "engine.db", rounds)
    median = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    ops = len(latencies) / sum(latencies)
    print(f"engine answer+rate round trips: {rounds}")
    print(f"  median {median:.3f} ms   p99 {p99:.3f} ms   {ops:,.0f} round trips/s")
    print(f"raw aiosqlite single-row insert+commit: {raw:,.0f} inserts/s")
    print(f"ratio round trips/s ÷ raw inserts/s: {ops / raw:.2f}   (targets: median ≤ 1 ms, ratio ≥ 0.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args().rounds))
