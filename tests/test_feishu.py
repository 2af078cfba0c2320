"""The Feishu adapter end to end: the real lark-oapi SDK against a stand-in of the Open API and its
long-connection gateway (tests/fakes/feishu_api.py), a real engine on a temp SQLite file.

Long-connection tests go through the SDK's whole path: endpoint discovery, the websocket, protobuf
event frames in and answer frames (with card-action responses) out. Webhook tests post what
Feishu posts (plain, or encrypted and signed) to the adapter's aiohttp endpoint.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from adapters import feishu
from adapters.feishu import FeishuAdapter
from adapters.feishu_cards import render
from bot.config import Settings
from bot.models import Point, Section, Button, Chat, ChatUnreachable, Reply
from quizbot.app import build_engine
from tests.fakes.feishu_api import (FakeFeishu, bot_added_event, bot_mention, card_buttons, card_event, card_text,
                                    card_values, collapsed_panels, encrypt, message_event, signature_headers, url_verification)

from .conftest import write_bank

ROOT = Path(__file__).resolve().parent.parent
SECRET = "app-secret-DO-NOT-LOG-4711"
TOKEN = "verification-token-0815"
ENCRYPT_KEY = "encrypt-key-2342"


@pytest.fixture
def fake():
    # a fresh app id per test: the SDK caches tenant tokens per app id for the whole process
    server = FakeFeishu(app_id=f"cli_{uuid.uuid4().hex[:12]}").start()
    server.users.update({"ou_ada": "Ada", "ou_bob": "Bob", "ou_cy": "Cy"})
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(tmp_path: Path, fake: FakeFeishu, **feishu) -> Settings:
    folder = tmp_path / "content"
    if not folder.exists():
        write_bank(folder)
    return Settings(bot={"content_dir": folder}, storage={"path": str(tmp_path / "q.db")},
                    feishu={"app_id": fake.app_id, "app_secret": SECRET, "domain": fake.url, **feishu})


@asynccontextmanager
async def running(settings: Settings, slow_buttons: float = 0):
    engine = await build_engine(settings)
    adapter = FeishuAdapter(settings.feishu)

    async def handle(incoming):
        if incoming.kind == "button" and slow_buttons:
            await asyncio.sleep(slow_buttons)
        return await engine.handle(incoming)
    engine.send_later_with(adapter.send)  # as quizbot run wires it
    await adapter.start(handle)
    try:
        yield adapter
    finally:
        await adapter.stop()
        await engine.store.close()


async def say(fake: FakeFeishu, adapter: FeishuAdapter, payload: dict) -> dict:
    """Deliver one event over the long connection and wait until the bot has answered it."""
    answer = await fake.push(payload)
    await adapter.drain()
    return answer


def rows(tmp_path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "q.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# --- private chat over the long connection ------------------------------------------------------

async def test_a_private_study_session_with_the_rated_card_updated_in_place(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        assert fake.calls_to("POST", "/callback/ws/endpoint") and fake.ws_connected.is_set() and adapter._ws.connected
        await say(fake, adapter, message_event("oc_p1", "ou_ada", "/start"))
        welcome = fake.sent("oc_p1")[-1]
        assert welcome["msg_type"] == "interactive" and "你好，Ada！" in card_text(welcome["card"])
        assert "**quizbot**" in card_text(welcome["card"])                     # bold stays lark_md bold
        assert list(card_buttons(welcome["card"])) == ["下一题", "选主题", "订阅每日一题", "学习计划"]

        await say(fake, adapter, message_event("oc_p1", "ou_ada", "／topic rag"))   # a full-width slash works too
        question = fake.sent("oc_p1")[-1]
        assert "什么是检索增强生成？" in card_text(question["card"])
        assert list(card_buttons(question["card"])) == ["看答案", "跳过"]

        await say(fake, adapter, message_event("oc_p1", "ou_ada", "先检索相关文档，再拼进提示词生成"))
        reference = fake.sent("oc_p1")[-1]
        assert reference["card"]["header"]["title"]["content"] == "参考答案"
        assert "要点一" in card_text(reference["card"])
        rating = {label.removesuffix(" ✓建议"): value for label, value in card_values(reference["card"]).items()}
        assert list(rating) == ["不会", "模糊", "答对", "轻松"]
        assert rating["答对"] == {"data": "rate:1:3"}  # only what the bot needs back: no facts about the chat

        # somebody else's press on Ada's card is refused with a toast, and the card keeps its buttons
        refused = await say(fake, adapter, card_event("oc_p1", "ou_mallory", rating["答对"],
                                                      reference["message_id"]))
        assert refused["code"] == 200 and "不是给你的" in refused["data"]["toast"]["content"]
        assert "card" not in refused["data"]

        pressed = await say(fake, adapter, card_event("oc_p1", "ou_ada", rating["答对"],
                                                      reference["message_id"]))
        updated = pressed["data"]["card"]["data"]                                 # the card answered in place
        assert card_buttons(updated) == {} and card_text(updated).endswith("✓ **答对**")
        assert "要点一" in card_text(updated)
        saved = fake.sent("oc_p1")[-1]
        assert "已记录：答对" in card_text(saved["card"]) and list(card_buttons(saved["card"])) == ["下一题"]

        # pressing the old question's button once more: refused, nothing double-counted
        await say(fake, adapter, card_event("oc_p1", "ou_ada", rating["轻松"], reference["message_id"]))
    assert rows(tmp_path, "SELECT user_key, question_id, rating FROM answers") == [("feishu:ou_ada", "rag-001", 3)]
    assert fake.calls_to("POST", "tenant_access_token")
    assert not [t for t in threading.enumerate() if t.name == "feishu-ws"]      # stop() ended the ws thread


async def test_a_card_action_answered_late_falls_back_to_a_patch_and_a_message(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(feishu, "CARD_DEADLINE", 0.05)
    async with running(make_settings(tmp_path, fake), slow_buttons=1.0) as adapter:
        # sent back to back: the answer is still handled after the question it answers
        await fake.push(message_event("oc_p5", "ou_ada", "/topic rag"))
        await fake.push(message_event("oc_p5", "ou_ada", "我的答案"))
        await adapter.drain()
        question, reference = fake.sent("oc_p5")
        assert "什么是检索增强生成？" in card_text(question["card"]) and "参考答案" in card_text(reference["card"])

        refused = await say(fake, adapter, card_event("oc_p5", "ou_eve", card_values(reference["card"])["模糊"],
                                                      reference["message_id"]))
        assert refused["data"] == {}                                          # too late for the toast …
        assert "不是给你的" in card_text(fake.sent("oc_p5")[-1]["card"])       # … so it came as a message
        pressed = await say(fake, adapter, card_event("oc_p5", "ou_ada", card_values(reference["card"])["模糊"],
                                                      reference["message_id"]))
        assert pressed["data"] == {}
        updated = fake.messages[reference["message_id"]]
        assert updated["updates"] == 1 and card_text(updated["card"]).endswith("✓ **模糊**")
        assert card_buttons(updated["card"]) == {}


# --- a group over the long connection ----------------------------------------------------------

async def test_a_group_answers_one_question_on_one_board_card(tmp_path, fake):
    fake.chats["oc_g"] = {"owner_id": "ou_ada", "managers": [], "chat_mode": "group"}
    async with running(make_settings(tmp_path, fake)) as adapter:
        await say(fake, adapter, bot_added_event("oc_g", "ou_ada"))
        assert "quizbot" in card_text(fake.sent("oc_g")[-1]["card"])

        # not addressed to the bot: ignored
        await say(fake, adapter, message_event("oc_g", "ou_bob", "lunch?", chat_type="group"))
        assert len(fake.sent("oc_g")) == 1

        ask = message_event("oc_g", "ou_ada", "@_user_1 /topic rag", chat_type="group", mentions=[bot_mention()])
        await say(fake, adapter, ask)
        question = fake.sent("oc_g")[-1]
        assert question["parent_id"] == ask["event"]["message"]["message_id"]   # a reply to the asker
        assert "回复这条消息作答" in card_text(question["card"])

        # Ada answers by replying to the question card, without mentioning the bot
        await say(fake, adapter, message_event("oc_g", "ou_ada", "先检索再生成", chat_type="group",
                                               parent_id=question["message_id"]))
        board = fake.sent("oc_g")[-1]
        assert "已作答 1 人：Ada（未打分 · 要点 0/3）" in card_text(board["card"])
        panels = collapsed_panels(board["card"])                                # the answer is hidden
        assert len(panels) == 1 and all(p["expanded"] is False for p in panels)
        assert "要点一" in card_text({"elements": panels}) and "要点一" not in json.dumps([e for e in board["card"]["elements"] if e["tag"] != "collapsible_panel"], ensure_ascii=False)

        await say(fake, adapter, message_event("oc_g", "ou_bob", "@_user_1 /a 不太清楚", chat_type="group",
                                               mentions=[bot_mention()]))
        assert fake.sent("oc_g")[-1]["message_id"] == board["message_id"]       # no new message: the board was patched
        board = fake.messages[board["message_id"]]
        assert "已作答 2 人：Ada（未打分 · 要点 0/3）、Bob（未打分 · 要点 0/3）" in card_text(board["card"])

        rating = card_values(board["card"])
        answer = await say(fake, adapter, card_event("oc_g", "ou_ada", rating["答对"], board["message_id"]))
        assert "已记录：答对" in answer["data"]["toast"]["content"] and "card" not in answer["data"]
        board = fake.messages[board["message_id"]]
        assert "Ada（答对 · 要点 0/3）、Bob（未打分 · 要点 0/3）" in card_text(board["card"])
        assert list(card_buttons(board["card"])) == ["不会", "模糊", "答对", "轻松"]  # a group keeps its buttons

        refused = await say(fake, adapter, card_event("oc_g", "ou_cy", rating["答对"], board["message_id"]))
        assert "先回复题目作答" in refused["data"]["toast"]["content"]
        assert len([m for m in fake.sent("oc_g") if "已作答" in card_text(m["card"])]) == 1

        # settings are for the group's owner and managers (read from im.v1.chat.get)
        await say(fake, adapter, message_event("oc_g", "ou_bob", "@_user_1 /subscribe", chat_type="group",
                                               mentions=[bot_mention()]))
        assert "只有群管理员" in card_text(fake.sent("oc_g")[-1]["card"])
        await say(fake, adapter, message_event("oc_g", "ou_ada", "@_user_1 /subscribe 08:30", chat_type="group",
                                               mentions=[bot_mention()]))
        assert "已订阅" in card_text(fake.sent("oc_g")[-1]["card"])

        await say(fake, adapter, bot_added_event("oc_g", "ou_ada", removed=True))
    assert rows(tmp_path, "SELECT user_key, rating FROM answers ORDER BY id") == [("feishu:ou_ada", 3), ("feishu:ou_bob", None)]
    assert rows(tmp_path, "SELECT subscribed, paused FROM chats WHERE key = 'feishu:oc_g'") == [(1, 1)]


# --- the webhook ---------------------------------------------------------------------------------

async def post(port: int, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/feishu/events", data=body,
                                headers=headers or {"Content-Type": "application/json"}) as response:
            text = await response.text()
            return response.status, json.loads(text) if text.startswith("{") else {"raw": text}


async def test_webhook_with_a_verification_token_only(tmp_path, fake):
    port = free_port()
    settings = make_settings(tmp_path, fake, mode="webhook", verification_token=TOKEN, webhook_listen="127.0.0.1",
                             webhook_port=port)
    event = message_event("oc_p2", "ou_ada", "/start", token=TOKEN)
    async with running(settings) as adapter:
        assert await post(port, json.dumps(url_verification(TOKEN, "c-42")).encode()) == (200, {"challenge": "c-42"})
        status, _ = await post(port, json.dumps(url_verification("guess")).encode())
        assert status == 403
        status, _ = await post(port, json.dumps(message_event("oc_p2", "ou_ada", "/help", token="guess")).encode())
        assert status == 403
        status, _ = await post(port, b"not json")
        assert status == 400

        fake.observe(event)
        for _ in range(2):                                                    # Feishu redelivers: handled once
            status, _ = await post(port, json.dumps(event).encode())
            assert status == 200
            await adapter.drain()
        assert len(fake.sent("oc_p2")) == 1 and "你好，Ada" in card_text(fake.sent("oc_p2")[0]["card"])

    # a restart on the same database still knows the event
    async with running(settings) as adapter:
        status, _ = await post(port, json.dumps(event).encode())
        await adapter.drain()
        assert status == 200 and len(fake.sent("oc_p2")) == 1
        # an old card's button still works, and its value says the chat is private: no admin needed
        welcome = fake.sent("oc_p2")[0]
        press = card_event("oc_p2", "ou_ada", card_values(welcome["card"])["订阅每日一题"], welcome["message_id"],
                           token=TOKEN)
        status, answer = await post(port, json.dumps(press).encode())
        await adapter.drain()
        assert status == 200 and "已订阅" in card_text(fake.sent("oc_p2")[-1]["card"])
        assert not fake.calls_to("GET", "/im/v1/chats/")


async def test_webhook_with_encryption_and_signatures(tmp_path, fake, caplog):
    port = free_port()
    settings = make_settings(tmp_path, fake, mode="webhook", verification_token=TOKEN, encrypt_key=ENCRYPT_KEY,
                             webhook_listen="127.0.0.1", webhook_port=port)
    async with running(settings) as adapter:
        body = encrypt(url_verification(TOKEN, "c-7"), ENCRYPT_KEY)
        assert await post(port, body) == (200, {"challenge": "c-7"})

        event = message_event("oc_p3", "ou_ada", "/topic rag", token=TOKEN)
        fake.observe(event)
        body = encrypt(event, ENCRYPT_KEY)
        forged = [
            (body, {"Content-Type": "application/json"}),                                     # unsigned
            (body, signature_headers(body, "another-key")),                                    # bad signature
            (body, signature_headers(body + b" ", ENCRYPT_KEY)),                               # body changed
            (json.dumps(event).encode(), signature_headers(json.dumps(event).encode(), ENCRYPT_KEY)),  # not encrypted
            (encrypt(event, "another-key"), {"Content-Type": "application/json"}),           # wrong key
        ]
        for forged_body, headers in forged:
            status, _ = await post(port, forged_body, headers)
            assert status == 401
        wrong_token = encrypt(message_event("oc_p3", "ou_ada", "/help", token="guess"), ENCRYPT_KEY)
        status, _ = await post(port, wrong_token, signature_headers(wrong_token, ENCRYPT_KEY))
        assert status == 403
        await adapter.drain()
        assert fake.sent("oc_p3") == []

        status, _ = await post(port, body, signature_headers(body, ENCRYPT_KEY))
        await adapter.drain()
        assert status == 200
        question = fake.sent("oc_p3")[-1]
        skip = card_values(question["card"])["跳过"]
        press = encrypt(card_event("oc_p3", "ou_ada", skip, question["message_id"], token=TOKEN), ENCRYPT_KEY)
        status, answer = await post(port, press, signature_headers(press, ENCRYPT_KEY))
        await adapter.drain()
        assert status == 200 and card_text(answer["card"]["data"]).endswith("✓ **跳过**")
        assert "已跳过" in card_text(fake.sent("oc_p3")[-2]["card"])
        assert "Traceback" not in caplog.text


# --- sending: rate limits, retries, unreachable chats ------------------------------------------------

async def test_a_429_is_retried_after_the_reset_and_delivered(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        chat = Chat("feishu", "oc_busy", True)
        fake.fail_next(1, status=429, code=99991400, headers={"x-ogw-ratelimit-reset": "1"})
        fake.fail_next(1, status=503, code=1500)
        message_id = await asyncio.wait_for(adapter.send(chat, Reply("**Daily question**\nhello")), 30)
        assert fake.messages[message_id]["chat_id"] == "oc_busy"
        assert len(fake.calls_to("POST", "/im/v1/messages")) == 3

        board = Reply("board v1", (( Button("Good", "rate:1:3"),),), key="board:1")
        first = await adapter.send(chat, board)
        assert await adapter.send(chat, Reply("board v2", key="board:1")) == first   # PATCHed in place
        assert card_text(fake.messages[first]["card"]) == "board v2"
        del fake.messages[first]                                                     # gone: a new message
        assert await adapter.send(chat, Reply("board v3", key="board:1")) != first

        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        fake.fail_next(1, status=502, code=1500)                                    # the upload is retried whole
        chart = fake.messages[await adapter.send(chat, Reply("**Your week**\nchart", image=png))]["card"]
        image = chart["elements"][0]
        assert image["tag"] == "img" and fake.images[image["img_key"]] == png
        assert len(fake.calls_to("POST", "/im/v1/images")) == 2


async def test_a_chat_that_removed_the_bot_is_unreachable_and_paused(tmp_path, fake):
    async with running(make_settings(tmp_path, fake)) as adapter:
        fake.unreachable.add("oc_gone")
        with pytest.raises(ChatUnreachable):
            await adapter.send(Chat("feishu", "oc_gone", True), Reply("hello"))
        await say(fake, adapter, message_event("oc_gone", "ou_ada", "/start"))      # the reply cannot be delivered
    assert rows(tmp_path, "SELECT paused FROM chats WHERE key = 'feishu:oc_gone'") == [(1,)]


# --- secrets, rendering, imports -------------------------------------------------------------------

async def test_secrets_never_reach_the_logs(tmp_path, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.chats["oc_g2"] = {"owner_id": "ou_ada", "chat_mode": "group"}
    settings = make_settings(tmp_path, fake, verification_token=TOKEN, encrypt_key=ENCRYPT_KEY)
    async with running(settings) as adapter:
        fake.fail_next(1, status=429, headers={"x-ogw-ratelimit-reset": "0"})
        await say(fake, adapter, message_event("oc_p4", "ou_ada", "/start", token=TOKEN))
        await say(fake, adapter, message_event("oc_g2", "ou_ada", "@_user_1 /lang en", chat_type="group",
                                               mentions=[bot_mention()], token=TOKEN))
    assert fake.sent("oc_p4") and "OK, I'll speak English" in card_text(fake.sent("oc_g2")[-1]["card"])
    assert caplog.records                                                     # something was logged at DEBUG
    for secret in (SECRET, TOKEN, ENCRYPT_KEY):
        assert secret not in caplog.text
    assert SECRET not in repr(settings)


def test_cards_render_markup_hidden_sections_and_a_pressed_choice():
    hidden = Section("uses `softmax` <b>*x*</b> and **bold**", (Point("a || b"),), hidden=True, title="👀 Show answer")
    reply = Reply("**Reference answer**", ((Button("Again", "rate:1:1"), Button("Good", "rate:1:3")),),
                  sections=(hidden, Section("1 answered: Ada")))
    card = render(reply)
    assert card["config"]["update_multi"] is True and card["header"]["title"]["content"] == "Reference answer"
    (panel,) = collapsed_panels(card)
    assert panel["header"]["title"]["content"] == "👀 Show answer"
    # markup inside the hidden part renders as markup; a || inside it cannot end it early
    assert panel["elements"][0]["text"]["content"] == ("uses `softmax` &#60;b&#62;&#42;x&#42;&#60;/b&#62; and **bold**"
                                                       "\n- a || b")
    assert card["elements"][-2]["text"]["content"] == "1 answered: Ada"
    assert card_buttons(card) == {"Again": "rate:1:1", "Good": "rate:1:3"}
    chosen = render(reply, chosen="Good")
    assert card_buttons(chosen) == {} and card_text(chosen).endswith("✓ **Good**")
    # an untitled hidden section is labelled in the reply's language
    assert collapsed_panels(render(Reply("**参考答案**", sections=(Section("答案", hidden=True),), lang="zh")))[0][
        "header"]["title"]["content"].startswith("👀 看答案")
    assert collapsed_panels(render(Reply("x", sections=(Section("GPT-4", hidden=True),), lang="en")))[0][
        "header"]["title"]["content"].startswith("👀 Show answer")


def test_the_console_never_imports_lark_oapi(tmp_path):
    folder = write_bank(tmp_path / "content")
    script = f"""
import asyncio, io, sys
from bot.config import Settings
from quizbot.app import run
settings = Settings(bot={{"content_dir": {str(folder)!r}}}, storage={{"path": {str(tmp_path / "c.db")!r}}})
out = io.StringIO()
asyncio.run(run(settings, io.StringIO("/help\\n"), out))
assert "/subscribe" in out.getvalue(), out.getvalue()
print(sorted(m for m in sys.modules if m.startswith(("lark_oapi", "adapters.feishu"))))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
