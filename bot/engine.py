"""Incoming → [Reply]: routing, and the one table of every command and button.

The engine never sends anything; it returns replies, and the adapter that brought the event
delivers them (a reply that comes later, such as an LLM's verdict, goes through `Core.later`).
Each feature lives in its own module and works on a Turn with the shared Core:
  bot/quiz.py         ask, answer, reference, rating, follow-ups
  bot/info.py         welcome, help, topics, stats, history, leaderboard
  bot/preferences.py  daily push, nudges, language, study plan
  bot/scheduled.py    the daily question and the weekly digest
  bot/mock.py         mock interviews
  bot/browse.py       /q and /search
  bot/account.py      one learner across platforms (/link, /unlink)
  bot/data_out.py     your data out: /export (files built by bot/export.py)
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Awaitable, Callable

from . import account, browse, data_out, i18n, info, mock, preferences, quiz, scheduled
from .content import Bank
from .grader import Grader
from .i18n import t
from .models import Chat, Incoming, Question, Reply
from .storage import Storage, StorageUnavailable
from .timeutil import utc_now
from .turn import Core, Defaults, Turn, begin, short

log = logging.getLogger(__name__)
MAX_ANSWER_CHARS = quiz.MAX_ANSWER_CHARS
Command = Callable[[Core, Turn, str], Awaitable[list[Reply]]]

# Every command, by the name a person types (and a button may carry as "name" or "name:argument").
COMMANDS: dict[str, Command] = {
    "start": info.start, "help": info.help, "topics": info.topics, "topic": quiz.topic,
    "next": quiz.next_question, "skip": quiz.skip, "answer": quiz.reveal, "a": quiz.answer,
    "stats": info.stats, "history": info.history, "leaderboard": info.leaderboard,
    "export": data_out.export_command,
    "subscribe": preferences.subscribe, "unsubscribe": preferences.unsubscribe, "settings": preferences.settings,
    "plan": preferences.plan, "lang": preferences.lang, "nudge": preferences.nudge,
    "mock": mock.command, "q": browse.question, "search": browse.search,
    "link": account.link, "unlink": account.unlink,
}
# Commands that change a group's shared settings: only its admins may run them there.
ADMIN_COMMANDS = {"subscribe", "unsubscribe", "plan", "lang", "nudge"}
# Buttons that are not commands: they act on one question the bot asked.
BUTTONS: dict[str, Command] = {"rate": quiz.rate, "follow": quiz.follow_up, "mrate": mock.rate, "mskip": mock.skip}
# In a mock interview, answering and revealing keep the reference for the summary.
IN_MOCK = {quiz.answer: mock.answer, quiz.reveal: mock.reveal, quiz.skip: mock.skip}
# Buttons that act on the chat's open question, named by its ask id.
OPEN_QUESTION_BUTTONS = {"reveal": quiz.reveal, "skip": quiz.skip}


class Engine:
    def __init__(self, store: Storage, bank: Bank, defaults: Defaults = Defaults(),
                 clock: Callable[[], datetime] = utc_now, grader: Grader | None = None):
        self.core = Core(store, bank, defaults, clock, grader or Grader())

    @property
    def store(self) -> Storage:
        return self.core.store

    @property
    def bank(self) -> Bank:
        return self.core.bank

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.core.clock

    def send_later_with(self, send: Callable[[Chat, Reply], Awaitable[object]]) -> None:
        """How a reply nobody waits for (an LLM's verdict) reaches its chat: the adapters' send."""
        self.core.later = send

    # --- entry point ------------------------------------------------------------------

    async def handle(self, msg: Incoming) -> list[Reply]:
        replies, lang = await self._handle(msg)
        return [r if r.lang else replace(r, lang=lang) for r in replies]

    async def _handle(self, msg: Incoming) -> tuple[list[Reply], str]:
        lang = i18n.normalise_lang(msg.user.lang) or self.core.defaults.lang
        store, turn = self.core.store, None
        try:
            if msg.kind == "moved":  # not a turn of the conversation: the chat's history changes hands
                await store.move_chat(msg.chat.key, Chat(msg.chat.platform, msg.value, msg.chat.is_group).key)
                return [], lang
            if msg.event_id and not await store.first_sighting(f"{msg.chat.platform}:{msg.event_id}", self.core.clock()):
                log.info("ignoring redelivered event %s", msg.event_id)
                return [], lang
            turn = await begin(self.core, msg)
            return await self._route(turn), turn.lang
        except StorageUnavailable as e:  # errors speak the learner's language once it is known
            log.error("storage unavailable: %s", e)
            lang = turn.lang if turn else lang
            return [Reply(t("storage_error", lang))], lang
        except Exception:  # one bad event must never take the bot down
            log.exception("failed to handle %s %r from %s", msg.kind, short(msg.value), msg.user.key)
            lang = turn.lang if turn else lang
            return [Reply(t("internal_error", lang))], lang

    async def _route(self, turn: Turn) -> list[Reply]:
        msg, core = turn.msg, self.core
        if msg.kind == "left":
            await core.store.update("chats", turn.chat["key"], paused=1)
            return []
        if msg.kind == "joined":
            if not turn.new_chat and not turn.chat["paused"]:
                return []  # already here and welcomed (a group upgraded to a supergroup, a redelivery)
            if turn.is_group:  # the group speaks the language of whoever added the bot
                turn.lang = turn.chat["lang"] or i18n.normalise_lang(msg.user.lang) or core.defaults.lang
                await core.store.update("chats", turn.chat["key"], paused=0, lang=turn.lang)
            return await info.start(core, turn)
        if msg.kind == "media":
            return quiz.not_an_answer(turn, msg.value)
        if not turn.is_group and turn.chat["user_key"] not in (None, turn.user["key"]):
            # A private chat belongs to one person: an event naming somebody else in it is forged.
            log.warning("refused an event from %s in %s, the private chat of %s", turn.user["key"],
                        turn.chat["key"], turn.chat["user_key"])
            return [Reply(turn.t("not_yours"), toast=msg.kind == "button")]
        if msg.kind == "text":
            return await self._answering(turn, quiz.answer)(core, turn, msg.value)
        if msg.kind == "button":
            return await self.press(turn, msg.value)
        return await self.command(turn, msg.value.lower(), msg.args)

    async def command(self, turn: Turn, name: str, args: str) -> list[Reply]:
        handler = COMMANDS.get(name)
        if handler is None:
            return [Reply(turn.t("unknown_command", command=short(name)))]
        if turn.is_group and name in ADMIN_COMMANDS and not turn.msg.is_admin:
            return [Reply(turn.t("admin_only"))]
        return await self._answering(turn, handler)(self.core, turn, args.strip())

    async def press(self, turn: Turn, data: str) -> list[Reply]:
        """Buttons carry "command", "command:argument", or a button name and the ask it acts on."""
        name, _, arg = data.partition(":")
        if name in BUTTONS:
            return await BUTTONS[name](self.core, turn, arg)
        if name in OPEN_QUESTION_BUTTONS:
            ask, _ = quiz.open_question(turn)
            if ask is None or str(ask["id"]) != arg:
                return [Reply(turn.t("stale_button"))]
            return await self._answering(turn, OPEN_QUESTION_BUTTONS[name])(self.core, turn, "")
        return await self.command(turn, name, arg)

    @staticmethod
    def _answering(turn: Turn, handler: Command) -> Command:
        return IN_MOCK.get(handler, handler) if mock.active(turn) else handler

    # --- scheduled messages (for bot/delivery.py) ------------------------------------------

    async def daily_question(self, chat_key: str) -> Reply | None:
        return await scheduled.daily_question(self.core, chat_key)

    async def weekly_digest(self, chat_key: str) -> Reply | None:
        return await scheduled.weekly_digest(self.core, chat_key)

    async def preview_daily(self, chat_key: str) -> Question | None:
        return await scheduled.preview_daily(self.core, chat_key)
