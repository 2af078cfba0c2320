"""Where the bot's log lines go and what they look like (`[bot] log_format`, `log_file`, `log_level`).

- text: `2026-03-02 09:00:00,123 INFO bot.delivery: push tick: …`; json: one object per line
  (time in UTC, level, logger, message, and the traceback as `exception`), for a log collector.
- With `log_file` the lines are appended there (a WatchedFileHandler: logrotate may move the file).
- In console mode the terminal is the chat, so without `log_file` only warnings and errors reach
  stderr, unless `log_level` is set in the config.
- Every configured secret is masked in every line, whatever logger wrote it; APScheduler's
  "Running job …" lines (two a minute) are kept out below WARNING.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone
from typing import TextIO

from pydantic import SecretStr

from .config import ConfigError, Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("apscheduler", "aiohttp.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info or record.exc_text:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class Redact(logging.Filter):
    """Masks the given secrets in a record's message and arguments."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = self._mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = self._mask(logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = self._mask(record.exc_text)
        return True


def secrets_of(settings: Settings) -> list[str]:
    """Every SecretStr value in every section (tokens, app secrets, API keys)."""
    values = []
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        for name in type(section).model_fields:
            value = getattr(section, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
    return values


def console_mode(settings: Settings) -> bool:
    return not (settings.telegram.enabled or settings.feishu.enabled)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Install the one root handler `quizbot run` logs through; returns it."""
    bot = settings.bot
    level = bot.log_level
    if console_mode(settings) and bot.log_file is None and "log_level" not in bot.model_fields_set:
        level = "WARNING"  # the terminal is the chat: keep scheduler and tick lines out of it
    if bot.log_file is not None:
        try:
            handler: logging.Handler = logging.handlers.WatchedFileHandler(bot.log_file, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"[bot] log_file: cannot open {bot.log_file}: {e.strerror or e}") from None
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if bot.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redact(secrets_of(settings)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
