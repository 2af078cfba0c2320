"""What forged, malformed and faulty Feishu events used to break: facts taken from a button's
payload, ids that overflow, redeliveries with a new event id, a failed upload, rich-text answers
and media, the first visit to the bot's private chat. The real lark-oapi SDK end to end."""
from __future__ import annotations

from .fakes.feishu_api import (bot_mention, card_event, card_text, card_values, message_event,
                               p2p_entered_event)
from .test_feishu import fake, make_settings, rows, running, say  # noqa: F401 (fake: a fixture)


async def test_a_button_payload_cannot_claim_a_group_is_a_private_chat(tmp_path, fake):
    fake.chats["oc_g"] = {"owner_id": "ou_ada", "chat_mode": "group"}
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_g", "ou_bob", "@_user_1 /start", chat_type="group",
                                               mentions=[bot_mention()]))
        welcome = fake.sent("oc_g")[-1]
        forged = {"data": "subscribe", "chat": "p2p"}                    # Bob is no admin of oc_g
        answer = await say(fake, adapter, card_event("oc_g", "ou_bob", forged, welcome["message_id"]))
        assert rows(tmp_path, "SELECT subscribed FROM chats WHERE key = 'feishu:oc_g'") == [(0,)]
        assert "只有群管理员" in card_text(fake.sent("oc_g")[-1]["card"]) or "只有群管理员" in str(answer)
        await say(fake, adapter, card_event("oc_g", "ou_bob", {"data": "lang:en", "chat": "p2p"},
                                            welcome["message_id"]))
        assert rows(tmp_path, "SELECT lang FROM chats WHERE key = 'feishu:oc_g'") != [("en",)]
        # a card's buttons carry only what the bot needs back
        assert all(set(v) == {"data"} for v in card_values(welcome["card"]).values())


async def test_a_press_in_somebody_elses_private_chat_changes_nothing(tmp_path, fake):
    fake.chats["oc_p1"] = {"owner_id": "", "chat_mode": "p2p"}
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/start"))
        welcome = fake.sent("oc_p1")[-1]
        answer = await say(fake, adapter, card_event("oc_p1", "ou_mallory", {"data": "lang:en"}, welcome["message_id"]))
        assert "不是给你的" in answer["data"]["toast"]["content"]
        assert rows(tmp_path, "SELECT key FROM users WHERE lang = 'en'") == []


async def test_forged_and_overflowing_ids_are_stale_buttons_not_errors(tmp_path, fake, caplog):
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        question = fake.sent("oc_p1")[-1]
        for data in ("rate:" + "9" * 40 + ":3", "follow:" + "1" * 40, "rate:-1:3", "reveal:abc", "rate:1:9", "x" * 300):
            answer = await say(fake, adapter, card_event("oc_p1", "ou_ada", {"data": data}, question["message_id"]))
            assert answer["code"] == 200
        assert "Traceback" not in caplog.text and "failed to handle" not in caplog.text


async def test_a_redelivered_message_with_a_new_event_id_is_handled_once(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        first = message_event("oc_p1", "ou_ada", "先检索再生成", message_id="om_same")
        again = message_event("oc_p1", "ou_ada", "先检索再生成", message_id="om_same")  # a new event id
        assert first["header"]["event_id"] != again["header"]["event_id"]
        await say(fake, adapter, first)
        await say(fake, adapter, again)
        assert rows(tmp_path, "SELECT COUNT(*) FROM answers") == [(1,)]
        assert len(fake.sent("oc_p1")) == 2                              # the question and one reference


async def test_a_chart_that_cannot_be_uploaded_costs_the_chart_not_the_statistics(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "先检索再生成"))
        fake.fail_next(4, status=500, code=1)                             # every try of the upload fails
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/stats"))
        stats = fake.sent("oc_p1")[-1]
        assert "学习统计" in card_text(stats["card"]) and not fake.images


async def test_rich_text_answers_keep_code_blocks_and_markdown(tmp_path, fake):
    post = {"title": "我的回答", "content": [
        [{"tag": "text", "text": "先检索，"}, {"tag": "md", "text": "**再生成**"}],
        [{"tag": "code_block", "language": "PYTHON", "text": "docs = retriever(q)"}],
        [{"tag": "img", "image_key": "img_x"}]]}
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "", message_type="post", content=post))
        [(text,)] = rows(tmp_path, "SELECT text FROM answers")
        assert "我的回答" in text and "**再生成**" in text and "docs = retriever(q)" in text


async def test_an_image_while_a_question_is_open_is_told_only_text_counts(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "", message_type="image",
                                               content={"image_key": "img_v2_1"}))
        assert "只有文字答案才算作答" in card_text(fake.sent("oc_p1")[-1]["card"])
        assert rows(tmp_path, "SELECT COUNT(*) FROM answers") == [(0,)]


async def test_opening_the_private_chat_for_the_first_time_is_greeted_once(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, p2p_entered_event("oc_p9", "ou_ada"))
        [welcome] = fake.sent("oc_p9")
        assert "我是 **quizbot**" in card_text(welcome["card"]) or "quizbot" in card_text(welcome["card"])
        await say(fake, adapter, p2p_entered_event("oc_p9", "ou_ada"))     # the next visit: no second welcome
        assert len(fake.sent("oc_p9")) == 1
