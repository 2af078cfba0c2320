"""The daily push at scale: subscribers pushed through the real Delivery and the real Telegram
adapter to the stand-in Bot API, which runs in its own process (tests/fakes/telegram_api.py).

    .venv/bin/python -m bench.push [--subscribers 5000] [--limit 300] [--lifted 20000] [--big 100000]

1. paced: the stand-in refuses sends beyond --limit a second (429): wall time against the floor
   N / limit (target ≤ 1.05 ×), 429s provoked (target 0), and the latency of interactive replies
   served during the push (target p99 ≤ 200 ms).
2. the stand-in's own ceiling, a bare aiohttp client posting the same sendMessage.
3. limit lifted: --lifted subscribers as fast as the bot goes (target ≥ 1,000 msg/s on 2 cores),
   with how busy the stand-in was meanwhile.
4. --big subscribers, in a child process of its own so its peak RSS is the bot's alone (target
   ≤ 150 MB): wall time, the ledger's final state, then what an idle push tick and an idle
   digest tick cost at that size.
CPU ms per message (the bot process, all its threads) is the stable figure on a shared machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "7000001:AAF-test-SECRET-token_x9"  # the stand-in's token
PROBE_EVERY = 0.1                           # seconds between interactive requests: ~10 replies/s during the push
LIFTED_IN_FLIGHT = 32                       # the stand-in answers in ~1 ms: 32 sends under way keep it busy
TICKS = os.sysconf("SC_CLK_TCK")


def start_stand_in(limit: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.telegram_api", str(limit)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    return server, f"http://127.0.0.1:{port}/bot"


def stand_in_stats(base_url: str) -> dict:
    with urlopen(f"{base_url}{TOKEN}/benchStats", data=b"") as response:
        return json.load(response)["result"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def write_bench_bank(folder: Path) -> Path:
    """A bank the size of the shipped one (~600 questions in 20 topics), so composing costs what
    it would; written fresh, since the shipped bank may be mid-rewrite."""
    import random
    from tests.conftest import write_bank
    pick = random.Random(14)
    words = ("注意力", "检索", "微调", "量化", "蒸馏", "对齐", "推理", "解码", "分词", "嵌入", "缓存", "路由", "采样", "评测",
             "奖励", "剪枝", "并行", "显存", "上下文", "位置编码", "归一化", "激活", "损失", "梯度", "调度", "索引", "召回", "重排")
    topics = {f"topic{t:02d}": (f"主题{t}", f"Topic {t}", [
        "".join(pick.sample(words, 4)) + pick.choice(("有什么区别", "怎么实现", "为什么重要", "如何评估", "有哪些坑"))
        for _ in range(30)]) for t in range(20)}
    return write_bank(folder, topics, plans=False)


async def subscribers(path: Path, count: int) -> None:
    """`count` private Telegram chats subscribed at a time that came due a minute ago."""
    from bot.storage import Storage
    await (await Storage.open(path)).close()
    due = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
    at = due.isoformat(timespec="seconds")
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO users (key, name, created_at) VALUES (?, ?, ?)",
                       [(f"telegram:{i}", f"u{i}", at) for i in range(1, count + 1)])
        db.executemany("INSERT INTO chats (key, platform, subscribed, push_time, timezone, next_push_utc, user_key, "
                       "created_at) VALUES (?, 'telegram', 1, ?, 'UTC', ?, ?, ?)",
                       [(f"telegram:{i}", due.strftime("%H:%M"), at, f"telegram:{i}", at) for i in range(1, count + 1)])


async def probe(engine, adapter, stop: asyncio.Event, latencies: list[float]) -> None:
    """People using the bot during the push: a command, its reply delivered, every PROBE_EVERY."""
    from bot.models import Chat, Incoming, User
    user, chat = User("telegram", "999999999", "probe"), Chat("telegram", "999999999")
    while not stop.is_set():
        start = time.perf_counter()
        for reply in await engine.handle(Incoming(chat, user, "command", "topics")):
            await adapter.send(chat, reply)
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(PROBE_EVERY)


def _settings(folder: Path, base_url: str, limit: float, pace: float, in_flight: int = 0):
    from bot.config import Settings
    return Settings(storage={"path": str(folder / "bench.db")}, bot={"content_dir": str(folder / "bank")},
                    telegram={"token": TOKEN, "api_base_url": base_url, "messages_per_second": limit},
                    push={"telegram_per_second": pace, "in_flight": in_flight, "digest_weekday": _not_today()})


def _not_today() -> int:
    """Tomorrow's ISO weekday: no digest falls due during the benchmark."""
    return datetime.now(timezone.utc).isoweekday() % 7 + 1


async def phase(count: int, limit: float, pace: float, in_flight: int = 0, interactive: bool = True,
                big: bool = False) -> dict:
    """One push of `count` subscribers; the stand-in allows `limit` sends/s (0: no limit) and the
    bot is configured as it would be for that server: PTB's overall pace at the limit, and the
    push a little below it, so replies to people share the room without provoking 429s."""
    from adapters.telegram import TelegramAdapter
    from quizbot.app import build_delivery, build_engine
    server, base_url = start_stand_in(limit)
    adapter = engine = None
    result: dict = {}
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            write_bench_bank(folder / "bank")
            await subscribers(folder / "bench.db", count)
            settings = _settings(folder, base_url, limit, pace, in_flight)
            engine = await build_engine(settings)
            adapter = TelegramAdapter(settings.telegram)
            await adapter.start(engine.handle)
            delivery = build_delivery(settings, engine, [adapter])
            stop, latencies = asyncio.Event(), []
            prober = asyncio.create_task(probe(engine, adapter, stop, latencies)) if interactive else None
            served_before = cpu_seconds(server.pid)
            start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            report = await delivery.tick()
            wall, cpu, main = time.perf_counter() - start, time.process_time() - cpu, time.thread_time() - main
            served = cpu_seconds(server.pid) - served_before
            stop.set()
            if prober:
                await prober
            result = {"wall": wall, "cpu": cpu, "main": main, "sent": report.sent, "stand_in_busy": served / wall,
                      "too_many": stand_in_stats(base_url)["too_many"], "in_flight": delivery.policy.in_flight}
            if latencies:
                result.update(probe_p50=statistics.median(latencies) * 1000, probes=len(latencies),
                              probe_p99=statistics.quantiles(latencies, n=100)[98] * 1000)
            if big:
                result.update(await idle_ticks(delivery))
                with sqlite3.connect(folder / "bench.db") as db:
                    result["ledger"] = db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
    finally:
        if adapter is not None:
            await adapter.stop()
        if engine is not None:
            await engine.store.close()
        server.terminate()
        server.wait()
    return result


async def idle_ticks(delivery) -> dict:
    """What the periodic jobs cost once the push is done: the first digest tick works out every
    chat's digest time (once), later ones read only what is due, like every push tick."""
    timings = {}
    for name, job in (("first_digest", delivery.digest_tick), ("digest", delivery.digest_tick),
                      ("push", delivery.tick)):
        start = time.perf_counter()
        await job()
        timings[f"{name}_ms"] = (time.perf_counter() - start) * 1000
    return timings


async def stand_in_ceiling(requests: int = 10_000, width: int = 32) -> dict:
    """The stand-in alone: a bare aiohttp client (a fraction of the bot's CPU per request) posting
    the same sendMessage the bot sends, `width` at a time."""
    import aiohttp
    server, base_url = start_stand_in(0)
    try:
        body = urlencode({"chat_id": "5", "text": "<b>每日一题</b>\n\n第 3 组的第 7 个问题是什么？", "parse_mode": "HTML",
                          "reply_markup": json.dumps({"inline_keyboard": [[{"text": "看答案", "callback_data": "reveal:1"},
                                                                           {"text": "跳过", "callback_data": "skip:1"}]]}),
                          "link_preview_options": json.dumps({"is_disabled": True})}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        left = requests
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=width)) as session:
            async def client() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    async with session.post(f"{base_url}{TOKEN}/sendMessage", data=body, headers=headers) as response:
                        await response.read()
            served_before, start = cpu_seconds(server.pid), time.perf_counter()
            await asyncio.gather(*(client() for _ in range(width)))
            wall = time.perf_counter() - start
            served = cpu_seconds(server.pid) - served_before
    finally:
        server.terminate()
        server.wait()
    return {"rate": requests / wall, "cpu_ms": served / requests * 1000}


def big_in_child(count: int) -> dict:
    """Phase 4 in a process of its own: its peak RSS is then the bot's alone."""
    done = subprocess.run([sys.executable, "-m", "bench.push", "--child-big", str(count)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_big(count: int) -> None:
    from bot.loop import run
    result = run(phase(count, 0, pace=1_000_000, in_flight=LIFTED_IN_FLIGHT, interactive=False, big=True))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _per_message(result: dict) -> str:
    return f"{result['sent'] / result['wall']:,.0f} msg/s   CPU {result['cpu'] / max(result['sent'], 1) * 1000:.2f} ms/msg"


async def main(count: int, limit: float, lifted: int) -> None:
    from bot.loop import loop_name
    from adapters.telegram_request import orjson
    print(f"event loop {loop_name()}, JSON {'orjson' if orjson else 'json'}, {os.cpu_count()} cores")
    # Push a little under the limit: the rest is the room interactive replies need.
    paced = await phase(count, limit, pace=limit * 0.96)
    floor = count / limit
    print(f"1. paced push of {count} subscribers, stand-in limit {limit:.0f} msg/s (429 beyond), "
          f"in flight {paced['in_flight']}:")
    print(f"   wall {paced['wall']:.2f} s   floor N/limit {floor:.2f} s   ratio {paced['wall'] / floor:.3f} "
          f"(target ≤ 1.05)   delivered {paced['sent']}   429s provoked {paced['too_many']} (target 0)")
    print(f"   CPU {paced['cpu'] / paced['sent'] * 1000:.2f} ms/msg   interactive replies during the push "
          f"(~{1 / PROBE_EVERY:.0f}/s): p50 {paced['probe_p50']:.1f} ms   p99 {paced['probe_p99']:.1f} ms "
          f"over {paced['probes']} (target p99 ≤ 200 ms)")
    ceiling = await stand_in_ceiling()
    print(f"2. the stand-in alone: {ceiling['rate']:,.0f} req/s (its CPU {ceiling['cpu_ms']:.2f} ms/req)")
    fast = await phase(lifted, 0, pace=1_000_000, in_flight=LIFTED_IN_FLIGHT)
    print(f"3. limit lifted, {lifted} subscribers, in flight {fast['in_flight']}: {fast['sent']} pushes in "
          f"{fast['wall']:.2f} s = {_per_message(fast)} (target ≥ 1,000 msg/s)")
    print(f"   stand-in busy {fast['stand_in_busy']:.0%} of a core meanwhile   interactive p99 {fast['probe_p99']:.1f} ms")


def _report_big(big: dict, count: int) -> None:
    ledger = ", ".join(f"{status} {n}" for status, n in big["ledger"])
    print(f"4. {count} subscribers, limit lifted: {big['sent']} pushes in {big['wall']:.1f} s = {_per_message(big)}")
    print(f"   peak RSS {big['peak_rss_mb']:.0f} MB (target ≤ 150 MB)   ledger: {ledger}")
    print(f"   then: first digest tick (works out {count} digest times) {big['first_digest_ms']:.0f} ms, "
          f"idle digest tick {big['digest_ms']:.1f} ms, idle push tick {big['push_ms']:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--limit", type=float, default=300)
    parser.add_argument("--lifted", type=int, default=20_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child_big:
        child_big(arguments.child_big)
    else:
        from bot.loop import run
        run(main(arguments.subscribers, arguments.limit, arguments.lifted))
        if arguments.big:
            _report_big(big_in_child(arguments.big), arguments.big)
