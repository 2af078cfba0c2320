"""Random, half-valid input through the adapters' parsing and the engine: Telegram updates, Feishu
events and console lines. Nothing may raise, and a press of a button the bot never made changes
nothing. Bounded (a few hundred inputs) so it stays well under a minute."""
from __future__ import annotations

import asyncio
import json
import sqlite3

import lark_oapi as lark
from hypothesis import HealthCheck, given, settings, strategies as st
from lark_oapi.api.im.v1 import P2ImChatMemberBotAddedV1, P2ImMessageReceiveV1
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTrigger
from telegram import Bot, Update

from adapters.console import ConsoleAdapter
from adapters.feishu import FeishuAdapter
from adapters.telegram import TelegramAdapter
from adapters.telegram_transport import decodable
from bot.config import FeishuSettings, TelegramSettings
from bot.content import load_bank
from bot.engine import BUTTONS, COMMANDS, OPEN_QUESTION_BUTTONS, Engine
from bot.models import Reply
from bot.storage import Storage

from .conftest import write_bank

RUNS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
WORDS = st.sampled_from(["/start", "/next", "/topic rag", "/a 答案", "/subscribe 25:00", "/lang xx", "/q", "rate:1:3",
                         "rate:" + "9" * 40 + ":2", "follow:1", "reveal:1", "skip:x", "plan:nope", "答案", "", " ",
                         "\x00", "@quiz_bot", "／next", "/next@quiz_bot", "🤖" * 50, "a" * 5000])
TEXT = st.one_of(WORDS, st.text(max_size=60))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), TEXT, st.lists(st.integers(), max_size=2))
KNOWN = set(COMMANDS) | set(BUTTONS) | set(OPEN_QUESTION_BUTTONS)


def mutated(template: dict) -> st.SearchStrategy[dict]:
    """The template with some fields dropped or replaced by values of the wrong kind."""
    keys = sorted(template)

    @st.composite
    def build(draw):
        data = json.loads(json.dumps(template))
        for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
            if draw(st.booleans()):
                data.pop(key, None)
            else:
                data[key] = draw(SCALAR)
        return data
    return build()


def tg_message(chat_type="private"):
    chat = {"id": 101 if chat_type == "private" else -100500, "type": chat_type, "first_name": "Ada", "title": "g"}
    return st.builds(lambda body, text: {"message": {**body, "text": text}}, mutated(
        {"message_id": 5, "date": 0, "chat": chat, "from": {"id": 101, "is_bot": False, "first_name": "Ada"}}), TEXT)


TG_UPDATES = st.one_of(
    tg_message(), tg_message("supergroup"),
    st.builds(lambda q, data: {"callback_query": {**q, "data": data}}, mutated(
        {"id": "1", "chat_instance": "c", "from": {"id": 101, "is_bot": False, "first_name": "Ada"},
         "message": {"message_id": 1, "date": 0, "chat": {"id": 101, "type": "private"}}}), TEXT),
    st.builds(lambda m: {"my_chat_member": m}, mutated(
        {"chat": {"id": -100500, "type": "supergroup", "title": "g"}, "date": 0,
         "from": {"id": 101, "is_bot": False, "first_name": "Ada"},
         "old_chat_member": {"status": "left", "user": {"id": 7, "is_bot": True, "first_name": "Q"}},
         "new_chat_member": {"status": "member", "user": {"id": 7, "is_bot": True, "first_name": "Q"}}})),
    st.dictionaries(st.sampled_from(["message", "edited_message", "poll", "callback_query", "x"]), SCALAR, max_size=2),
)


async def engine_on(tmp_path) -> Engine:
    folder = tmp_path / "content"
    if not folder.exists():
        write_bank(folder)
    return Engine(await Storage.open(tmp_path / "fuzz.db"), load_bank(folder))


def state(path) -> tuple[list, dict]:
    """What a stray button press must never change (a first contact may add its user and chat)."""
    with sqlite3.connect(path) as db:
        tables = [db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                  for table in ("asks", "answers", "cards", "deliveries")]
        chats = {row[0]: row for row in db.execute(
            "SELECT key, lang, topic, plan, subscribed, push_time, timezone, nudge, paused FROM chats")}
        users = {row[0]: row for row in db.execute("SELECT key, lang FROM users")}
    return tables, {**chats, **users}


async def handled(engine: Engine, incoming, db_path) -> None:
    if incoming is None:
        return
    stray = incoming.kind == "button" and incoming.value.partition(":")[0] not in KNOWN
    before = state(db_path) if stray else None
    replies = await engine.handle(incoming)
    assert all(isinstance(r, Reply) for r in replies)
    assert not any("Traceback" in r.text for r in replies)
    if stray:
        tables, rows = state(db_path)
        assert tables == before[0] and {k: v for k, v in rows.items() if k in before[1]} == before[1], incoming


@RUNS
@given(st.lists(TG_UPDATES, min_size=1, max_size=12))
def test_random_telegram_updates_never_raise(tmp_path_factory, updates):
    tmp_path = tmp_path_factory.mktemp("tg")

    async def run():
        engine = await engine_on(tmp_path)
        adapter = TelegramAdapter(TelegramSettings(token="1:x"))
        adapter.username, adapter.bot_id = "quiz_bot", 7

        async def not_admin(*args, **kwargs):
            return False
        adapter._is_admin = not_admin
        bot = Bot("1:x")
        try:
            for number, raw in enumerate(updates, start=1):
                raw = decodable({"update_id": number, **raw}, bot)
                if raw is not None:
                    await handled(engine, await adapter.parse(Update.de_json(raw, bot)), tmp_path / "fuzz.db")
        finally:
            await engine.store.close()
    asyncio.run(run())


FEISHU_EVENTS = st.one_of(
    st.builds(lambda m, text, kind: ("im.message.receive_v1", {
        "sender": {"sender_id": {"open_id": "ou_ada"}, "sender_type": "user"},
        "message": {**m, "message_type": kind, "content": json.dumps({"text": text}) if kind == "text" else text}}),
        mutated({"message_id": "om_1", "chat_id": "oc_p1", "chat_type": "p2p", "mentions": []}), TEXT,
        st.sampled_from(["text", "post", "image", "file", "sticker", "audio", "weird"])),
    st.builds(lambda e, data: ("card.action.trigger", {**e, "action": {"value": data, "tag": "button"}}), mutated(
        {"operator": {"open_id": "ou_ada"}, "context": {"open_chat_id": "oc_p1", "open_message_id": "om_b"}}),
        st.one_of(SCALAR, st.builds(lambda d: {"data": d}, TEXT), st.builds(lambda d: {"data": d, "chat": "p2p"}, TEXT))),
    st.builds(lambda e: ("im.chat.member.bot.added_v1", e), mutated({"chat_id": "oc_g", "operator_id": {"open_id": "ou_ada"}})),
)
TYPES = {"im.message.receive_v1": P2ImMessageReceiveV1, "card.action.trigger": P2CardActionTrigger,
         "im.chat.member.bot.added_v1": P2ImChatMemberBotAddedV1}


@RUNS
@given(st.lists(FEISHU_EVENTS, min_size=1, max_size=12))
def test_random_feishu_events_never_raise(tmp_path_factory, events):
    tmp_path = tmp_path_factory.mktemp("fs")

    async def run():
        engine = await engine_on(tmp_path)
        adapter = FeishuAdapter(FeishuSettings(app_id="cli_fuzz", app_secret="s", domain="http://127.0.0.1:9"))

        async def nobody(*args):
            return ""

        async def private_chat(*args):
            return False
        adapter._name, adapter._bot_open_id, adapter._chat_is_group = nobody, nobody, private_chat
        adapter._is_admin = adapter._replies_to_bot = private_chat
        try:
            for number, (kind, body) in enumerate(events):
                payload = {"schema": "2.0", "header": {"event_id": f"e{number}", "event_type": kind}, "event": body}
                try:
                    event = lark.JSON.unmarshal(json.dumps(payload), TYPES[kind])
                except Exception:
                    continue  # the SDK refuses it before the adapter sees it
                await handled(engine, await adapter.parse(event), tmp_path / "fuzz.db")
        finally:
            await engine.store.close()
    asyncio.run(run())


@RUNS
@given(st.lists(st.one_of(TEXT, st.sampled_from(["1", "2", "3", "4", "9", "0"])), min_size=1, max_size=15))
def test_random_console_lines_never_raise(tmp_path_factory, lines):
    tmp_path = tmp_path_factory.mktemp("console")

    async def run():
        engine = await engine_on(tmp_path)
        console = ConsoleAdapter()
        try:
            for line in lines:
                incoming = console.parse(line)
                await handled(engine, incoming, tmp_path / "fuzz.db")
                if incoming is not None:
                    for reply in await engine.handle(incoming):
                        console.render(reply)  # buttons on screen become the next numbers
        finally:
            await engine.store.close()
    asyncio.run(run())
