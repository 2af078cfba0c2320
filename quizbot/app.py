"""The composition root: settings → storage → bank → engine → adapters, and a clean shutdown."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import TextIO

from adapters.base import Adapter
from adapters.console import ConsoleAdapter
from bot.config import ConfigError, Settings
from bot.content import load_bank
from bot.delivery import Delivery, policy_from
from bot.engine import Defaults, Engine
from bot.grader import Grader, LlmGrader, LlmSettings
from bot.health import HealthServer, counted
from bot.scheduling import start_scheduler, stop_scheduler
from bot.storage import Storage
from bot.upkeep import Upkeep

log = logging.getLogger("quizbot")
SHUTDOWN_GRACE_SECONDS = 10


async def build_engine(settings: Settings) -> Engine:
    bank = load_bank(settings.bot.content_dir)
    store = await Storage.open(settings.storage.path)
    defaults = Defaults(settings.bot.lang, settings.schedule.time, settings.schedule.timezone)
    return Engine(store, bank, defaults, grader=build_grader(settings, store))


def build_grader(settings: Settings, store: Storage | None) -> Grader:
    """Local grading always; an LLM's verdict as well when [grader] base_url is set."""
    config = settings.grader
    if not config.enabled:
        return Grader()
    llm = LlmGrader(LlmSettings(config.base_url, config.model, config.api_key.get_secret_value(),
                                config.timeout_seconds, config.daily_limit))
    log.info("grader: an LLM (%s at %s) refines the local verdicts", config.model or "default model", config.base_url)
    return Grader(llm, config.daily_limit, store.spend_grading if store is not None else None)


def build_delivery(settings: Settings, engine: Engine, adapters: list[Adapter]) -> Delivery:
    return Delivery(engine.store, engine, {a.platform: a for a in adapters}, policy_from(settings), clock=engine.clock)


def platform_adapters(settings: Settings) -> list[Adapter]:
    """Each configured platform's adapter; the SDKs are imported only for the platforms in use."""
    adapters: list[Adapter] = []
    try:
        if settings.telegram.enabled:
            from adapters.telegram import TelegramAdapter
            adapters.append(TelegramAdapter(settings.telegram))
        if settings.feishu.enabled:
            from adapters.feishu import FeishuAdapter
            adapters.append(FeishuAdapter(settings.feishu))
    except ImportError as e:  # configured, but its SDK was not installed
        extra = "telegram" if "telegram" in str(e) else "feishu"
        raise ConfigError(f"[{extra}] is configured but its library is missing ({e.name}): "
                          f"install it with  .venv/bin/pip install -e '.[{extra}]'") from None
    return adapters


async def run(settings: Settings, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    adapters = platform_adapters(settings)  # a missing SDK is reported before anything is opened
    engine = await build_engine(settings)
    stop = asyncio.Event()
    console = None
    if not adapters:
        console = ConsoleAdapter(stdin, stdout)
        adapters = [console]
        asyncio.create_task(_set_when(console.closed, stop))
        log.info("no platform configured: console mode, database %s", settings.storage.path)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    scheduler = catch_up = upkeep = health = delivery = None
    try:
        if settings.health.port:  # GET /healthz; `quizbot health` reads the heartbeat without it
            health = HealthServer(settings.health.listen, settings.health.port, settings.storage.path)
            await health.start()
        by_platform = {adapter.platform: adapter for adapter in adapters}

        async def send_later(chat, reply):  # replies nobody waits for, such as an LLM's verdict
            adapter = by_platform.get(chat.platform)
            if adapter is not None:
                await adapter.send(chat, reply)
        engine.send_later_with(send_later)
        for adapter in adapters:
            await adapter.start(counted(engine.handle))
            log.info("%s adapter started", adapter.platform)
        delivery = build_delivery(settings, engine, adapters)
        upkeep = Upkeep(delivery, adapters, settings.storage.keep_days)  # heartbeat, counters, pruning
        await upkeep.beat()
        catch_up = asyncio.create_task(upkeep.push_tick())  # pushes missed while the bot was down go out now
        scheduler = start_scheduler(delivery, upkeep)
        await stop.wait()
    finally:
        if delivery is not None:  # a push under way stops claiming; what it claimed still goes out
            delivery.stop()
        if scheduler is not None:  # runs under way (a push tick) finish first, within the grace period
            await stop_scheduler(scheduler, SHUTDOWN_GRACE_SECONDS)
        if catch_up is not None:  # let sends in progress finish; unconfirmed ones are retried next start
            await asyncio.wait([catch_up], timeout=SHUTDOWN_GRACE_SECONDS)
        if health is not None:
            await health.stop()
        await engine.core.grader.drain(timeout=5)  # verdicts under way still reach their chats
        for adapter in adapters:
            await adapter.stop()
        if upkeep is not None:
            await upkeep.stopped()
        await engine.store.close()
        if console is not None and console.lines == 0:  # e.g. a container started without a token
            log.warning("no platform is configured and the console's input ended before its first line, so the bot "
                        "stopped. To run it for Telegram or Feishu, set QUIZBOT_TELEGRAM_TOKEN, or [feishu] app_id "
                        "and QUIZBOT_FEISHU_APP_SECRET.")


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
