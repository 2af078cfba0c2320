"""One turn of a conversation: an incoming event with what the engine knows about its sender and
chat, and the services every feature shares (storage, bank, clock, defaults, grader)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable

from . import i18n
from .content import Bank
from .grader import Grader
from .models import Button, Chat, Incoming, Question, Reply, User
from .storage import Storage
from .timeutil import utc_now

MAX_ECHO_CHARS = 40  # how much of a bad argument we quote back


@dataclass(frozen=True)
class Defaults:
    lang: str = i18n.DEFAULT_LANG
    push_time: str = "09:00"
    timezone: str = "Asia/Shanghai"


@dataclass
class Core:
    """What every feature of the engine works with."""

    store: Storage
    bank: Bank
    defaults: Defaults = field(default_factory=Defaults)
    clock: Callable[[], datetime] = utc_now
    grader: Grader = field(default_factory=Grader)
    later: Callable[[Chat, Reply], Awaitable[object]] | None = None  # sends a reply nobody is waiting for

    def question(self, question_id: str) -> Question | None:
        """A question or follow-up of the bank (None once removed from it)."""
        return self.bank.by_id.get(question_id)


@dataclass
class Turn:
    """One incoming event with what we know about its sender and chat."""

    msg: Incoming
    user: dict
    chat: dict
    lang: str
    now: datetime
    ask: dict | None = None      # the chat's newest question when the event arrived, open or not
    answer: dict | None = None   # the sender's answer to it
    card: str | None = None      # the sender's FSRS card for its question
    new_chat: bool = False       # the chat was first seen with this event

    @property
    def tz(self) -> str:
        return self.chat["timezone"]

    @property
    def is_group(self) -> bool:
        return self.msg.chat.is_group

    def t(self, key: str, **values) -> str:
        return i18n.t(key, self.lang, **values)


async def begin(core: Core, msg: Incoming) -> Turn:
    """The turn for an event: sender and chat loaded (created on first contact) in one query."""
    now = core.clock()
    context = await core.store.context(msg.user.key, msg.user.name, msg.chat.key, msg.chat.platform,
                                       msg.chat.is_group, now)
    user, chat = context.user, context.chat
    if not msg.chat.is_group and chat["user_key"] is None:  # who the daily push of this chat is for
        await core.store.update("chats", chat["key"], user_key=user["key"])
        chat["user_key"] = user["key"]
    if chat["timezone"] is None:
        chat["timezone"] = core.defaults.timezone
    if not msg.chat.is_group and chat["paused"] and msg.kind != "left":
        # they wrote to us, so they can be reached again (a user who blocked and unblocked the bot)
        await core.store.update("chats", chat["key"], paused=0)
    return Turn(msg, user, chat, language(core, msg, user, chat), now, context.ask, context.answer, context.card,
                context.new_chat)


def language(core: Core, msg: Incoming, user: dict | None, chat: dict | None) -> str:
    """A group speaks one language, whoever spoke last; a person their chosen one, else their app's."""
    if msg.chat.is_group:
        return (chat or {}).get("lang") or core.defaults.lang
    return (user or {}).get("lang") or i18n.normalise_lang(msg.user.lang) or core.defaults.lang


async def scheduled(core: Core, chat_key: str) -> Turn | None:
    """A turn for a message nobody asked for: the daily question or the weekly digest."""
    now = core.clock()
    row = await core.store.one("SELECT is_group, user_key, thread FROM chats WHERE key = ?", chat_key)
    if row is None:
        return None
    user_key, is_group = row["user_key"] or chat_key, bool(row["is_group"])
    platform, _, chat_id = chat_key.partition(":")
    context = await core.store.context(user_key, "", chat_key, platform, is_group, now)
    chat = context.chat
    chat["timezone"] = chat["timezone"] or core.defaults.timezone
    incoming = Incoming(Chat(platform, chat_id, is_group, row["thread"]), User(*user_key.split(":", 1)),
                        "command", "next")
    lang = (chat["lang"] if is_group else context.user["lang"]) or core.defaults.lang
    return Turn(incoming, context.user, chat, lang, now, context.ask, context.answer, context.card)


def row(*buttons: Button) -> tuple[Button, ...]:
    return tuple(buttons)


def short(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def next_button(turn: Turn) -> tuple[tuple[Button, ...], ...]:
    return (row(Button(turn.t("button_next"), "next")),)
