"""Telegram through python-telegram-bot 22: updates → Incoming, Reply → Telegram HTML messages.

Receiving: long polling (`getUpdates`) or our webhook endpoint (aiohttp, checking
`X-Telegram-Bot-Api-Secret-Token`). Updates are handled concurrently, one at a time per chat in
arrival order, so a busy group never holds back anybody else; an update the library cannot
decode is skipped (adapters/telegram_transport.py), and a failing one is logged and never stops
receiving.

Sending: a rate limiter paces sends (about 30/s overall, 20/min per group) and retries 429s after
their `retry_after`; network errors, timeouts and 5xx are retried with back-off (tenacity); 403
(blocked by the user, removed from the group) becomes `ChatUnreachable`. A reply goes to the
forum topic its event came from. A picture or file that cannot be sent costs only itself.

The adapter holds no quiz logic: it parses, hands the engine an Incoming, and renders what comes
back (adapters/telegram_render.py). The bot token is kept out of the logs.
"""
from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import secrets
import time
from collections import OrderedDict

# Opt in now to PTB's coming timedelta `retry_after`; otherwise every 429 logs a deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random
from telegram import BotCommand, BotCommandScopeDefault, InputFile, LinkPreviewOptions, Message, Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.config import ConfigError, TelegramSettings
from bot.health import metrics
from bot.i18n import COMMAND_MENU, t
from bot.markup import plain
from bot.models import Chat, ChatUnreachable, Incoming, Reply, User

from .base import Handler, split_command
from .telegram_render import MAX_MESSAGE, keyboard, render, units
from .telegram_request import AiohttpRequest
from .telegram_transport import (SendLimiter, TolerantBot, WebhookServer, api_host, file_url, log_retry, protect,
                                 transient, webhook_path)

__all__ = ["MAX_MESSAGE", "TelegramAdapter", "file_url", "render"]
log = logging.getLogger(__name__)

MAX_TOAST = 200             # answerCallbackQuery text
ADMIN_CACHE_SECONDS = 60    # getChatMember answers are reused this long
HTTP_CONNECTIONS = 256      # at most, to the Bot API, opened as needed; shared by replies and pushes
POOL_TIMEOUT_SECONDS = 30   # a request may wait this long for a free connection during a big push
KEYED_MESSAGES = 10_000     # (chat, key) → message ids remembered for in-place edits
CONCURRENT_UPDATES = 64     # updates handled at once (one at a time per chat)
STOP_GRACE_SECONDS = 5      # replies still waiting for a group's allowance are dropped after this at shutdown
STARTUP_RETRY_SECONDS = (10, 300)  # first and longest wait between tries to reach the Bot API at start-up
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]
GROUP_TYPES = {ChatType.GROUP, ChatType.SUPERGROUP}
_ADDRESSED = re.compile(r"/[^\s@/]+@(\S+)")
_MEDIA = ("photo", "voice", "video", "video_note", "audio", "document", "sticker", "animation")


class TelegramAdapter:
    platform = "telegram"

    def __init__(self, settings: TelegramSettings, attempts: int = 4, backoff: float = 0.5,
                 startup_retry: tuple[float, float] = STARTUP_RETRY_SECONDS):
        self.settings = settings
        self.attempts, self.backoff, self.startup_retry = attempts, backoff, startup_retry
        self.stop_grace = STOP_GRACE_SECONDS
        self.app: Application | None = None
        self.username = ""
        self.bot_id = 0
        self.last_update_id = 0          # the newest update handled
        self.handled: set[int] = set()   # ids of the updates handled so far (for tests and diagnostics)
        self._handler: Handler | None = None
        self._keyed: OrderedDict[tuple[int, str], list[int]] = OrderedDict()
        self._admins: dict[tuple[int, int], tuple[bool, float]] = {}
        self._turns: dict[int, list] = {}          # chat id → [lock, updates holding or waiting for it]
        self._working: set[asyncio.Task] = set()   # updates being handled
        self._webhook: WebhookServer | None = None
        self._webhook_secret = settings.webhook_secret.get_secret_value() or secrets.token_urlsafe(32)

    # --- lifecycle ------------------------------------------------------------------------

    def _build(self) -> Application:
        token = self.settings.token.get_secret_value()
        base = self.settings.api_base_url
        # aiohttp rather than PTB's default httpx: half the CPU per request (adapters/telegram_request.py).
        bot = TolerantBot(token, base_url=base, base_file_url=file_url(base),
                          request=AiohttpRequest(connection_pool_size=HTTP_CONNECTIONS, pool_timeout=POOL_TIMEOUT_SECONDS),
                          get_updates_request=AiohttpRequest(connection_pool_size=1),
                          rate_limiter=SendLimiter(overall_max_rate=self.settings.messages_per_second, max_retries=3))
        return ApplicationBuilder().bot(bot).concurrent_updates(CONCURRENT_UPDATES).job_queue(None).build()

    async def start(self, handler: Handler) -> None:
        protect(self.settings.token.get_secret_value(), self._webhook_secret)
        if self.settings.mode == "webhook" and not self.settings.webhook_url:
            raise ConfigError('[telegram] mode = "webhook" needs webhook_url (the public URL Telegram calls)')
        self._handler = handler
        self.app = app = self._build()
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        try:
            await self._initialize(app)
        except BaseException:
            await self._shutdown()
            raise
        self.username, self.bot_id = app.bot.username or "", app.bot.id
        await self._set_commands()
        await self._set_descriptions()
        try:
            if self.settings.mode == "webhook":
                await self._start_webhook()
            else:
                await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, error_callback=self._polling_error)
            await app.start()
        except BaseException:
            await self.stop()
            raise
        log.info("telegram: @%s receiving updates by %s", self.username, self.settings.mode)

    async def _initialize(self, app: Application) -> None:
        """getMe, until the Bot API answers: a network that is down at boot is waited out; a
        rejected token stops at once."""
        wait, longest = self.startup_retry
        while True:
            try:
                await app.initialize()
                return
            except InvalidToken:
                raise ConfigError("Telegram rejected the bot token: check [telegram] token") from None
            except NetworkError as e:
                if isinstance(e, BadRequest):
                    raise
                log.warning("telegram: cannot reach %s (%s); retrying in %g s",
                            api_host(self.settings.api_base_url), _reason(e), wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, longest)

    async def _start_webhook(self) -> None:
        url = self.settings.webhook_url
        self._webhook = WebhookServer(self.app.bot, self.app.update_queue, self.settings.webhook_listen,
                                      self.settings.webhook_port, webhook_path(url), self._webhook_secret)
        await self._webhook.start()
        await self._call(self.app.bot.set_webhook, url, secret_token=self._webhook_secret,
                         allowed_updates=ALLOWED_UPDATES)

    async def _set_commands(self) -> None:
        """The command menu in Chinese and English; Chinese for every other language."""
        bot = self.app.bot
        menus = [("zh", COMMAND_MENU["zh"]), ("en", COMMAND_MENU["en"]), (None, COMMAND_MENU["zh"])]
        for language, menu in menus:
            try:
                await self._call(bot.set_my_commands, [BotCommand(c, d) for c, d in menu],
                                 scope=BotCommandScopeDefault(), language_code=language)
            except TelegramError as e:
                log.warning("telegram: could not set the %s command menu: %s", language or "default", e)

    async def _set_descriptions(self) -> None:
        """What an empty chat with the bot and its profile say, in Chinese and English; Chinese for
        every other language. A failure costs only the description."""
        bot = self.app.bot
        for language in ("zh", "en", None):
            lang = language or "zh"
            for what, call, text in (
                    ("description", bot.set_my_description, t("bot_description", lang)),
                    ("short description", bot.set_my_short_description, t("bot_short_description", lang))):
                try:
                    await self._call(call, text, language_code=language)
                except TelegramError as e:
                    log.warning("telegram: could not set the %s %s: %s", language or "default", what, e)

    async def stop(self) -> None:
        app = self.app
        if app is None:
            return
        try:
            if app.updater and app.updater.running:
                await app.updater.stop()
            if self._webhook is not None:
                await self._webhook.stop()
            # Replies still waiting for a group's allowance would hold the shutdown for minutes.
            if self._working:
                await asyncio.wait(set(self._working), timeout=self.stop_grace)
                for task in self._working:
                    task.cancel()
            if app.running:
                await app.stop()
        except Exception as e:
            log.warning("telegram: stopping: %s", e)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            try:
                await app.shutdown()
            except Exception as e:  # already half shut down
                log.debug("telegram: shutdown: %s", e)

    def _polling_error(self, error: TelegramError) -> None:
        log.warning("telegram: polling failed (%s); PTB retries with back-off", error)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)

    # --- receiving -------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Updates arrive concurrently; those of one chat wait their turn (asyncio.Lock is first
        come, first served), so an answer is never handled before the question it answers."""
        task = asyncio.current_task()
        self._working.add(task)
        chat = update.effective_chat
        turn = self._turns.setdefault(chat.id if chat else 0, [asyncio.Lock(), 0])
        turn[1] += 1
        try:
            async with turn[0]:
                await self._dispatch(update)
        except asyncio.CancelledError:
            log.warning("telegram: gave up replying to update %s at shutdown", update.update_id)
        except Exception:  # never let one update stop the others
            log.exception("telegram: failed to handle update %s", update.update_id)
        finally:
            turn[1] -= 1
            if turn[1] == 0:
                self._turns.pop(chat.id if chat else 0, None)
            self._working.discard(task)
            self.handled.add(update.update_id)
            self.last_update_id = max(self.last_update_id, update.update_id)

    async def _dispatch(self, update: Update) -> None:
        query = update.callback_query
        answered = False
        try:
            incoming = await self.parse(update)
            if incoming is None:
                return
            replies = await self._handler(incoming)
            toast = next((r for r in replies if r.toast), None) if query else None
            if query is not None:
                answered = await self._answer(query, plain(toast.visible_text) if toast else None)
                if not incoming.chat.is_group:
                    await self._mark_pressed(query)
            for reply in replies:
                if reply is toast:
                    continue
                try:
                    await self.send(incoming.chat, reply)
                except ChatUnreachable as e:
                    log.warning("telegram: chat %s is unreachable (%s): pausing it", incoming.chat.id, e)
                    await self._handler(Incoming(incoming.chat, incoming.user, "left"))
                    break
                except TelegramError as e:
                    metrics.count("replies_failed")
                    log.warning("telegram: could not send a reply to chat %s: %s", incoming.chat.id, e)
        finally:
            if query is not None and not answered:  # a press is always answered, or its button spins
                await self._answer(query, None)

    async def parse(self, update: Update) -> Incoming | None:
        """One Telegram update → Incoming, or None for what the bot ignores."""
        event_id = str(update.update_id)
        if update.my_chat_member is not None:
            return self._membership(update, event_id)
        if update.callback_query is not None:
            query = update.callback_query
            chat = update.effective_chat
            if chat is None or query.data is None or query.from_user is None or query.from_user.is_bot:
                return None
            is_group = chat.type in GROUP_TYPES
            admin = is_group and await self._is_admin(chat.id, query.from_user.id)
            pressed = query.message if isinstance(query.message, Message) else None
            return Incoming(self._chat(chat, pressed), self._user(query.from_user), "button", query.data,
                            is_admin=admin, event_id=event_id)
        message = update.message
        if message is not None and message.chat is None:
            return None
        if message is not None and message.migrate_to_chat_id:  # the group became a supergroup
            return Incoming(self._chat(message.chat), User(self.platform, "0"), "moved",
                            str(message.migrate_to_chat_id), event_id=event_id)
        if message is None or update.effective_chat is None:
            return None  # edits, channel posts
        chat, sender = message.chat, message.from_user
        if sender is None or (sender.is_bot and not message.sender_chat):
            return None
        is_group = chat.type in GROUP_TYPES
        if chat.type != ChatType.PRIVATE and not is_group:
            return None
        text = message.text if message.text is not None else message.caption
        command = split_command(text) if text and text.startswith("/") and message.text is not None else None
        if command is not None:
            addressed = _ADDRESSED.match(text.strip())
            if addressed and addressed[1].lower() != self.username.lower():
                return None  # /cmd@otherbot
            admin = is_group and await self._is_admin(chat.id, sender.id, message)
            return Incoming(self._chat(chat, message), self._user(sender), "command", command[0], command[1],
                            is_admin=admin, event_id=event_id)
        if is_group:
            replying = message.reply_to_message is not None and message.reply_to_message.from_user is not None \
                and message.reply_to_message.from_user.id == self.bot_id
            mentioned = self._mentions_me(message)
            if not (replying or mentioned):
                return None  # group chatter not meant for the bot
            if mentioned and text:
                text = re.sub(rf"@{re.escape(self.username)}\b", " ", text, flags=re.I).strip()
        where, who = self._chat(chat, message), self._user(sender)
        if message.forward_origin is not None:  # somebody else's words are not the learner's answer
            return Incoming(where, who, "media", "forward", event_id=event_id)
        if text is None or (not text.strip() and message.text is None):
            kind = next((k for k in _MEDIA if getattr(message, k, None)), None)
            if kind is None:
                return None  # service messages: pins, new members, …
            return Incoming(where, who, "media", kind, event_id=event_id)
        return Incoming(where, who, "text", text, event_id=event_id)

    def _membership(self, update: Update, event_id: str) -> Incoming | None:
        change = update.my_chat_member
        if change.old_chat_member is None or change.new_chat_member is None or change.chat is None \
                or change.from_user is None:
            return None  # half an update: nothing to act on
        old, new = change.old_chat_member.status, change.new_chat_member.status
        gone = {ChatMemberStatus.LEFT, ChatMemberStatus.BANNED}
        chat = change.chat
        if chat.type in GROUP_TYPES:
            if new in gone and old not in gone:
                kind = "left"
            elif old in gone and new not in gone:
                kind = "joined"
            else:
                return None  # promoted, restricted, …
        elif chat.type == ChatType.PRIVATE and new == ChatMemberStatus.BANNED:
            kind = "left"  # the user blocked the bot: pause their pushes
        else:
            return None
        return Incoming(self._chat(chat), self._user(change.from_user), kind, event_id=event_id)

    def _mentions_me(self, message: Message) -> bool:
        if not self.username:
            return False
        found = {**message.parse_entities(["mention", "text_mention"]),
                 **message.parse_caption_entities(["mention", "text_mention"])}
        for entity, value in found.items():
            if entity.type == "text_mention" and entity.user and entity.user.id == self.bot_id:
                return True
            if value.lower() == f"@{self.username}".lower():
                return True
        return False

    async def _is_admin(self, chat_id: int, user_id: int, message: Message | None = None) -> bool:
        if message is not None and message.sender_chat is not None and message.sender_chat.id == chat_id:
            return True  # an anonymous admin, posting as the group itself
        cached = self._admins.get((chat_id, user_id))
        now = time.monotonic()
        if cached and cached[1] > now:
            return cached[0]
        try:
            member = await self._call(self.app.bot.get_chat_member, chat_id, user_id)
        except TelegramError as e:
            log.warning("telegram: could not check whether %s is an admin of %s: %s", user_id, chat_id, e)
            return False
        admin = member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
        if len(self._admins) > KEYED_MESSAGES:
            self._admins.clear()
        self._admins[(chat_id, user_id)] = (admin, now + ADMIN_CACHE_SECONDS)
        return admin

    def _chat(self, chat, message: Message | None = None) -> Chat:
        """The chat, and the forum topic when the message was sent in one."""
        thread = None
        if message is not None and message.is_topic_message and message.message_thread_id:
            thread = str(message.message_thread_id)
        return Chat(self.platform, str(chat.id), chat.type in GROUP_TYPES, thread)

    def _user(self, user) -> User:
        name = user.full_name or (user.username or "")
        return User(self.platform, str(user.id), name, user.language_code)

    async def _answer(self, query, text: str | None) -> bool:
        try:
            if text and len(text) > MAX_TOAST:
                text = text[: MAX_TOAST - 1] + "…"
            await self._call(query.answer, text=text or None)
            return True
        except TelegramError as e:  # too late (> 15 s) or already answered
            log.info("telegram: could not answer a button press: %s", e)
            return True

    async def _mark_pressed(self, query) -> None:
        """In a private chat the pressed message shows the choice and loses its buttons."""
        message = query.message
        if not isinstance(message, Message) or message.reply_markup is None:
            return
        label = next((b.text for row in message.reply_markup.inline_keyboard for b in row
                      if b.callback_data == query.data), None)
        try:
            if label is not None and message.text and units(message.text + label) + 3 <= MAX_MESSAGE:
                await self._call(self.app.bot.edit_message_text, message.text_html + f"\n\n✓ {html.escape(label)}",
                                 chat_id=message.chat.id, message_id=message.message_id,
                                 parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
            else:
                await self._call(self.app.bot.edit_message_reply_markup, chat_id=message.chat.id,
                                 message_id=message.message_id, reply_markup=None)
        except TelegramError as e:
            log.info("telegram: could not mark the pressed message: %s", e)

    # --- sending ---------------------------------------------------------------------------

    async def _call(self, fn, *args, **kwargs):
        """One Bot API call, retried on network errors, timeouts and 5xx."""
        async for attempt in AsyncRetrying(
                retry=retry_if_exception(transient), stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=self.backoff, max=10) + wait_random(0, self.backoff / 2),
                before_sleep=log_retry(getattr(fn, "__name__", "request")), reraise=True):
            with attempt:
                return await fn(*args, **kwargs)

    async def push(self, chat: Chat, reply: Reply) -> str | None:
        """A message nobody asked for (the daily question, the digest): with [telegram]
        paid_broadcast it goes with allow_paid_broadcast, beyond the free ~30/s, for Stars."""
        return await self.send(chat, reply, paid=self.settings.paid_broadcast)

    async def send(self, chat: Chat, reply: Reply, paid: bool = False) -> str | None:
        """Send (or, for a keyed reply already sent, edit) one reply; returns the last message id.
        Raises ChatUnreachable when Telegram says the bot was blocked or removed."""
        if self.app is None:
            raise RuntimeError("the Telegram adapter is not started")
        chat_id = int(chat.id)
        try:
            return await self._deliver(chat_id, reply, chat.thread, paid)
        except ChatMigrated as e:  # a group became a supergroup: its new id receives the message
            log.warning("telegram: chat %s moved to %s", chat_id, e.new_chat_id)
            await self._moved(chat_id, e.new_chat_id)
            return await self._deliver(e.new_chat_id, reply, None, paid)
        except Forbidden as e:
            raise ChatUnreachable(f"telegram chat {chat_id}: {e.message}") from e
        except BadRequest as e:
            if "chat not found" in e.message.lower():
                raise ChatUnreachable(f"telegram chat {chat_id}: {e.message}") from e
            raise

    async def _moved(self, old_id: int, new_id: int) -> None:
        """Tell the engine, so the chat's history and subscription follow it to the new id."""
        if self._handler is not None:
            self._keyed = OrderedDict(((new_id if c == old_id else c, k), v) for (c, k), v in self._keyed.items())
            await self._handler(Incoming(Chat(self.platform, str(old_id), True), User(self.platform, "0"), "moved",
                                         str(new_id)))

    async def _extra(self, what: str, call, *args, **kwargs):
        """A picture or file: if it cannot be sent, the text still goes (a chat that is gone still raises)."""
        try:
            return await self._call(call, *args, **kwargs)
        except (Forbidden, ChatMigrated):
            raise
        except TelegramError as e:
            log.warning("telegram: could not send the %s (%s); sending the text without it", what, e)
            return None

    async def _deliver(self, chat_id: int, reply: Reply, thread: str | None, paid: bool = False) -> str | None:
        bot = self.app.bot
        chunks = render(reply)
        markup = keyboard(reply)
        where = {"message_thread_id": int(thread)} if thread else {}
        if paid:
            where["allow_paid_broadcast"] = True
        last: int | None = None
        if reply.image:
            photo = await self._extra("picture", bot.send_photo, chat_id, reply.image,
                                      reply_markup=markup if not chunks else None, **where)
            last = photo.message_id if photo else None
        ids = []
        if chunks:
            slot = (chat_id, reply.key) if reply.key else None
            if slot and slot in self._keyed and len(self._keyed[slot]) == len(chunks):
                if await self._edit(chat_id, self._keyed[slot], chunks, markup):
                    self._keyed.move_to_end(slot)
                    return str(self._keyed[slot][-1])
            for number, chunk in enumerate(chunks, start=1):
                sent = await self._call(bot.send_message, chat_id, chunk, parse_mode=ParseMode.HTML,
                                        reply_markup=markup if number == len(chunks) else None,
                                        link_preview_options=LinkPreviewOptions(is_disabled=True), **where)
                ids.append(sent.message_id)
            if slot:
                self._keyed[slot] = ids
                self._keyed.move_to_end(slot)
                while len(self._keyed) > KEYED_MESSAGES:
                    self._keyed.popitem(last=False)
        for attachment in reply.files:
            document = await self._extra(f"file {attachment.name}", bot.send_document, chat_id,
                                         InputFile(attachment.data, filename=attachment.name), **where)
            if document is None:
                await self._call(bot.send_message, chat_id, html.escape(t("file_failed", reply.lang or "zh",
                                                                          name=attachment.name)), **where)
            else:
                ids.append(document.message_id)
        last = ids[-1] if ids else last
        return str(last) if last is not None else None

    async def _edit(self, chat_id: int, ids: list[int], chunks: list[str], markup) -> bool:
        """Edit a keyed reply's messages in place; False if they are gone (then it is sent anew)."""
        for number, (message_id, chunk) in enumerate(zip(ids, chunks), start=1):
            try:
                await self._call(self.app.bot.edit_message_text, chunk, chat_id=chat_id, message_id=message_id,
                                 parse_mode=ParseMode.HTML, reply_markup=markup if number == len(chunks) else None,
                                 link_preview_options=LinkPreviewOptions(is_disabled=True))
            except BadRequest as e:
                if "not modified" in e.message.lower():
                    continue
                log.info("telegram: could not edit message %s in %s (%s): sending it anew", message_id, chat_id, e)
                return False
        return True


def _reason(error: BaseException) -> str:
    """A network failure in a few words ("connection refused", "timed out")."""
    text = str(error).lower()
    if "refused" in text or "connecterror" in text or "all connection attempts failed" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown host"
    return " ".join(str(error).split())[:120]
