"""The neutral values that flow between adapters and the engine, and the question bank's shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal


@dataclass(frozen=True)
class Chat:
    """A conversation. `thread`: the forum topic (Telegram message_thread_id) an event came from
    or a reply goes to; it is not part of the chat's identity."""

    platform: str
    id: str
    is_group: bool = False
    thread: str | None = None

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True)
class User:
    platform: str
    id: str
    name: str = ""
    lang: str | None = None  # the platform's language hint, e.g. "en-US"

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True)
class Incoming:
    """One thing that happened in a chat: a command, a free-text message, a button press, the bot
    being added to ("joined") or removed from ("left") a group, a person opening the bot's
    private chat for the first time ("joined" too), the chat getting a new id ("moved", value =
    the new id), or a message the bot cannot read as an answer ("media", value = "forward",
    "photo", "voice", "document", "sticker", …)."""

    chat: Chat
    user: User
    kind: Literal["command", "text", "button", "joined", "left", "moved", "media"]
    value: str = ""  # command name without "/", the text, the button data, the new chat id, the media kind
    args: str = ""
    is_admin: bool = False  # the adapter says whether the sender may change a group's settings
    event_id: str | None = None  # the platform's id for the event: a redelivered event is handled once


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # at most 64 bytes (Telegram's callback_data limit)


@dataclass(frozen=True)
class Point:
    """One key point of a reference, with how the learner's answer did on it."""

    text: str
    mark: bool | None = None  # True: covered (✓), False: missed (✗), None: not graded


@dataclass(frozen=True)
class Section:
    """A part of a reply after its text: markup text, then a checklist of key points.

    hidden: shown only to whoever opens it (a group's reference answer): a spoiler on Telegram,
    a collapsed panel on Feishu, a marked block in the console. `title` labels the opener.
    """

    text: str = ""
    points: tuple[Point, ...] = ()
    hidden: bool = False
    title: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply (an export): its name, bytes and MIME type."""

    name: str
    data: bytes
    mime: str = "application/octet-stream"


@dataclass(frozen=True)
class Reply:
    """What the engine wants shown. Text uses a tiny markup (bot/markup.py): **bold**, `code`,
    fenced code blocks, "- " lists; `sections` follow it in order.

    key: a name for this message within its chat; a later reply with the same key replaces it
         in place where the platform can edit messages (a group's answer board), else is sent anew.
    toast: a short notice for the person who pressed a button (a pop-up where the platform has
         one); sent as an ordinary message where it has not.
    lang: the language the text is in, for the labels an adapter adds around it.
    image: a picture shown with the text; files: documents sent after it. Either may fail to
         send on its own: the text still arrives.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    image: bytes | None = None
    key: str | None = None
    toast: bool = False
    lang: str | None = None
    sections: tuple[Section, ...] = ()
    files: tuple[Attachment, ...] = ()

    @property
    def visible_text(self) -> str:
        """Everything a reader sees without opening a hidden part (for toasts and summaries)."""
        parts = [self.text] + [s.text for s in self.sections if not s.hidden]
        return "\n\n".join(p for p in parts if p)


class ChatUnreachable(Exception):
    """The platform says the chat can no longer be reached (the user blocked the bot, or the bot
    was removed from the group). Raised by an adapter's send; pushes to that chat are paused."""


@dataclass(frozen=True)
class KeyPoint:
    text: str
    terms: tuple[str, ...] = ()  # technical terms and aliases a grader looks for in an answer


@dataclass(frozen=True)
class Question:
    """A question of the bank, or a follow-up (追问) to one: then `parent` is its question's id."""

    id: str
    topic: str
    q: str
    difficulty: int
    answer: str
    key_points: tuple[KeyPoint, ...]
    tags: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    follow_ups: tuple["Question", ...] = ()
    parent: str | None = None


@dataclass(frozen=True)
class Topic:
    slug: str
    title: str
    title_en: str
    questions: tuple[Question, ...] = field(default=())

    def name(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title

    @cached_property
    def easiest_first(self) -> tuple[Question, ...]:
        """The questions by difficulty, in file order within one difficulty."""
        return tuple(sorted(self.questions, key=lambda q: q.difficulty))


@dataclass(frozen=True)
class Plan:
    id: str
    title: str
    title_en: str
    weeks: tuple[tuple[str, ...], ...]  # topic slugs per week, in study order

    def name(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title
