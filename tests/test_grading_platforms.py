"""Grading seen through the platforms: the marks and the suggested rating reach the reply, and a
slow LLM grader delays neither the next update on Telegram nor the card-action answer on Feishu."""
from __future__ import annotations

import time

import pytest

from bot.config import Settings

from .conftest import write_bank
from .fakes.chat_completions import FakeChatCompletions
from .fakes.feishu_api import card_event, card_text, card_values, message_event
from .test_feishu import SECRET, fake, running as feishu_running, say  # noqa: F401 (fake: a fixture)
from .fakes.telegram_api import private
from .test_telegram import ADA, api, running, until  # noqa: F401 (api: a fixture)


@pytest.fixture
async def llm():
    server = await FakeChatCompletions().start()
    yield server
    await server.stop()


async def test_telegram_shows_marks_then_the_llm_verdict_without_holding_up_the_next_update(tmp_path, api, llm):
    llm.verdict([0, 1], 3, "要点三没有提到。")
    llm.delay = 2.0                                                    # a slow model
    async with running(tmp_path, api, grader={"base_url": llm.base_url, "model": "m", "api_key": "k"}) as bot:
        chat = private(ADA)
        await bot.say(chat, ADA, "/topic rag")
        [reference] = await bot.say(chat, ADA, "要点二我知道")
        assert "✓ 要点二" in reference.text and "✗ 要点三" in reference.text   # local marks at once
        assert any(label.endswith("✓建议") for label in reference.buttons)
        started = time.monotonic()
        [help_reply] = await bot.say(chat, ADA, "/help")                # while the LLM is still thinking
        assert time.monotonic() - started < 1.5 and "/next" in help_reply.text
        await until(lambda: "要点三没有提到" in reference.text)          # the reference is edited in place
        assert reference.edits >= 1 and "覆盖了 2/3 个" in reference.text and "答对 ✓建议" in reference.buttons


async def test_feishu_answers_the_card_action_in_time_while_the_llm_grades(tmp_path, fake, llm):
    llm.verdict([2], 2, "只覆盖了要点三。")
    llm.delay = 4.0                                                    # longer than Feishu's 3 s for a card action
    folder = write_bank(tmp_path / "content")
    settings = Settings(bot={"content_dir": folder}, storage={"path": str(tmp_path / "q.db")},
                        feishu={"app_id": fake.app_id, "app_secret": SECRET, "domain": fake.url},
                        grader={"base_url": llm.base_url, "model": "m", "api_key": "k"})
    async with feishu_running(settings) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        question = fake.sent("oc_p1")[-1]
        started = time.monotonic()
        answer = await say(fake, adapter, card_event("oc_p1", "ou_ada", card_values(question["card"])["看答案"],
                                                      question["message_id"]))
        assert answer["code"] == 200 and time.monotonic() - started < 3    # answered before the deadline
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "要点三"))
        reference = fake.sent("oc_p1")[-1]
        assert "✓ 要点三" in card_text(reference["card"])                  # the local verdict, at once
        await until(lambda: "只覆盖了要点三" in card_text(fake.messages[reference["message_id"]]["card"]))
        assert fake.messages[reference["message_id"]]["updates"] >= 1     # patched in place
