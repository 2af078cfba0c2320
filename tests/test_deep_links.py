"""Deep links and discovery: `/start topic_rag` (t.me/<bot>?start=topic_rag) opens on that topic,
and the Telegram bot describes itself (setMyDescription / setMyShortDescription) at start-up."""
from __future__ import annotations

import logging

import pytest

from bot.i18n import t

from .conftest import buttons, person
from .fakes.telegram_api import FakeBotAPI, private, user
from .test_telegram import running


async def test_a_deep_link_welcomes_a_newcomer_then_asks_on_that_topic(engine, store):
    p = person(engine)
    welcome, question = await p.say("/start topic_rag")
    assert welcome.text.startswith("你好，Ada！") and welcome.buttons == ()
    assert "检索增强生成" in question.text and "什么是检索增强生成？" in question.text
    assert set(buttons(question).values()) == {"reveal:1", "skip:1"}
    assert (await store.one("SELECT topic FROM chats"))["topic"] == "rag"   # like /topic rag: the chat's focus
    [again] = await p.say("/start TOPIC_rlhf")                             # known by now: just the question
    assert "奖励模型怎么训练？" in again.text


@pytest.mark.parametrize("payload", ["topic_quantum", "ref-42", "topic_", "topic_rag_extra"])
async def test_any_other_payload_just_welcomes(engine, payload):
    [welcome] = await person(engine).say(f"/start {payload}")
    assert welcome.text.startswith("你好，Ada！") and set(buttons(welcome).values()) == {"next", "topics", "subscribe", "plan"}


@pytest.fixture
async def api():
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


async def test_telegram_describes_the_bot_and_follows_a_deep_link(tmp_path, api):
    async with running(tmp_path, api) as bot:
        assert api.descriptions == {"zh": t("bot_description", "zh"), "en": t("bot_description", "en"),
                                    "": t("bot_description", "zh")}
        assert api.short_descriptions == {"zh": t("bot_short_description", "zh"),
                                          "en": t("bot_short_description", "en"), "": t("bot_short_description", "zh")}
        dan = user(301, "Dan", lang="en")
        welcome, question = await bot.say(private(dan), dan, "/start topic_rag")  # what the deep link sends
        assert welcome.text.startswith("Hi, Dan!") and "Retrieval-Augmented Generation" in question.text
        assert list(question.buttons) == ["Show answer", "Skip"]
        [reference] = await bot.say(private(dan), dan, "retrieve, then generate")
        assert "Reference answer" in reference.text
    assert bot.rows("SELECT question_id FROM answers") == [("rag-001",)]


async def test_a_description_telegram_refuses_is_logged_and_the_bot_runs_on(tmp_path, api, caplog):
    api.fail("setMyDescription", 400, times=3, description="Bad Request: description is too long")
    api.fail("setMyShortDescription", 500, times=100)   # every try, retries included
    caplog.set_level(logging.WARNING)
    async with running(tmp_path, api) as bot:
        ada = user(101, "Ada")
        [welcome] = await bot.say(private(ada), ada, "/start")
        assert welcome.text.startswith("你好，Ada！")
    assert api.descriptions == {} and api.short_descriptions == {}
    assert "could not set the zh description" in caplog.text and "could not set the default short description" in caplog.text
