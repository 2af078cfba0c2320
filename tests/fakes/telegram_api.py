"""A stand-in Telegram Bot API server for end-to-end tests of the Telegram adapter.

It speaks the real wire format to the real python-telegram-bot: `POST /bot<token>/<method>` with
form-urlencoded (or multipart) bodies, answers `{"ok": true, "result": …}` or Telegram's error
shape, long-polls getUpdates, keeps the messages the bot sent (parsing their HTML the way Telegram
does, so a test sees the visible text and a badly formed message is refused), records every call,
and can inject faults: 429 with retry_after, 403 for a blocked chat, 5xx.

Tests play the people: `user()`, `private()`, `group()` build Telegram objects, and `message()`,
`press()`, `added()`, `removed()` queue updates for the bot to fetch.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

BOT_ID = 7000001
MAX_TEXT = 4096
_ENTITY_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
                "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
                "tg-spoiler": "spoiler", "a": "text_link", "blockquote": "blockquote", "span": "spoiler"}
_ADMIN_RIGHTS = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                 "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                 "can_post_stories", "can_edit_stories", "can_delete_stories")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


@dataclass
class Fault:
    method: str
    status: int
    times: int
    retry_after: int | None = None
    chat_id: int | None = None
    description: str = ""


@dataclass
class Sent:
    """A message in a chat as Telegram keeps it: visible text, entities, keyboard."""

    chat_id: int
    message_id: int
    text: str
    entities: list[dict] = field(default_factory=list)
    keyboard: list[list[dict]] | None = None
    photo: bool = False
    from_bot: bool = True
    edits: int = 0
    thread: int | None = None      # the forum topic it was sent to
    document: str | None = None    # the file name of a document

    @property
    def buttons(self) -> dict[str, str]:
        """label → callback data of the keyboard's buttons."""
        return {b["text"]: b["callback_data"] for row in self.keyboard or [] for b in row}

    def styled(self, kind: str) -> list[str]:
        """The visible text of every entity of one kind ("bold", "spoiler", …)."""
        units = self.text.encode("utf-16-le")
        return [units[2 * e["offset"]: 2 * (e["offset"] + e["length"])].decode("utf-16-le")
                for e in self.entities if e["type"] == kind]


class TelegramError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None):
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


class _HTML(HTMLParser):
    """Telegram's HTML parse mode: a few tags, entities by UTF-16 offset, anything else refused."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.units, self.entities, self.stack = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag not in _ENTITY_TAGS or (tag == "span" and dict(attrs).get("class") != "tg-spoiler"):
            raise TelegramError(400, f"Bad Request: can't parse entities: unsupported start tag \"{tag}\"")
        self.stack.append((tag, self.units, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1][0] != tag:
            raise TelegramError(400, f"Bad Request: can't parse entities: unmatched end tag \"{tag}\"")
        _, start, attrs = self.stack.pop()
        if self.units > start:
            entity = {"type": _ENTITY_TAGS[tag], "offset": start, "length": self.units - start}
            if tag == "a":
                entity["url"] = attrs.get("href", "")
            self.entities.append(entity)

    def handle_data(self, data):
        self.text.append(data)
        self.units += len(data.encode("utf-16-le")) // 2

    @classmethod
    def parse(cls, source: str) -> tuple[str, list[dict]]:
        parser = cls()
        parser.feed(source)
        parser.close()
        if parser.stack:
            raise TelegramError(400, f"Bad Request: can't parse entities: unclosed tag \"{parser.stack[-1][0]}\"")
        return "".join(parser.text), sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))


def user(uid: int, first_name: str, lang: str | None = "zh-hans", username: str | None = None,
         last_name: str | None = None) -> dict:
    data = {"id": uid, "is_bot": False, "first_name": first_name}
    if lang:
        data["language_code"] = lang
    if username:
        data["username"] = username
    if last_name:
        data["last_name"] = last_name
    return data


def private(person: dict) -> dict:
    return {"id": person["id"], "type": "private", "first_name": person["first_name"]}


def group(chat_id: int, title: str = "LLM 面试小组", supergroup: bool = True) -> dict:
    return {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}


class FakeBotAPI:
    def __init__(self, token: str = "7000001:AAF-test-SECRET-token_x9", username: str = "quiz_bot",
                 sends_per_second: float | None = None):
        self.token, self.username = token, username
        # Telegram's flood limit, enforced like a token bucket holding one second of sends: beyond it, 429.
        self.sends_per_second = sends_per_second
        self._bucket, self._bucket_at = sends_per_second or 0.0, time.monotonic()
        self.too_many = 0
        self.error_rate = 0.0                # share of send calls answered 502, at random (seeded)
        self._random = random.Random(20261123)
        self.bot = {"id": BOT_ID, "is_bot": True, "first_name": "Quiz", "username": username,
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.blocked: set[int] = set()         # chats whose sends get 403
        self.migrated: dict[int, int] = {}     # old group id → its supergroup's id (sends to the old one get 400)
        self.admins: dict[int, dict[int, str]] = {}  # chat → user → "creator" / "administrator"
        self.messages: dict[tuple[int, int], Sent] = {}
        self.order: list[tuple[int, int]] = []  # bot messages in the order they were sent
        self.webhook: dict[str, Any] = {}
        self.commands: dict[str, list[dict]] = {}   # language_code ("" = default) → commands
        self.descriptions: dict[str, str] = {}      # language_code ("" = default) → the bot's description
        self.short_descriptions: dict[str, str] = {}  # language_code ("" = default) → its short description
        self.documents: list[bytes] = []            # the contents of every document sent
        self._updates: list[dict] = []
        self._arrived = asyncio.Event()
        self._update_ids = itertools.count(1001)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # --- server ---------------------------------------------------------------------------

    async def start(self, port: int = 0) -> "FakeBotAPI":
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._serve)
        app.router.add_route("GET", "/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)  # its lines hold the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._closing = True
        self._arrived.set()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _serve(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        token, _, method = path.removeprefix("bot").partition("/")
        params = await self._params(request)
        call = Call(method, params)
        self.calls.append(call)
        try:
            if not path.startswith("bot") or token != self.token:
                raise TelegramError(401, "Unauthorized")
            self._inject(method, params)
            handler = getattr(self, f"_{method}", None)
            if handler is None:
                raise TelegramError(404, "Not Found: method not found")
            result = await handler(params)
            return web.json_response({"ok": True, "result": result})
        except TelegramError as e:
            call.status = e.status
            body = {"ok": False, "error_code": e.status, "description": e.description}
            if e.retry_after is not None:
                body["parameters"] = {"retry_after": e.retry_after}
            if e.migrate_to_chat_id is not None:
                body["parameters"] = {"migrate_to_chat_id": e.migrate_to_chat_id}
            return web.json_response(body, status=e.status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            raw = await request.json()
        else:
            form = await request.post()
            raw = {k: (v if isinstance(v, str) else v.file.read()) for k, v in form.items()}
            raw.update({f"_filename": v.filename for v in form.values() if not isinstance(v, str) and v.filename})
        params = {}
        for key, value in raw.items():
            if isinstance(value, str) and key in ("reply_markup", "commands", "allowed_updates", "scope",
                                                  "link_preview_options", "reply_parameters"):
                value = json.loads(value)
            params[key] = value
        return params

    def _inject(self, method: str, params: dict) -> None:
        chat_id = int(params["chat_id"]) if "chat_id" in params else None
        if self.sends_per_second and method.startswith(("send", "edit")):
            now = time.monotonic()
            self._bucket = min(self.sends_per_second, self._bucket + (now - self._bucket_at) * self.sends_per_second)
            self._bucket_at = now
            if self._bucket < 1:
                self.too_many += 1
                raise TelegramError(429, "Too Many Requests: retry after 1", 1)
            self._bucket -= 1
        if self.error_rate and method.startswith("send") and self._random.random() < self.error_rate:
            raise TelegramError(502, "Bad Gateway")
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                raise TelegramError(fault.status, fault.description or _DESCRIPTIONS.get(fault.status, "Error"),
                                    fault.retry_after)
        if chat_id in self.migrated and method.startswith("send"):
            raise TelegramError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                migrate_to_chat_id=self.migrated[chat_id])
        if chat_id in self.blocked and method.startswith(("send", "edit")):
            raise TelegramError(403, "Forbidden: bot was blocked by the user")

    # --- fault injection ------------------------------------------------------------------

    def fail(self, method: str, status: int, times: int = 1, retry_after: int | None = None,
             chat_id: int | None = None, description: str = "") -> None:
        if status == 429 and retry_after is None:
            retry_after = 1
        self.faults.append(Fault(method, status, times, retry_after, chat_id, description))

    # --- the Bot API methods ---------------------------------------------------------------

    async def _getMe(self, p):
        return self.bot

    async def _getUpdates(self, p):
        offset = int(p.get("offset", 0) or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(p.get("timeout", 0) or 0)
        while not self._updates and not self._closing and time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        return self._updates[: int(p.get("limit", 100) or 100)]

    async def _deleteWebhook(self, p):
        self.webhook = {}
        return True

    async def _setWebhook(self, p):
        self.webhook = dict(p)
        return True

    async def _getWebhookInfo(self, p):
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def _setMyCommands(self, p):
        self.commands[p.get("language_code", "")] = p["commands"]
        return True

    async def _setMyDescription(self, p):
        text = p.get("description", "")
        if len(text) > 512:
            raise TelegramError(400, "Bad Request: description is too long")
        self.descriptions[p.get("language_code", "")] = text
        return True

    async def _setMyShortDescription(self, p):
        text = p.get("short_description", "")
        if len(text) > 120:
            raise TelegramError(400, "Bad Request: short description is too long")
        self.short_descriptions[p.get("language_code", "")] = text
        return True

    async def _getChatMember(self, p):
        chat_id, user_id = int(p["chat_id"]), int(p["user_id"])
        status = self.admins.get(chat_id, {}).get(user_id, "member")
        member = {"user": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}, "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update({right: right == "can_manage_chat" for right in _ADMIN_RIGHTS})
        return member

    async def _answerCallbackQuery(self, p):
        return True

    async def _benchStats(self, p):
        """Not a Bot API method: the counts a benchmark reads from this server in another process."""
        sent = sum(1 for c in self.calls if c.method == "sendMessage" and c.status == 200)
        return {"sent": sent, "too_many": self.too_many}

    def _chat(self, chat_id: int) -> dict:
        return {"id": chat_id, "type": "private", "first_name": "someone"} if chat_id > 0 else group(chat_id)

    def _store(self, chat_id: int, text: str, entities: list[dict], markup: dict | None, photo: bool = False,
               thread=None, document: str | None = None) -> dict:
        message_id = next(self._message_ids)
        keyboard = (markup or {}).get("inline_keyboard")
        self.messages[(chat_id, message_id)] = Sent(chat_id, message_id, text, entities, keyboard, photo,
                                                    thread=int(thread) if thread else None, document=document)
        self.order.append((chat_id, message_id))
        return self._message_json(self.messages[(chat_id, message_id)])

    def _message_json(self, sent: Sent) -> dict:
        data = {"message_id": sent.message_id, "date": int(time.time()), "chat": self._chat(sent.chat_id),
                "from": self.bot if sent.from_bot else user(sent.chat_id, "someone")}
        if sent.photo:
            data["photo"] = [{"file_id": f"photo{sent.message_id}", "file_unique_id": f"u{sent.message_id}",
                              "width": 10, "height": 10}]
        else:
            data["text"] = sent.text
            if sent.entities:
                data["entities"] = sent.entities
        if sent.keyboard:
            data["reply_markup"] = {"inline_keyboard": sent.keyboard}
        if sent.thread:
            data.update(message_thread_id=sent.thread, is_topic_message=True)
        if sent.edits:
            data["edit_date"] = int(time.time())
        return data

    @staticmethod
    def _text(p: dict) -> tuple[str, list[dict]]:
        source = p.get("text", "")
        text, entities = _HTML.parse(source) if p.get("parse_mode") == "HTML" else (source, [])
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
            raise TelegramError(400, "Bad Request: message is too long")
        return text, entities

    async def _sendMessage(self, p):
        text, entities = self._text(p)
        return self._store(int(p["chat_id"]), text, entities, p.get("reply_markup"), thread=p.get("message_thread_id"))

    async def _sendPhoto(self, p):
        if not isinstance(p.get("photo"), (bytes, bytearray)) or not p["photo"]:
            raise TelegramError(400, "Bad Request: there is no photo in the request")
        return self._store(int(p["chat_id"]), "", [], p.get("reply_markup"), photo=True,
                           thread=p.get("message_thread_id"))

    async def _sendDocument(self, p):
        if not isinstance(p.get("document"), (bytes, bytearray)) or not p["document"]:
            raise TelegramError(400, "Bad Request: there is no document in the request")
        self.documents.append(bytes(p["document"]))
        return self._store(int(p["chat_id"]), "", [], None, thread=p.get("message_thread_id"),
                           document=p.get("_filename", "file"))

    def _existing(self, p) -> Sent:
        sent = self.messages.get((int(p["chat_id"]), int(p["message_id"])))
        if sent is None:
            raise TelegramError(400, "Bad Request: message to edit not found")
        return sent

    async def _editMessageText(self, p):
        sent = self._existing(p)
        text, entities = self._text(p)
        keyboard = (p.get("reply_markup") or {}).get("inline_keyboard")
        if (text, entities, keyboard) == (sent.text, sent.entities, sent.keyboard):
            raise TelegramError(400, "Bad Request: message is not modified: specified new message content and "
                                     "reply markup are exactly the same as a current content and reply markup "
                                     "of the message")
        sent.text, sent.entities, sent.keyboard = text, entities, keyboard
        sent.edits += 1
        return self._message_json(sent)

    async def _editMessageReplyMarkup(self, p):
        sent = self._existing(p)
        keyboard = (p.get("reply_markup") or {}).get("inline_keyboard")
        if keyboard == sent.keyboard:
            raise TelegramError(400, "Bad Request: message is not modified")
        sent.keyboard = keyboard
        sent.edits += 1
        return self._message_json(sent)

    # --- people doing things ----------------------------------------------------------------

    def _queue(self, update: dict) -> dict:
        self._updates.append(update)
        self._arrived.set()
        return update

    def update(self, kind: str, body: dict) -> dict:
        """An update as Telegram would deliver it (not queued: for the webhook)."""
        return {"update_id": next(self._update_ids), kind: body}

    def message_body(self, chat: dict, sender: dict, text: str, reply_to: Sent | None = None,
                     sender_chat: dict | None = None) -> dict:
        body = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": sender,
                "text": text}
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        at = f"@{self.username}"
        if at.lower() in text.lower():
            start = text.lower().index(at.lower())
            if not (entities and start < entities[0]["length"]):
                entities.append({"type": "mention", "offset": len(text[:start].encode("utf-16-le")) // 2,
                                 "length": len(at)})
        if entities:
            body["entities"] = entities
        if reply_to is not None:
            body["reply_to_message"] = self._message_json(reply_to)
        if sender_chat is not None:
            body["sender_chat"] = sender_chat
        return body

    def message(self, chat: dict, sender: dict, text: str, reply_to: Sent | None = None,
                sender_chat: dict | None = None, thread: int | None = None, **fields) -> dict:
        """A message; `thread`: sent in that forum topic; `fields`: more of the message (photo,
        caption, forward_origin, …), with text=None for a message that has none."""
        body = self.message_body(chat, sender, text or "", reply_to, sender_chat)
        if text is None:
            body.pop("text")
        if thread is not None:
            body.update(message_thread_id=thread, is_topic_message=True)
        body.update(fields)
        return self._queue(self.update("message", body))

    def raw(self, update: dict) -> dict:
        """Queue an update exactly as given (with a fresh id): e.g. one the library cannot decode."""
        return self._queue({"update_id": next(self._update_ids), **update})

    def press(self, sender: dict, message: Sent, data: str) -> dict:
        body = {"id": str(next(self._callback_ids)), "from": sender, "chat_instance": "fake-instance",
                "data": data, "message": self._message_json(message)}
        return self._queue(self.update("callback_query", body))

    def _membership(self, chat: dict, by: dict, old: str, new: str) -> dict:
        def member(status):
            data = {"user": self.bot, "status": status}
            if status == "kicked":
                data["until_date"] = 0
            return data
        body = {"chat": chat, "from": by, "date": int(time.time()),
                "old_chat_member": member(old), "new_chat_member": member(new)}
        return self._queue(self.update("my_chat_member", body))

    def added(self, chat: dict, by: dict) -> dict:
        return self._membership(chat, by, "left", "member")

    def removed(self, chat: dict, by: dict) -> dict:
        return self._membership(chat, by, "member", "left")

    def blocked_by(self, person: dict) -> dict:
        return self._membership(private(person), person, "member", "kicked")

    async def post_webhook(self, update: dict, secret: str | None) -> int:
        """POST an update to the URL the bot registered with setWebhook, as Telegram does."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.webhook["url"], json=update, headers=headers) as response:
                return response.status

    # --- what the people saw ------------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [self.messages[key] for key in self.order if key[0] == chat_id]

    def calls_to(self, method: str, since: int = 0) -> list[Call]:
        return [c for c in self.calls[since:] if c.method == method]


_DESCRIPTIONS = {
    429: "Too Many Requests: retry after 1",
    403: "Forbidden: bot was blocked by the user",
    500: "Internal Server Error",
    502: "Bad Gateway",
    400: "Bad Request",
}


async def _serve_forever(port: int, sends_per_second: float | None) -> None:
    fake = FakeBotAPI(sends_per_second=sends_per_second)
    await fake.start()
    print(fake.port, flush=True)  # the parent reads the port from the first line
    await asyncio.Event().wait()


if __name__ == "__main__":  # a stand-alone server for benchmarks: python -m tests.fakes.telegram_api [LIMIT]
    import sys
    asyncio.run(_serve_forever(0, float(sys.argv[1]) if len(sys.argv) > 1 and float(sys.argv[1]) > 0 else None))
