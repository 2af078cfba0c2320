"""How the Telegram adapter talks to the Bot API, hardened: tokens kept out of the logs, retries of
transient failures, pacing of what Telegram limits, and receiving that survives an update the
library cannot decode (polling and our own webhook endpoint)."""
from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter, ExtBot

from bot.health import metrics

log = logging.getLogger("adapters.telegram")
# Loggers whose records could carry the token: PTB's (the API URL at DEBUG) and the HTTP client's.
_SENSITIVE_LOGGERS = ("telegram", "telegram.Bot", "telegram.ext", "telegram.ext.ExtBot", "telegram.ext.Application",
                      "telegram.ext.Updater", "telegram.ext.AIORateLimiter", "telegram.BaseRequest",
                      "telegram.HTTPXRequest", "httpx", "httpcore", "aiohttp.access", "aiohttp.server",
                      "adapters.telegram")


class Redact(logging.Filter):
    """Replaces every registered secret in a record's message and traceback text."""

    def __init__(self):
        super().__init__("quizbot-redact")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix
            return True
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


_REDACT = Redact()


def protect(*values: str) -> None:
    _REDACT.secrets.update(v for v in values if v)
    for name in _SENSITIVE_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)
    for name in ("httpx", "httpcore"):  # they log each request's URL, which holds the token
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


# --- retries ------------------------------------------------------------------------------

def transient(error: BaseException) -> bool:
    """Timeouts, network errors and 5xx (PTB raises NetworkError for those). BadRequest subclasses
    NetworkError in PTB but is permanent; 429 (RetryAfter) is the rate limiter's business."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


def log_retry(name: str):
    def before_sleep(state) -> None:
        log.warning("telegram: %s failed (%s); retry %d after %.1f s", name, state.outcome.exception(),
                    state.attempt_number, state.next_action.sleep if state.next_action else 0)
    return before_sleep


# --- receiving what the library cannot decode ----------------------------------------------

def decodable(raw, bot) -> dict | None:
    """`raw` if python-telegram-bot can decode it; else an empty update with its id (so polling
    moves past it), logged once with no personal data; None without a usable id."""
    try:
        Update.de_json(raw, bot)
        return raw
    except Exception as e:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        kinds = sorted(k for k in raw if k != "update_id") if isinstance(raw, dict) else type(raw).__name__
        metrics.count("updates_skipped")
        log.warning("telegram: skipped update %s (%s), which this version of python-telegram-bot cannot decode (%s)",
                    update_id, kinds, type(e).__name__)
        return {"update_id": update_id} if isinstance(update_id, int) and not isinstance(update_id, bool) else None


_SENT_FIELDS = ("message_id", "date", "chat", "message_thread_id")


class TolerantBot(ExtBot):
    """Decodes getUpdates results one update at a time: PTB decodes a batch as a whole and, when
    one update fails, refetches the same batch forever (one CRITICAL log line each time).

    A message the bot sent comes back with only its id, date, chat and topic: the adapter uses
    nothing else, and decoding the rest (text, entities, keyboard, sender) was a tenth of the
    CPU a pushed message costs."""

    async def _post(self, endpoint: str, data=None, **kwargs):
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            result = [u for u in (decodable(raw, self) for raw in result) if u is not None]
        elif endpoint.startswith("send") and isinstance(result, dict) and "message_id" in result:
            result = {name: result[name] for name in _SENT_FIELDS if name in result}
        return result


class SendLimiter(AIORateLimiter):
    """Paces what Telegram limits (sending, editing): ~30 a second overall and 20 a minute per
    group. Look-ups (getChatMember for an admin check, answering a button press) do not spend a
    group's allowance, so a busy group cannot delay them."""

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        if not endpoint.startswith(("send", "edit", "copy", "forward")):
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


class WebhookServer:
    """POST <path> with Telegram's secret header → the application's update queue. Anything
    without the secret gets 403; a body that is not an update gets 400; an update PTB cannot
    decode is acknowledged (200) and skipped, or Telegram would redeliver it for hours."""

    def __init__(self, bot, queue, listen: str, port: int, path: str, secret: str):
        self.bot, self.queue, self.listen, self.port, self.path, self.secret = bot, queue, listen, port, path, secret
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            raw = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(raw, dict):
            return web.Response(status=400)
        raw = decodable(raw, self.bot)
        if raw is not None:
            update = Update.de_json(raw, self.bot)
            self.bot.insert_callback_data(update)
            await self.queue.put(update)
        return web.Response(status=200)


def webhook_path(url: str) -> str:
    return "/" + urlsplit(url).path.strip("/")


def api_host(api_base_url: str) -> str:
    """The server part of the Bot API URL, without the token: for messages people read."""
    parts = urlsplit(api_base_url)
    return f"{parts.scheme}://{parts.netloc}"


def file_url(api_base_url: str) -> str:
    """https://api.telegram.org/bot → https://api.telegram.org/file/bot (also with a {token} slot)."""
    head, found, tail = api_base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if found else api_base_url
