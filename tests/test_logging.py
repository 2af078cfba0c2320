"""Log lines as an operator reads them: text or JSON, to stderr or a file, secrets masked, and a
console chat that no scheduler line interrupts."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from bot.config import load_settings
from bot.logging_setup import configure_logging

from .conftest import write_bank

TOKEN = "123456:AAE-secret-token-value"


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in ("apscheduler", "aiohttp.access")}
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def settings(tmp_path, text: str, environ: dict | None = None):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ=environ or {})


def test_json_lines_carry_time_level_logger_message_and_traceback(tmp_path, root_logging):
    out = io.StringIO()
    configure_logging(settings(tmp_path, '[bot]\nlog_format = "json"\n[telegram]\ntoken = "1:x"\n'), out)
    logging.getLogger("bot.delivery").info("push tick: %s", "sent=3")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("bot.engine").exception("failed to handle 问题")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["level"] == "INFO" and first["logger"] == "bot.delivery" and first["message"] == "push tick: sent=3"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "failed to handle 问题" and "RuntimeError: boom" in second["exception"]


def test_secrets_are_masked_whichever_library_logs_them(tmp_path, root_logging):
    out = io.StringIO()
    configure_logging(settings(tmp_path, "", {"QUIZBOT_TELEGRAM_TOKEN": TOKEN}), out)
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/getMe", TOKEN)
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/sendMessage")
    except ConnectionError:
        logging.getLogger("some.library").exception("send failed")
    text = out.getvalue()
    assert TOKEN not in text and text.count("bot***/") == 2 and "ConnectionError" in text


def test_a_platform_bot_logs_info_the_console_only_warnings_unless_asked(tmp_path, root_logging):
    out = io.StringIO()
    configure_logging(settings(tmp_path, '[telegram]\ntoken = "1:x"\n'), out)
    logging.getLogger("quizbot.counters").info("counters for the last hour: updates=1")
    logging.getLogger("apscheduler.executors.default").info('Running job "tick"')   # never: two a minute
    assert out.getvalue().count("\n") == 1 and "INFO quizbot.counters: counters" in out.getvalue()

    for text, shown in (("", False), ('[bot]\nlog_level = "INFO"\n', True)):
        out = io.StringIO()
        configure_logging(settings(tmp_path, text), out)
        logging.getLogger("quizbot").info("console adapter started")
        logging.getLogger("quizbot").warning("something is wrong")
        assert ("console adapter started" in out.getvalue()) is shown and "something is wrong" in out.getvalue()


def test_the_console_chat_stays_clean_and_the_log_file_gets_the_lines(tmp_path):
    bank = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{bank}"\nlog_file = "bot.log"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input="/topic rag\n", capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert "什么是检索增强生成？" in done.stdout and " INFO " not in done.stdout
    log = (tmp_path / "bot.log").read_text(encoding="utf-8")
    assert "INFO quizbot: console adapter started" in log


def test_an_unwritable_log_file_is_named(tmp_path):
    (tmp_path / "config.toml").write_text('[bot]\nlog_file = "no/such/folder/bot.log"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input="", capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "[bot] log_file: cannot open no/such/folder/bot.log" in done.stderr
