"""What real payloads and faults used to break on Telegram: an update the library cannot decode, a
busy group, forum topics, forwards and media, an unreachable API at start-up. Through the real
python-telegram-bot against the stand-in Bot API."""
from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time

from adapters.telegram import TelegramAdapter
from bot.config import Settings
from quizbot.app import build_engine

from .conftest import write_bank
from .fakes.telegram_api import FakeBotAPI, group, private, user
from .test_telegram import ADA, ALICE, BOB, GROUP, TIMEOUT, api, free_port, running, until  # noqa: F401 (api: a fixture)

# Real shapes PTB 22.8 cannot decode: a sender without is_bot (Bot API docs examples), a photo
# without file_unique_id, a member update without a field the library requires.
UNDECODABLE = [
    {"message": {"message_id": 90, "date": 0, "chat": {"id": 101, "type": "private", "first_name": "Ada"},
                 "from": {"id": 101, "first_name": "Ada Lovelace"}, "text": "my secret answer"}},
    {"message": {"message_id": 91, "date": 0, "chat": {"id": 101, "type": "private"},
                 "from": {"id": 101, "is_bot": False, "first_name": "Ada"}, "photo": [{"file_id": "x", "width": 1}]}},
    {"my_chat_member": {"chat": {"id": -100500, "type": "supergroup", "title": "g"}, "date": 0,
                        "from": {"id": 201, "is_bot": False, "first_name": "Alice"},
                        "old_chat_member": {"status": "member", "user": {"id": 7000001, "is_bot": True, "first_name": "Q"}},
                        "new_chat_member": {"status": "administrator",
                                            "user": {"id": 7000001, "is_bot": True, "first_name": "Q"}}}},
]


async def test_an_update_the_library_cannot_decode_is_skipped_and_receiving_goes_on(tmp_path, api, caplog):
    caplog.set_level(logging.INFO)  # the bot's default level
    async with running(tmp_path, api) as bot:
        [welcome] = await bot.say(private(ADA), ADA, "/start")
        bad = [api.raw(update) for update in UNDECODABLE]
        [help_reply] = await bot.say(private(ADA), ADA, "/help")        # a good update after the bad ones
        assert "quizbot" in welcome.text and "/next" in help_reply.text
        offsets = [int(c.params.get("offset") or 0) for c in api.calls_to("getUpdates")]
        assert max(offsets) > bad[-1]["update_id"]                     # polling moved past them
    skipped = [r for r in caplog.records if "cannot decode" in r.getMessage()]
    assert len(skipped) == len(UNDECODABLE)                            # once each, not once per refetch
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert "Ada Lovelace" not in caplog.text and "my secret answer" not in caplog.text


async def test_a_webhook_acknowledges_an_undecodable_update_and_keeps_serving(tmp_path, api):
    port = free_port()
    async with running(tmp_path, api, mode="webhook", webhook_url=f"http://127.0.0.1:{port}/tg/hook",
                       webhook_port=port, webhook_secret="s3cret"):
        assert await api.post_webhook({"update_id": 5, **UNDECODABLE[0]}, "s3cret") == 200  # Telegram won't redeliver it
        assert await api.post_webhook(api.update("message", api.message_body(private(ADA), ADA, "/start")),
                                      "s3cret") == 200
        await until(lambda: api.sent_to(ADA["id"]))
        assert await api.post_webhook(api.update("message", api.message_body(private(ADA), ADA, "/help")),
                                      "wrong") == 403


async def test_a_busy_group_never_holds_back_a_private_chat(tmp_path, api):
    api.admins[GROUP["id"]] = {ALICE["id"]: "creator"}
    async with running(tmp_path, api) as bot:
        bot.adapter.stop_grace = 0.5  # replies still queued for the group are dropped quickly at shutdown
        for _ in range(25):                                            # 25 replies owed to one group: over 20/min
            api.message(GROUP, ALICE, "/help")
        await until(lambda: len(api.sent_to(GROUP["id"])) >= 20)
        started = time.monotonic()
        [reply] = await bot.say(private(ADA), ADA, "/help")
        assert time.monotonic() - started < 1.0                        # not behind the group's quota
        assert "/next" in reply.text and len(api.sent_to(GROUP["id"])) < 25
        checks = len(api.calls_to("getChatMember"))
        assert checks >= 1                                             # admin checks did not wait for the quota
        stopping = time.monotonic()
    assert time.monotonic() - stopping < TIMEOUT / 2                   # shutdown did not wait out the quota


async def test_a_forum_topic_gets_its_question_board_and_daily_push_in_the_same_topic(tmp_path, api):
    api.admins[GROUP["id"]] = {ALICE["id"]: "creator"}
    async with running(tmp_path, api) as bot:
        [question] = await bot.say(GROUP, ALICE, "/next", thread=77)
        assert question.thread == 77
        [board] = await bot.say(GROUP, BOB, "先检索再生成", reply_to=question, thread=77)
        assert board.thread == 77 and "参考答案" in board.text
        [subscribed] = await bot.say(GROUP, ALICE, "/subscribe 09:00 UTC", thread=78)
        assert subscribed.thread == 78
        with sqlite3.connect(bot.db_path) as db:  # the push is due now
            db.execute("UPDATE chats SET next_push_utc = strftime('%Y-%m-%dT%H:%M:00+00:00', 'now', '-1 minutes'), "
                       "push_time = strftime('%H:%M', 'now', '-1 minutes')")
        report = await bot.delivery.tick()
        assert report.sent == 1
        assert api.sent_to(GROUP["id"])[-1].thread == 78 and "每日一题" in api.sent_to(GROUP["id"])[-1].text


async def test_forwards_and_media_are_not_answers_but_a_caption_is(tmp_path, api):
    async with running(tmp_path, api) as bot:
        chat = private(ADA)
        [question] = await bot.say(chat, ADA, "/topic rag")
        [forwarded] = await bot.say(chat, ADA, "RAG 是先检索后生成", forward_origin={
            "type": "user", "date": 0, "sender_user": {"id": 5, "is_bot": False, "first_name": "Zed"}})
        assert "转发的消息不算作答" in forwarded.text
        [sticker] = await bot.say(chat, ADA, None, sticker={
            "file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1,
            "is_animated": False, "is_video": False})
        assert "只有文字答案才算作答" in sticker.text
        assert bot.rows("SELECT COUNT(*) FROM answers") == [(0,)]       # the question is still open
        [reference] = await bot.say(chat, ADA, None, caption="先检索相关文档再生成",
                                    photo=[{"file_id": "p", "file_unique_id": "q", "width": 1, "height": 1}])
        assert "参考答案" in reference.text
        assert bot.rows("SELECT text FROM answers") == [("先检索相关文档再生成",)]


async def test_an_unreachable_api_at_start_up_is_retried_with_a_plain_message(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with socket.socket() as probe:  # a port nothing listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeBotAPI()
    folder = write_bank(tmp_path / "content")
    settings = Settings(bot={"content_dir": folder}, storage={"path": str(tmp_path / "q.db")},
                        telegram={"token": fake.token, "api_base_url": f"http://127.0.0.1:{port}/bot"})
    engine = await build_engine(settings)
    adapter = TelegramAdapter(settings.telegram, backoff=0.01, startup_retry=(0.2, 0.4))
    starting = asyncio.create_task(adapter.start(engine.handle))
    try:
        await until(lambda: "retrying in" in caplog.text)
        await fake.start(port)                                         # the network comes back
        await asyncio.wait_for(starting, TIMEOUT)
        assert adapter.username == "quiz_bot"
    finally:
        await adapter.stop()
        await fake.stop()
        await engine.store.close()
    assert f"telegram: cannot reach http://127.0.0.1:{port} (connection refused); retrying in 0.2 s" in caplog.text
    assert fake.token not in caplog.text and "Traceback" not in caplog.text
