"""The Telegram adapter end to end: the real python-telegram-bot, polling (or a webhook) against a
stand-in Bot API on 127.0.0.1, the real engine on a temp SQLite file. Tests play the people and
assert what they would see in Telegram and what got stored."""
from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.telegram import MAX_MESSAGE, TelegramAdapter, file_url, render
from bot.config import ConfigError, Settings
from bot.i18n import COMMAND_MENU
from bot.markup import plain
from bot.models import Button, Chat, ChatUnreachable, Point, Reply, Section
from quizbot.app import build_delivery, build_engine

from .conftest import TOPICS, write_bank
from .fakes.telegram_api import FakeBotAPI, Sent, group, private, user

TIMEOUT = 15  # seconds: a bound on every wait, never an expectation


async def until(predicate, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def api():
    fake = await FakeBotAPI().start()
    yield fake
    await fake.stop()


@dataclass
class Running:
    api: FakeBotAPI
    adapter: TelegramAdapter
    db_path: Path
    delivery: object = None  # the daily push, wired as quizbot run wires it

    async def handled(self, update: dict) -> None:
        await until(lambda: update["update_id"] in self.adapter.handled)

    async def say(self, chat: dict, sender: dict, text: str, reply_to: Sent | None = None, **extra) -> list[Sent]:
        """Send a message as `sender`; returns the messages the bot sent (anywhere) in response."""
        before = len(self.api.order)
        await self.handled(self.api.message(chat, sender, text, reply_to, **extra))
        return [self.api.messages[key] for key in self.api.order[before:]]

    async def press(self, sender: dict, message: Sent, label_or_data: str) -> tuple[list[Sent], dict | None]:
        """Press a button (by label, or forged data); returns new messages and the callback answer."""
        data = message.buttons.get(label_or_data, label_or_data)
        before, calls = len(self.api.order), len(self.api.calls)
        await self.handled(self.api.press(sender, message, data))
        answers = self.api.calls_to("answerCallbackQuery", calls)
        assert len(answers) == 1, "every press is answered exactly once"
        return [self.api.messages[key] for key in self.api.order[before:]], answers[0].params

    def rows(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(sql, params).fetchall()


@asynccontextmanager
async def running(tmp_path: Path, api: FakeBotAPI, topics: dict = TOPICS, grader: dict | None = None, **telegram):
    folder = write_bank(tmp_path / "content", topics)
    settings = Settings(bot={"content_dir": folder}, storage={"path": str(tmp_path / "q.db")}, grader=grader or {},
                        telegram={"token": api.token, "api_base_url": api.base_url, **telegram})
    engine = await build_engine(settings)
    adapter = TelegramAdapter(settings.telegram, backoff=0.05)
    engine.send_later_with(adapter.send)  # as quizbot run wires it
    try:
        await adapter.start(engine.handle)
        yield Running(api, adapter, tmp_path / "q.db", build_delivery(settings, engine, [adapter]))
    finally:
        await adapter.stop()
        await engine.store.close()


ADA = user(101, "Ada")
ALICE, BOB, CAROL = user(201, "Alice"), user(202, "<Bob & Co>"), user(203, "Carol")
DAN = user(204, "Dan", lang="en")
GROUP = group(-100500)


# --- a private chat ---------------------------------------------------------------------------


async def test_a_group_upgraded_to_a_supergroup_keeps_its_push_and_its_question(tmp_path, api):
    api.admins[GROUP["id"]] = {ALICE["id"]: "creator"}
    async with running(tmp_path, api) as bot:
        await bot.say(GROUP, ALICE, "/subscribe 09:00 UTC")
        supergroup = group(-100777)
        api.migrated[GROUP["id"]] = supergroup["id"]
        with sqlite3.connect(bot.db_path) as db:  # the push is due now
            db.execute("UPDATE chats SET next_push_utc = strftime('%Y-%m-%dT%H:%M:00+00:00', 'now', '-1 minutes'), "
                       "push_time = strftime('%H:%M', 'now', '-1 minutes')")
        report = await bot.delivery.tick()
        assert report.sent == 1
        [question] = api.sent_to(supergroup["id"])                       # delivered to the new id
        assert "每日一题" in question.text
        [board] = await bot.say(supergroup, BOB, "我的答案", reply_to=question)
        assert "参考答案" in board.text                                  # the open question followed the group
        assert bot.rows("SELECT key, subscribed FROM chats WHERE is_group = 1") == [("telegram:-100777", 1)]

async def test_private_study_session(tmp_path, api):
    async with running(tmp_path, api) as bot:
        assert [c.method for c in api.calls[:1]] == ["getMe"]
        assert api.commands["zh"] == api.commands[""] == [{"command": c, "description": d} for c, d in COMMAND_MENU["zh"]]
        assert api.commands["en"] == [{"command": c, "description": d} for c, d in COMMAND_MENU["en"]]
        assert api.calls_to("deleteWebhook"), "polling starts by removing any webhook"
        chat = private(ADA)

        [welcome] = await bot.say(chat, ADA, "/start")
        assert welcome.text.startswith("你好，Ada！我是 quizbot") and "quizbot" in welcome.styled("bold")
        assert welcome.buttons == {"下一题": "next", "选主题": "topics", "订阅每日一题": "subscribe", "学习计划": "plan"}
        assert all(c.params.get("parse_mode") == "HTML" for c in api.calls_to("sendMessage"))

        [question] = await bot.say(chat, ADA, "/topic rag")
        assert "什么是检索增强生成？" in question.text and list(question.buttons) == ["看答案", "跳过"]

        [reference] = await bot.say(chat, ADA, "先检索相关文档，再拼进提示词生成")
        assert "参考答案" in reference.styled("bold") and "什么是检索增强生成：这是一段参考答案" in reference.text
        assert [label.removesuffix(" ✓建议") for label in reference.buttons] == ["不会", "模糊", "答对", "轻松"]
        assert "✓ 先检索" not in reference.text and "✗ 什么是检索增强生成 要点一" in reference.text  # marked for this answer

        [rated], answer = await bot.press(ADA, reference, "答对")
        assert "text" not in answer                                       # no pop-up: the reply is a message
        assert rated.text.startswith("已记录：答对") and list(rated.buttons) == ["下一题"]
        assert reference.text.endswith("✓ 答对") and reference.keyboard is None   # edited: no second press
        assert "参考答案" in reference.styled("bold")                     # formatting survives the edit

        chart, stats = await bot.say(chat, ADA, "/stats")
        assert chart.photo and "已作答 1 次" in stats.text and "连续学习 1 天" in stats.text
        assert bot.rows("SELECT question_id, rating, user_key FROM answers") == [("rag-001", 3, "telegram:101")]
        assert bot.rows("SELECT key, is_group FROM chats") == [("telegram:101", 0)]


# --- a study group ----------------------------------------------------------------------------

async def test_group_shares_one_answer_board(tmp_path, api):
    api.admins[GROUP["id"]] = {ALICE["id"]: "creator"}
    async with running(tmp_path, api) as bot:
        await bot.handled(api.added(GROUP, ALICE))
        [welcome] = api.sent_to(GROUP["id"])
        assert "quizbot" in welcome.text

        [question] = await bot.say(GROUP, ALICE, "/next@quiz_bot")
        assert "回复这条消息作答" in question.text
        assert await bot.say(GROUP, ALICE, "/next@other_bot") == []         # another bot's command
        assert await bot.say(GROUP, CAROL, "anyone up for lunch?") == []    # chatter not meant for the bot

        [board] = await bot.say(GROUP, ALICE, "先检索再生成", reply_to=question)
        assert "已作答 1 人：Alice（未打分 · 要点 0/3）" in board.text
        hidden = board.styled("spoiler")
        assert any("这是一段参考答案" in part for part in hidden) and any("要点二" in part for part in hidden)
        assert "参考答案" in board.styled("bold")                          # bold renders inside the spoiler

        assert await bot.say(GROUP, BOB, "/a 我的答案") == []               # the board is edited, not re-sent
        assert board.edits == 1 and "已作答 2 人：Alice（未打分 · 要点 0/3）、<Bob & Co>（未打分 · 要点 0/3）" in board.text

        new, answer = await bot.press(ALICE, board, "答对")
        assert new == [] and answer["text"].startswith("已记录：答对")       # a pop-up for Alice only
        assert "Alice（答对 · 要点 0/3）" in board.text and list(board.buttons) == ["不会", "模糊", "答对", "轻松"]

        new, answer = await bot.press(CAROL, board, "轻松")                 # Carol did not answer
        assert new == [] and answer["text"] == "先回复题目作答（或点「看答案」），再给自己打分。"

        assert await bot.say(GROUP, CAROL, "@quiz_bot RAG = retrieval + generation") == []  # a mention answers
        assert "Carol（未打分 · 要点 0/3）" in board.text and board.edits == 3

        [ranking] = await bot.say(GROUP, BOB, "/leaderboard")
        assert "本周排行" in ranking.text and "Alice：1 题 · 3.0" in ranking.text and "<Bob & Co>：1 题" in ranking.text

        [refusal] = await bot.say(GROUP, BOB, "/subscribe")
        assert refusal.text == "只有群管理员可以修改本群的设置。"
        assert bot.rows("SELECT subscribed FROM chats WHERE key = 'telegram:-100500'") == [(0,)]
        [ok] = await bot.say(GROUP, ALICE, "/subscribe 08:30")
        assert ok.text.startswith("已订阅：每天 08:30")
        assert bot.rows("SELECT subscribed FROM chats WHERE key = 'telegram:-100500'") == [(1,)]

        asked = {int(c.params["user_id"]) for c in api.calls_to("getChatMember")}
        assert asked == {ALICE["id"], BOB["id"], CAROL["id"]}               # each asked once, then cached
        assert len(api.calls_to("getChatMember")) == 3
        assert bot.rows("SELECT user_key, rating FROM answers ORDER BY id") == [
            ("telegram:201", 3), ("telegram:202", None), ("telegram:203", None)]

        await bot.handled(api.removed(GROUP, ALICE))
        assert bot.rows("SELECT paused FROM chats WHERE key = 'telegram:-100500'") == [(1,)]


async def test_forged_rating_presses_are_refused_with_a_toast(tmp_path, api):
    async with running(tmp_path, api) as bot:
        chat = private(ADA)
        await bot.say(chat, ADA, "/topic rag")
        [reference] = await bot.say(chat, ADA, "my answer")
        private_rating = reference.buttons["答对"]                          # "rate:<ask>:3" of Ada's chat

        [question] = await bot.say(GROUP, ALICE, "/next")
        new, answer = await bot.press(DAN, question, private_rating)        # forged data in the group
        assert new == [] and answer["text"] == "这个按钮不是给你的：只能给自己的答案打分。"  # the group's language

        eve = user(102, "Eve")
        [eves] = await bot.say(private(eve), eve, "/start")
        new, answer = await bot.press(eve, eves, private_rating)            # forged data in Eve's own chat
        assert new == [] and answer["text"] == "这个按钮不是给你的：只能给自己的答案打分。"
        assert bot.rows("SELECT rating FROM answers") == [(None,)]          # nothing was rated


async def test_html_hostile_text_is_shown_literally(tmp_path, api):
    hostile = "a<b && c*d 与 <script>alert(1)</script> 的 *区别*"
    topics = {**TOPICS, "html": ("HTML & <转义>", "HTML <escaping>", [hostile])}
    async with running(tmp_path, api, topics) as bot:
        chat = private(ADA)
        [question] = await bot.say(chat, ADA, "/topic html")
        assert f"{hostile}？" in question.text and "【HTML & <转义>】" in question.text
        assert "&lt;" not in question.text and "&amp;" not in question.text
        [reference] = await bot.say(chat, ADA, "<b>not bold</b> & *not bold*")
        assert f"{hostile}：这是一段参考答案" in reference.text
        assert bot.rows("SELECT text FROM answers") == [("<b>not bold</b> & *not bold*",)]

        [group_question] = await bot.say(GROUP, BOB, "/topic html")
        assert f"{hostile}？" in group_question.text
        [board] = await bot.say(GROUP, BOB, "x<y", reply_to=group_question)
        assert "<Bob & Co>（未打分" in board.text


# --- failures ---------------------------------------------------------------------------------

async def test_a_429_burst_is_retried_and_delivered(tmp_path, api):
    async with running(tmp_path, api) as bot:
        api.fail("sendMessage", 429, times=2, retry_after=1)
        [welcome] = await bot.say(private(ADA), ADA, "/start")
        assert "quizbot" in welcome.text and len(api.sent_to(ADA["id"])) == 1
        assert [c.status for c in api.calls_to("sendMessage")] == [429, 429, 200]


async def test_network_errors_and_5xx_are_retried_and_a_bad_update_never_stops_polling(tmp_path, api):
    async with running(tmp_path, api) as bot:
        chat = private(ADA)
        api.fail("sendMessage", 502, times=1)
        api.fail("sendMessage", 500, times=1)
        [welcome] = await bot.say(chat, ADA, "/start")
        assert [c.status for c in api.calls_to("sendMessage")] == [502, 500, 200]

        api.fail("sendMessage", 400, times=1, description="Bad Request: something unexpected")
        assert await bot.say(chat, ADA, "/help") == []                      # that reply is lost, logged
        api.fail("getUpdates", 502, times=1)                                 # and polling hiccups
        [stats] = await bot.say(chat, ADA, "/stats")                        # the bot goes on
        assert "还没有作答记录" in stats.text


async def test_a_403_pauses_the_chat(tmp_path, api):
    async with running(tmp_path, api) as bot:
        chat = private(ADA)
        await bot.say(chat, ADA, "/subscribe 09:00")
        assert bot.rows("SELECT subscribed, paused FROM chats") == [(1, 0)]
        api.blocked.add(ADA["id"])
        assert await bot.say(chat, ADA, "/next") == []
        assert bot.rows("SELECT subscribed, paused FROM chats") == [(1, 1)]
        with pytest.raises(ChatUnreachable):                                 # what the daily push sees
            await bot.adapter.send(Chat("telegram", str(ADA["id"])), Reply("hello"))

        eve = user(102, "Eve")
        await bot.say(private(eve), eve, "/subscribe")
        await bot.handled(api.blocked_by(eve))                              # Eve blocks the bot
        assert bot.rows("SELECT paused FROM chats WHERE key = 'telegram:102'") == [(1,)]


# --- webhook ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode_checks_the_secret_token(tmp_path, api):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with running(tmp_path, api, mode="webhook", webhook_url=url, webhook_listen="127.0.0.1",
                       webhook_port=port, webhook_secret="hook-s3cret") as bot:
        assert api.webhook["url"] == url and api.webhook["secret_token"] == "hook-s3cret"
        assert "message" in api.webhook["allowed_updates"] and not api.calls_to("getUpdates")
        chat = private(ADA)

        forged = api.update("message", api.message_body(chat, ADA, "/help"))
        assert await api.post_webhook(forged, "wrong") == 403
        assert await api.post_webhook(forged, None) == 403

        genuine = api.update("message", api.message_body(chat, ADA, "/start"))
        assert await api.post_webhook(genuine, "hook-s3cret") == 200
        await bot.handled(genuine)
        [welcome] = api.sent_to(ADA["id"])                                   # only /start was handled
        assert "quizbot" in welcome.text


async def test_webhook_mode_needs_a_url(tmp_path, api):
    with pytest.raises(ConfigError, match="webhook_url"):
        async with running(tmp_path, api, mode="webhook"):
            pass


# --- secrets ----------------------------------------------------------------------------------

async def test_the_token_never_appears_in_logs(tmp_path, api, caplog):
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path, api, webhook_secret="hook-s3cret") as bot:
        chat = private(ADA)
        api.fail("sendMessage", 502, times=1)
        await bot.say(chat, ADA, "/start")
        api.blocked.add(ADA["id"])
        await bot.say(chat, ADA, "/next")
    assert "Set Bot API URL" in caplog.text                                  # PTB's debug logs were captured
    assert "getUpdates" in caplog.text
    assert api.token not in caplog.text
    assert all(api.token not in r.getMessage() for r in caplog.records)

    caplog.clear()
    wrong = Settings(telegram={"token": "123:WRONG-token-value", "api_base_url": api.base_url}).telegram
    with pytest.raises(ConfigError) as error:
        await TelegramAdapter(wrong).start(lambda incoming: None)
    assert "WRONG-token-value" not in str(error.value) and "WRONG-token-value" not in caplog.text


# --- rendering --------------------------------------------------------------------------------

def test_render_escapes_and_maps_the_markup():
    [out] = render("**a<b>** & `x<y` ||c&d|| *no*")
    assert out == "<b>a&lt;b&gt;</b> &amp; <code>x&lt;y</code> ||c&amp;d|| *no*"  # || is not markup


def test_a_hidden_section_is_one_spoiler_with_its_markup_rendered_inside():
    reply = Reply("**Board**", sections=(
        Section("**参考答案**\n用 `a || b` 与代码：\n```python\nx = a ** 2\n```", (Point("要点 **一**"),),
                hidden=True, title="👀 看答案"), Section("已作答 1 人")))
    [out] = render(reply)
    assert out == ("<b>Board</b>\n\n<b>👀 看答案</b>\n<tg-spoiler><b>参考答案</b>\n用 <code>a || b</code> 与代码：\n"
                   "<pre>x = a ** 2</pre>\n- 要点 <b>一</b></tg-spoiler>\n\n已作答 1 人")


def test_render_splits_long_text_at_lines_and_reopens_styles():
    line = "第" * 99
    text = "**" + "\n".join([line] * 60) + "**\n" + "\n".join([line] * 30)
    chunks = render(text)
    assert len(chunks) >= 2
    assert chunks[0].startswith("<b>") and chunks[0].endswith("</b>") and chunks[1].startswith("<b>")
    lines = [l for chunk in chunks for l in plain(chunk.replace("<b>", "").replace("</b>", "")).split("\n")]
    assert lines == [line] * 90                                              # cut only between lines
    assert all(len(plain(c.replace("<b>", "").replace("</b>", ""))) <= MAX_MESSAGE for c in chunks)
    assert render("x" * 5000, limit=4096) == ["x" * 4096, "x" * 904]           # one endless line: cut anywhere


def test_file_url_follows_the_api_url():
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


async def test_long_replies_images_and_keyed_edits(tmp_path, api):
    async with running(tmp_path, api) as bot:
        chat = Chat("telegram", str(ADA["id"]))
        paragraph = "**要点**\n" + "\n".join(f"- 第 {i} 条：a<b & c" for i in range(400))
        button = Button("下一题", "next")
        await bot.adapter.send(chat, Reply(paragraph, ((button,),)))
        parts = api.sent_to(ADA["id"])
        assert len(parts) >= 2 and all(len(p.text) <= MAX_MESSAGE for p in parts)
        assert [p.keyboard is not None for p in parts] == [False] * (len(parts) - 1) + [True]
        assert "\n".join(p.text for p in parts) == plain(paragraph)

        await bot.adapter.send(chat, Reply("**图表**", image=b"\x89PNG\r\n\x1a\nfake"))
        assert api.sent_to(ADA["id"])[-2].photo and api.sent_to(ADA["id"])[-1].text == "图表"

        room = Chat("telegram", str(GROUP["id"]), is_group=True)
        first = await bot.adapter.send(room, Reply("board v1", key="board:1"))
        assert await bot.adapter.send(room, Reply("board v2", key="board:1")) == first
        assert [m.text for m in api.sent_to(GROUP["id"])] == ["board v2"]
        del api.messages[(GROUP["id"], int(first))]                           # somebody deleted the board
        again = await bot.adapter.send(room, Reply("board v3", key="board:1"))
        assert again != first and api.messages[(GROUP["id"], int(again))].text == "board v3"


def test_the_composition_root_picks_the_telegram_adapter():
    from quizbot.app import platform_adapters
    settings = Settings(telegram={"token": "123:abc"})
    [adapter] = platform_adapters(settings)
    assert isinstance(adapter, TelegramAdapter) and adapter.platform == "telegram"
