"""The study modes end to end: one process running a Telegram and a Feishu adapter on one engine
(real python-telegram-bot and lark-oapi against their stand-ins), and the console."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

from adapters.feishu import FeishuAdapter
from adapters.telegram import TelegramAdapter
from bot.config import Settings
from quizbot.app import build_engine

from .conftest import write_bank
from .fakes.feishu_api import card_buttons, card_text, message_event
from .fakes.telegram_api import private
from .test_feishu import SECRET, fake, say  # noqa: F401 (fake: a fixture)
from .test_telegram import ADA, Running, api  # noqa: F401 (api: a fixture)


async def test_one_learner_on_telegram_and_feishu_keeps_every_answer(tmp_path, api, fake):
    folder = write_bank(tmp_path / "content", follow_ups=1)
    settings = Settings(bot={"content_dir": folder}, storage={"path": str(tmp_path / "q.db")},
                        telegram={"token": api.token, "api_base_url": api.base_url},
                        feishu={"app_id": fake.app_id, "app_secret": SECRET, "domain": fake.url})
    engine = await build_engine(settings)
    telegram, feishu = TelegramAdapter(settings.telegram, backoff=0.05), FeishuAdapter(settings.feishu)
    await telegram.start(engine.handle)
    await feishu.start(engine.handle)
    bot = Running(api, telegram, tmp_path / "q.db")
    try:
        chat = private(ADA)
        await bot.say(chat, ADA, "/topic rag")
        [reference] = await bot.say(chat, ADA, "Telegram 上的答案：要点二")
        await bot.press(ADA, reference, "模糊")
        await say(fake, feishu, message_event("oc_ada", "ou_ada", "/topic attention"))
        await say(fake, feishu, message_event("oc_ada", "ou_ada", "飞书上的答案：要点三"))
        [code_message] = await bot.say(chat, ADA, "/link")
        code = re.search(r"\b[A-Z2-9]{8}\b", code_message.text)[0]
        await say(fake, feishu, message_event("oc_ada", "ou_ada", f"/link {code}"))
        assert "已关联" in card_text(fake.sent("oc_ada")[-1]["card"])
        await say(fake, feishu, message_event("oc_ada", "ou_ada", "/history"))
        history = card_text(fake.sent("oc_ada")[-1]["card"])
        assert "Telegram 上的答案" in history and "飞书上的答案" in history   # one history, seen on Feishu
        with sqlite3.connect(tmp_path / "q.db") as db:
            rows = db.execute("SELECT user_key, text FROM answers ORDER BY id").fetchall()
        assert [text for _, text in rows] == ["Telegram 上的答案：要点二", "飞书上的答案：要点三"]
        assert {key for key, _ in rows} == {"telegram:101"}
        [stats] = (await bot.say(chat, ADA, "/stats"))[-1:]
        assert "已作答 2 次" in stats.text
    finally:
        await telegram.stop()
        await feishu.stop()
        await engine.store.close()


async def test_a_mock_interview_and_search_on_feishu_cards(tmp_path, fake):
    from .test_feishu import make_settings, running
    write_bank(tmp_path / "content", follow_ups=1)
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/search 分块"))
        found = fake.sent("oc_p1")[-1]
        assert any("rag-002" in label for label in card_buttons(found["card"]))
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/mock rag 1"))
        question = fake.sent("oc_p1")[-1]
        assert "第 1/1 题" in card_text(question["card"]) and "面试官" in card_text(question["card"])
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/mock stop"))
        assert "模拟面试" in card_text(fake.sent("oc_p1")[-1]["card"])


def test_follow_ups_search_and_a_mock_interview_in_the_console(tmp_path):
    folder = write_bank(tmp_path / "content", follow_ups=1)
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    lines = ["/topic rag", "要点二", "3", "1", "细节1甲", "/search 分块", "1", "/mock rag 1", "要点三", "2",
             "细节1乙", "3", "/history"]
    done = subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[1] 追问   [2] 下一题" in out and "面试官追问" in out and "✓ 细节1甲" in out
    assert "rag-002" in out and "文档如何分块？" in out
    assert "模拟面试小结" in out and "你的答案：细节1乙" in out
