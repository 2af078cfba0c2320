"""Feishu (Lark) through the official lark-oapi SDK: events in, interactive cards out.

Receiving, `[feishu] mode`:
- "ws" (default): the SDK's long connection (adapters/feishu_ws.py), on a daemon thread with a
  loop of its own; its callbacks hand events to the main loop thread-safely.
- "webhook": an aiohttp endpoint (adapters/feishu_webhook.py) that checks token, signature and
  encryption, then calls the same SDK dispatcher.
Both produce the SDK's typed events and both feed `parse`. Subscribed: `im.message.receive_v1`,
`card.action.trigger` (button presses, answered within 3 s with an optional toast and, in a
private chat, the pressed card updated in place), `im.chat.member.bot.added_v1` / `deleted_v1`.
Events of one chat are handled one at a time, in arrival order.

Sending: every reply is an interactive card (adapters/feishu_cards.py); `Reply.key` patches the
card sent earlier under that key; calls are paced, retried and mapped to ChatUnreachable in
adapters/feishu_client.py. lark-oapi is imported only by adapters/feishu*.py, which quizbot.app
imports only when Feishu is configured (it costs seconds and ~170 MB).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections import OrderedDict

import lark_oapi as lark
from lark_oapi.api.im.v1 import (P2ImChatAccessEventBotP2pChatEnteredV1, P2ImChatMemberBotAddedV1,
                                 P2ImChatMemberBotDeletedV1, P2ImMessageReceiveV1)
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTrigger, P2CardActionTriggerResponse

from bot.config import ConfigError, FeishuSettings
from bot.health import metrics
from bot.i18n import t
from bot.markup import plain
from bot.models import Chat, ChatUnreachable, Incoming, Reply, User

from .base import Handler, split_command
from .feishu_cards import label_of, render
from .feishu_client import ChatInfo, FeishuApi, FeishuError
from .feishu_webhook import WebhookServer
from .feishu_ws import LongConnection

log = logging.getLogger(__name__)

EVENT_TYPES = {"im.message.receive_v1", "card.action.trigger", "im.chat.member.bot.added_v1",
               "im.chat.member.bot.deleted_v1", "im.chat.access_event.bot_p2p_chat_entered_v1"}
# Message types that carry no text: while a question is open they get a "text answers only" reply.
MEDIA_TYPES = {"image": "photo", "file": "document", "audio": "voice", "media": "video", "sticker": "sticker"}
CARD_DEADLINE = 2.5      # seconds: Feishu wants a card action answered within 3
CHAT_INFO_TTL = 60.0     # seconds an owner/manager list is trusted for admin checks
_QUIET = ("Lark", "urllib3", "websockets")  # they log URLs and event payloads (with the verification token) at DEBUG


class _Lru(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class _Pending:
    """A card action's answer, handed from the main loop to the SDK thread waiting for it. Whoever
    comes second learns whether the answer was still in time."""

    def __init__(self):
        self.lock, self.done = threading.Lock(), threading.Event()
        self.response: P2CardActionTriggerResponse | None = None
        self.expired = False

    def answer(self, response: P2CardActionTriggerResponse) -> bool:
        with self.lock:
            if self.expired:
                return False
            self.response = response
        self.done.set()
        return True

    def wait(self, timeout: float) -> P2CardActionTriggerResponse:
        self.done.wait(timeout)
        with self.lock:
            if self.response is None:
                self.expired = True
                return P2CardActionTriggerResponse()
            return self.response


class FeishuAdapter:
    platform = "feishu"

    def __init__(self, settings: FeishuSettings):
        self.settings = settings
        for name in _QUIET:
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() < logging.WARNING or logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        self.api = FeishuApi(settings)
        self._handler: Handler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._locks: dict[str | None, list] = {}  # chat id → [lock, events holding or waiting for it]
        self._cards: _Lru = _Lru(5000)       # message id → (the Reply it shows, its image key): the bot's own messages
        self._keys: _Lru = _Lru(5000)        # (chat id, Reply.key) → message id
        self._is_group: _Lru = _Lru(20000)   # chat id → is it a group
        self._names: _Lru = _Lru(20000)      # open id → display name ("" when the contact API says no)
        self._chat_info: _Lru = _Lru(2000)   # chat id → (ChatInfo, fetched at)
        self._by_bot: _Lru = _Lru(5000)      # message id → was it sent by this bot
        self._unreachable_logged: set[str] = set()
        self._bot_id: str | None = None
        self._bot_id_tried = 0.0
        self._ws: LongConnection | None = None
        self._webhook: WebhookServer | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, handler: Handler) -> None:
        self._handler, self._loop = handler, asyncio.get_running_loop()
        await self._bot_open_id()
        if self.settings.mode == "webhook":
            if not self.settings.verification_token.get_secret_value():
                raise ConfigError('[feishu] mode = "webhook" needs verification_token (the app\'s Verification Token)')
            dispatcher = self._dispatcher(self.settings.encrypt_key.get_secret_value(),
                                          self.settings.verification_token.get_secret_value())
            self._webhook = WebhookServer(self.settings, dispatcher, EVENT_TYPES)
            await self._webhook.start()
        else:
            self._ws = LongConnection(self.settings, self._dispatcher("", ""))
            await self._ws.start()

    def _dispatcher(self, encrypt_key: str, verification_token: str):
        return (lark.EventDispatcherHandler.builder(encrypt_key, verification_token)
                .register_p2_im_message_receive_v1(self._event_from_sdk)
                .register_p2_im_chat_member_bot_added_v1(self._event_from_sdk)
                .register_p2_im_chat_member_bot_deleted_v1(self._event_from_sdk)
                .register_p2_im_chat_access_event_bot_p2p_chat_entered_v1(self._event_from_sdk)
                .register_p2_card_action_trigger(self._card_from_sdk)
                .build())

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.stop()
            self._ws = None
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        await self.drain(5)
        for task in list(self._tasks):
            task.cancel()

    async def drain(self, timeout: float = 10) -> None:
        """Wait until every event handed over so far has been handled and answered."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(deadline - time.monotonic(), 0))

    # --- from the SDK's threads to the main loop -----------------------------------------

    def _spawn(self, coroutine_function, *args) -> None:
        task = asyncio.ensure_future(coroutine_function(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _event_from_sdk(self, event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._spawn, self._on_event, event)
        except RuntimeError:  # the main loop is gone: shutting down
            pass

    def _card_from_sdk(self, event: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        pending = _Pending()
        try:
            self._loop.call_soon_threadsafe(self._spawn, self._on_card, event, pending)
        except RuntimeError:
            return P2CardActionTriggerResponse()
        return pending.wait(CARD_DEADLINE)

    # --- handling -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _in_turn(self, event):
        """One event at a time per chat, in arrival order (asyncio.Lock is first come, first served),
        so a quick answer is never handled before the question it answers."""
        data = event.event
        chat_id = (getattr(getattr(data, "message", None), "chat_id", None)
                   or getattr(getattr(data, "context", None), "open_chat_id", None) or getattr(data, "chat_id", None))
        entry = self._locks.setdefault(chat_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(chat_id, None)

    async def _on_event(self, event) -> None:
        async with self._in_turn(event):
            await self._handle_event(event)

    async def _on_card(self, event: P2CardActionTrigger, pending: _Pending) -> None:
        async with self._in_turn(event):
            await self._handle_card(event, pending)

    async def _handle_event(self, event) -> None:
        try:
            incoming = await self.parse(event)
            if incoming is None:
                return
            replies = await self._handler(incoming)
            reply_to = event.event.message.message_id if (
                isinstance(event, P2ImMessageReceiveV1) and incoming.chat.is_group) else None
            await self._deliver(incoming, replies, reply_to)
        except Exception:
            log.exception("failed to handle a Feishu %s event", type(event).__name__)

    async def _handle_card(self, event: P2CardActionTrigger, pending: _Pending) -> None:
        try:
            incoming = await self.parse(event)
            if incoming is None:
                pending.answer(P2CardActionTriggerResponse())
                return
            replies = await self._handler(incoming)
            toast = next((r for r in replies if r.toast), None)
            rest = [r for r in replies if r is not toast]
            message_id = event.event.context.open_message_id if event.event.context else None
            update, (pressed, image_key) = None, self._cards.get(message_id, (None, None))
            if not incoming.chat.is_group and pressed is not None and replies and not all(r.toast for r in replies):
                label = label_of(pressed, incoming.value) or incoming.value
                update = render(pressed, chosen=label, image_key=image_key)
                self._cards[message_id] = (Reply(f"{pressed.text}\n\n✓ **{label}**"), image_key)
            response: dict = {}
            if toast is not None:
                response["toast"] = {"type": "info", "content": plain(toast.text)}
            if update is not None:
                response["card"] = {"type": "raw", "data": update}
            if not pending.answer(P2CardActionTriggerResponse(response)):
                log.warning("a card action took over %.1f s; answering with messages instead", CARD_DEADLINE)
                if update is not None:
                    await self._quietly(self.api.patch(incoming.chat.id, message_id, update))
                rest = ([toast] if toast else []) + rest
            await self._deliver(incoming, rest, None)
        except Exception:
            pending.answer(P2CardActionTriggerResponse())
            log.exception("failed to handle a Feishu card action")

    async def _deliver(self, incoming: Incoming, replies: list[Reply], reply_to: str | None) -> None:
        for reply in replies:
            try:
                await self._send(incoming.chat, reply, reply_to)
            except ChatUnreachable as e:
                if incoming.chat.id not in self._unreachable_logged:
                    self._unreachable_logged.add(incoming.chat.id)
                    log.warning("Feishu chat %s is unreachable (%s); pausing it", incoming.chat.id, e)
                await self._handler(Incoming(incoming.chat, incoming.user, "left"))
                return
            except Exception:
                metrics.count("replies_failed")
                log.exception("could not deliver a reply to Feishu chat %s", incoming.chat.id)

    @staticmethod
    async def _quietly(call) -> None:
        try:
            await call
        except Exception as e:
            log.warning("Feishu call failed: %s", e)

    # --- sending ------------------------------------------------------------------------

    async def send(self, chat: Chat, reply: Reply) -> str | None:
        return await self._send(chat, reply, None)

    async def _send(self, chat: Chat, reply: Reply, reply_to: str | None) -> str:
        self._is_group[chat.id] = chat.is_group
        image_key = None
        if reply.image:  # a picture that cannot be uploaded costs only the picture
            try:
                image_key = await self.api.upload_image(reply.image)
            except ChatUnreachable:
                raise
            except Exception as e:
                log.warning("could not upload a picture for Feishu chat %s (%s); sending the text without it",
                            chat.id, e)
        message_id = await self._send_card(chat, reply, reply_to, image_key)
        for attachment in reply.files:
            try:
                file_key = await self.api.upload_file(attachment.name, attachment.data)
                await self.api.send_file(chat.id, file_key)
            except ChatUnreachable:
                raise
            except Exception as e:
                log.warning("could not send the file %s to Feishu chat %s: %s", attachment.name, chat.id, e)
                await self.api.create(chat.id, render(Reply(t("file_failed", reply.lang or "zh", name=attachment.name))))
        return message_id

    async def _send_card(self, chat: Chat, reply: Reply, reply_to: str | None, image_key: str | None) -> str:
        card = render(reply, image_key=image_key)
        if reply.key and (existing := self._keys.get((chat.id, reply.key))):
            try:
                await self.api.patch(chat.id, existing, card)
                self._cards[existing] = (dataclasses.replace(reply, image=None), image_key)
                return existing
            except FeishuError as e:  # gone, too old to edit, …: send it anew
                log.info("could not update Feishu message %s (%s); sending a new one", existing, e)
        message_id = None
        if reply_to:
            try:
                message_id = await self.api.reply(chat.id, reply_to, card)
            except FeishuError as e:
                log.info("could not reply to Feishu message %s (%s); sending to the chat", reply_to, e)
        if message_id is None:
            message_id = await self.api.create(chat.id, card)
        self._cards[message_id] = (dataclasses.replace(reply, image=None), image_key)  # keep no image bytes
        self._by_bot[message_id] = True
        if reply.key:
            self._keys[(chat.id, reply.key)] = message_id
        return message_id

    # --- parsing ------------------------------------------------------------------------

    async def parse(self, event) -> Incoming | None:
        """An SDK event (from the long connection or the webhook) → Incoming, or None to ignore."""
        event_id = event.header.event_id if getattr(event, "header", None) else None
        data = event.event
        if data is None:
            return None
        if isinstance(event, P2ImMessageReceiveV1):
            return await self._parse_message(data, event_id)
        if isinstance(event, P2CardActionTrigger):
            value = data.action.value if data.action else None
            button = value.get("data") if isinstance(value, dict) else None
            if not isinstance(button, str) or not data.operator or not data.context:
                return None
            # Who pressed and where come from the event, never from the button's value (which a
            # client can forge): the chat's kind from what the bot has seen of it, or the chat API.
            chat_id, open_id = data.context.open_chat_id, data.operator.open_id
            if not isinstance(chat_id, str) or not chat_id or not isinstance(open_id, str) or not open_id:
                return None
            is_group = await self._chat_is_group(chat_id)
            chat = Chat(self.platform, chat_id, is_group)
            user = User(self.platform, open_id, await self._name(open_id))
            return Incoming(chat, user, "button", button, is_admin=is_group and await self._is_admin(chat_id, open_id),
                            event_id=event_id)
        if isinstance(event, P2ImChatAccessEventBotP2pChatEnteredV1):  # opened the bot's private chat
            open_id = data.operator_id.open_id if data.operator_id else None
            if not isinstance(data.chat_id, str) or not data.chat_id or not isinstance(open_id, str) or not open_id:
                return None
            self._is_group[data.chat_id] = False
            return Incoming(Chat(self.platform, data.chat_id, False), User(self.platform, open_id, await self._name(open_id)),
                            "joined", event_id=event_id)
        if isinstance(event, (P2ImChatMemberBotAddedV1, P2ImChatMemberBotDeletedV1)):
            joined = isinstance(event, P2ImChatMemberBotAddedV1)
            open_id = data.operator_id.open_id if data.operator_id else ""
            self._is_group[data.chat_id] = True
            self._chat_info.pop(data.chat_id, None)
            self._unreachable_logged.discard(data.chat_id)
            user = User(self.platform, open_id or "", await self._name(open_id) if joined and open_id else "")
            return Incoming(Chat(self.platform, data.chat_id, True), user, "joined" if joined else "left",
                            event_id=event_id)
        return None

    async def _parse_message(self, data, event_id: str | None) -> Incoming | None:
        message, sender = data.message, data.sender
        if message is None or sender is None or sender.sender_type != "user" or not sender.sender_id:
            return None
        if not isinstance(message.chat_id, str) or not message.chat_id or not isinstance(sender.sender_id.open_id, str):
            return None
        # A redelivery may carry a new event id but keeps its message id (Feishu's documentation).
        event_id = f"message:{message.message_id}" if isinstance(message.message_id, str) else event_id
        media = MEDIA_TYPES.get(message.message_type or "")
        text = "" if media else _text_of(message.message_type, message.content)
        if text is None:
            return None
        is_group = message.chat_type != "p2p"
        bot_id = await self._bot_open_id()
        mentioned = False
        for mention in message.mentions or []:
            if not mention.key:
                continue
            is_bot = (mention.id is not None and mention.id.open_id == bot_id) if bot_id else mention.mentioned_type == "bot"
            mentioned = mentioned or is_bot
            text = text.replace(mention.key, "" if is_bot else f"@{mention.name or ''}")
        text = text.strip()
        if text.startswith("／"):  # a Chinese keyboard's full-width slash
            text = "/" + text[1:]
        if is_group and not mentioned and not await self._replies_to_bot(message):
            return None
        self._is_group[message.chat_id] = is_group
        open_id = sender.sender_id.open_id
        chat = Chat(self.platform, message.chat_id, is_group)
        user = User(self.platform, open_id, await self._name(open_id))
        if not text:  # a picture, a file, a voice message, or a post with no text in it
            return Incoming(chat, user, "media", media or "photo", event_id=event_id)
        command = split_command(text)
        if command:
            is_admin = is_group and await self._is_admin(message.chat_id, open_id)
            return Incoming(chat, user, "command", command[0], command[1], is_admin=is_admin, event_id=event_id)
        return Incoming(chat, user, "text", text, event_id=event_id)

    async def _replies_to_bot(self, message) -> bool:
        for parent in dict.fromkeys(filter(None, (message.parent_id, message.root_id))):
            if parent not in self._by_bot:
                try:
                    self._by_bot[parent] = await self.api.sent_by_bot(message.chat_id, parent)
                except Exception as e:
                    log.warning("cannot tell who sent Feishu message %s: %s", parent, e)
                    continue
            if self._by_bot[parent]:
                return True
        return False

    async def _bot_open_id(self) -> str | None:
        if self._bot_id is None and time.monotonic() - self._bot_id_tried > 60:
            self._bot_id_tried = time.monotonic()
            try:
                self._bot_id = await self.api.bot_open_id() or None
            except Exception as e:
                log.warning("cannot read the bot's own Feishu id (%s); treating any bot mention as ours", e)
        return self._bot_id

    async def _name(self, open_id: str) -> str:
        if open_id not in self._names:
            try:
                self._names[open_id] = await self.api.user_name(open_id)
            except ChatUnreachable:
                self._names[open_id] = ""
            except FeishuError as e:  # usually no contact permission: names stay empty
                log.debug("no Feishu display name for %s: %s", open_id, e)
                self._names[open_id] = ""
        return self._names[open_id]

    async def _chat(self, chat_id: str) -> ChatInfo | None:
        cached = self._chat_info.get(chat_id)
        if cached and time.monotonic() - cached[1] < CHAT_INFO_TTL:
            return cached[0]
        try:
            info = await self.api.chat(chat_id)
        except Exception as e:
            log.warning("cannot read Feishu chat %s: %s", chat_id, e)
            return None
        self._chat_info[chat_id] = (info, time.monotonic())
        return info

    async def _chat_is_group(self, chat_id: str) -> bool:
        if chat_id not in self._is_group:
            info = await self._chat(chat_id)
            if info is None:
                return True  # unsure: a group never has its buttons stripped and needs admins for settings
            self._is_group[chat_id] = info.mode != "p2p"
        return self._is_group[chat_id]

    async def _is_admin(self, chat_id: str, open_id: str) -> bool:
        """The group's owner or one of its managers (im.v1.chat.get: owner_id, user_manager_id_list)."""
        info = await self._chat(chat_id)
        return info is not None and (open_id == info.owner_id or open_id in info.managers)


def _text_of(message_type: str | None, content: str | None) -> str | None:
    """The text of a text or rich-text (post) message, every part of it: text, links, mentions,
    inline code, code blocks and Markdown; None for anything else."""
    try:
        body = json.loads(content or "")
    except (ValueError, TypeError):
        return None
    if not isinstance(body, dict):
        return None
    if message_type == "text":
        return body.get("text") if isinstance(body.get("text"), str) else None
    if message_type != "post":
        return None
    post = body if "content" in body else next((v for v in body.values() if isinstance(v, dict)), {})
    lines = [post["title"]] if isinstance(post.get("title"), str) and post["title"].strip() else []
    for line in post.get("content") or [] if isinstance(post.get("content"), list) else []:
        parts = []
        for item in line if isinstance(line, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("tag") in ("text", "a", "code_inline", "md", "code_block") and isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif item.get("tag") == "at" and isinstance(item.get("user_id"), str):
                parts.append(item["user_id"])
        lines.append("".join(parts))
    return "\n".join(lines)
