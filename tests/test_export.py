"""Your data out: /export (CSV and JSON history), /export anki (weak questions, or a topic) and
`quizbot export`, through the engine, the console, and the Telegram and Feishu stand-ins."""
from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from bot import export
from bot.content import load_bank
from bot.engine import Engine
from bot.models import Chat

from .conftest import ANSWER, button_data, buttons, person, write_bank

ESCAPED_Q = '为什么 <div> 与 A&B 以及 "引号" 要转义？'


def bank_with_an_awkward_topic(folder: Path) -> Path:
    """The small bank plus a topic whose text needs HTML escaping and whose question has a follow-up."""
    write_bank(folder)
    topic = {"topic": "html", "title": "转义", "title_en": "Escaping", "questions": [{
        "id": "html-001", "q": ESCAPED_Q, "difficulty": 2,
        "answer": f"**先转义**再拼接：`<b>` 会被当成标签，& 要写成实体。{ANSWER}",
        "key_points": [{"text": "< 写成 &lt;", "terms": ["&lt;"]}, {"text": "& 写成 &amp;", "terms": ["&amp;"]},
                       {"text": "引号也要转义", "terms": ["引号"]}],
        "follow_ups": [{"q": "<script> 标签怎么处理？", "answer": f"整段转义，绝不原样输出 <script>。{ANSWER[:50]}",
                        "key_points": [{"text": "整段转义", "terms": ["转义"]}, {"text": "不原样输出", "terms": ["原样"]}]}],
        "tags": ["test"], "source": ["seed 001 L1"]}]}
    (folder / "html.yaml").write_text(yaml.safe_dump(topic, allow_unicode=True), encoding="utf-8")
    return folder


def notes(apkg: bytes) -> list[dict]:
    """The notes of an .apkg, read as Anki reads them: a zip holding an SQLite collection."""
    with zipfile.ZipFile(io.BytesIO(apkg)) as archive:
        name = next(n for n in ("collection.anki21", "collection.anki2") if n in archive.namelist())
        data = archive.read(name)
    db = sqlite3.connect(":memory:")
    db.deserialize(data)
    try:
        found = []
        for guid, mid, fields, tags in db.execute("SELECT guid, mid, flds, tags FROM notes ORDER BY id"):
            values = dict(zip(("Id", "Topic", "Context", "Question", "Answer", "KeyPoints"), fields.split("\x1f")))
            found.append({"guid": guid, "model": mid, "tags": tags.split(), **values})
        [(decks,)] = db.execute("SELECT decks FROM col").fetchall()
        deck_ids = {int(k) for k in json.loads(decks)} - {1}  # 1: Anki's Default deck
        for note in found:
            note["decks"] = deck_ids
        return found
    finally:
        db.close()


def read_csv(data: bytes) -> list[dict]:
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: spreadsheet programs then read the Chinese right
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
async def awkward(store, tmp_path, clock) -> Engine:
    return Engine(store, load_bank(bank_with_an_awkward_topic(tmp_path / "awkward")), clock=clock)


async def study(p, slug: str, answer: str, grade: int) -> None:
    await p.say(f"/topic {slug}")
    [reference] = await p.say(answer)
    await p.press(button_data(reference, "rate:")[grade - 1])


# --- the command, through the engine -------------------------------------------------------------

async def test_nothing_to_export_and_bad_arguments_get_friendly_answers(engine):
    p = person(engine)
    [empty] = await p.say("/export")
    assert empty.text == "还没有可以导出的作答记录。先答几道题吧！" and not empty.files
    [none] = await p.say("/export anki")
    assert "还没有给任何题打过分" in none.text and not none.files
    [unknown] = await p.say("/export anki quantum")
    assert "没有找到主题「quantum」" in unknown.text
    assert set(buttons(unknown).values()) == {"export:anki attention", "export:anki rag", "export:anki rlhf"}
    [usage] = await p.say("/export pdf")
    assert usage.text.startswith("用法：/export") and not usage.files
    [english] = await person(engine, "2", lang="en").say("/export")
    assert english.text.startswith("There's nothing to export yet")


async def test_history_comes_as_csv_and_json_with_the_key_points_hit(engine, clock):
    p = person(engine)
    await study(p, "rag", "先检索，再讲要点二", grade=2)
    clock.advance(hours=2)
    await study(p, "rlhf", "奖励模型……要点三", grade=3)
    [reply] = await p.say("/export")
    assert "2 次作答，2 道题" in reply.text
    assert [(f.name, f.mime) for f in reply.files] == [("quizbot-history-20260302.csv", "text/csv"),
                                                      ("quizbot-history-20260302.json", "application/json")]
    first, second = read_csv(reply.files[0].data)
    assert list(first) == list(export.HISTORY_FIELDS)
    assert first["question_id"] == "rag-001" and first["question"] == "什么是检索增强生成？"
    assert first["answer"] == "先检索，再讲要点二" and first["key_points_hit"] == "要点二"
    assert first["key_points_missed"] == "什么是检索增强生成 要点一 | 要点三"
    assert (first["rating"], first["rating_name"]) == ("2", "hard")
    assert first["answered_at"] == "2026-03-02T01:00:00+00:00" and first["next_due"] > first["answered_at"]
    assert second["question_id"] == "rlhf-001" and second["rating_name"] == "good"

    data = json.loads(reply.files[1].data)
    assert data["format"] == "quizbot.history" and data["user"] == "test:1"
    assert [a["question_id"] for a in data["answers"]] == ["rag-001", "rlhf-001"]
    assert data["answers"][0]["key_points_hit"] == ["要点二"]
    assert {c["question_id"]: c["last_rating"] for c in data["cards"]} == {"rag-001": 2, "rlhf-001": 3}
    [only_json] = (await p.say("/export json"))
    assert [f.name for f in only_json.files] == ["quizbot-history-20260302.json"]


async def test_the_weak_deck_holds_the_weak_questions_and_says_what_weak_means(engine, clock):
    p = person(engine)
    await study(p, "rag", "不清楚", grade=1)          # Again: weak
    await study(p, "attention", "还行", grade=2)      # Hard: weak
    await study(p, "rlhf", "奖励模型要点二", grade=4)  # Easy: not weak
    [reply] = await p.say("/export anki")
    assert "2 道题" in reply.text and "「不会」或「模糊」" in reply.text and "不足 2 天" in reply.text
    [deck] = reply.files
    assert deck.name == "quizbot-weak-20260302.apkg" and deck.data[:2] == b"PK"
    found = notes(deck.data)
    assert [n["Id"] for n in found] == ["rag-001", "attention-001"]   # the least stable first
    assert export.note_count(deck.data) == 2
    assert found[0]["Question"] == "什么是检索增强生成？" and "参考答案" in found[0]["Answer"]
    assert "<li>要点二</li>" in found[0]["KeyPoints"] and found[0]["KeyPoints"].startswith("<b>要点</b>")
    assert found[0]["model"] == export.MODEL_ID and found[0]["decks"] == {export.deck_id("weak")}
    assert "rag" in found[0]["tags"] and "quizbot" in found[0]["tags"]

    clock.advance(days=3)  # exported again later: the same notes (GUIDs), model and deck, so Anki updates them
    await study(p, "rag", "先检索再生成", grade=2)
    again = notes((await p.say("/export anki"))[0].files[0].data)
    assert {n["guid"] for n in again} == {n["guid"] for n in found} == {export.note_guid("rag-001"),
                                                                        export.note_guid("attention-001")}
    assert {n["model"] for n in again} == {export.MODEL_ID} and again[0]["decks"] == found[0]["decks"]


async def test_a_strong_learner_is_told_there_is_nothing_weak_and_offered_topic_decks(engine):
    p = person(engine, lang="en")
    await study(p, "rag", "retrieval then generation", grade=4)
    [reply] = await p.say("/export anki")
    assert reply.text.startswith("You have no weak questions right now") and not reply.files
    assert buttons(reply) == {"Retrieval-Augmented Generation": "export:anki rag"}
    [deck] = (await p.press("export:anki rag"))[0].files                 # the button exports the topic
    assert deck.name == "quizbot-rag.apkg" and export.note_count(deck.data) == 3


async def test_a_topic_deck_escapes_every_field_and_brings_the_follow_ups(awkward):
    p = person(awkward)
    [reply] = await p.say("/export anki 转义")
    assert "「转义」的 Anki 卡组：1 道题和 1 道追问" in reply.text
    question, follow_up = notes(reply.files[0].data)
    assert question["Question"] == "为什么 &lt;div&gt; 与 A&amp;B 以及 &quot;引号&quot; 要转义？"
    assert question["Answer"].startswith("<b>先转义</b>再拼接：<code>&lt;b&gt;</code> 会被当成标签，&amp; 要写成实体。")
    assert "<li>&lt; 写成 &amp;lt;</li>" in question["KeyPoints"] and question["Context"] == ""
    assert question["Topic"] == "转义 · Escaping"
    assert follow_up["Id"] == "html-001-f1" and follow_up["Question"] == "&lt;script&gt; 标签怎么处理？"
    assert follow_up["Context"] == question["Question"]                 # the front says what it follows up
    assert "follow-up" in follow_up["tags"] and not any("<script>" in str(value) for value in follow_up.values())
    assert question["decks"] == {export.deck_id("topic:html")}


async def test_in_a_group_only_a_topic_deck_is_sent(engine):
    group = Chat("test", "-42", is_group=True)
    p = person(engine, chat=group)
    await p.say("/topic rag")
    await p.say("/a 先检索")
    for command in ("/export", "/export anki"):
        [refusal] = await p.say(command)
        assert "私聊" in refusal.text and not refusal.files
    [deck] = (await p.say("/export anki rag"))[0].files
    assert export.note_count(deck.data) == 3


# --- the console ----------------------------------------------------------------------------------

def session(cwd: Path, lines: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=cwd, timeout=60)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quizbot.cli", "export", *args], capture_output=True, cwd=cwd,
                          timeout=60)


def test_the_console_saves_the_exports_beside_the_database_and_the_cli_matches_them(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = session(tmp_path, ["/export", "/topic rag", "先检索再生成", "1", "/export", "/export anki", "/export anki rag"])
    assert done.returncode == 0, done.stderr
    assert "还没有可以导出的作答记录" in done.stdout                       # before the first answer
    saved = {p.name for p in tmp_path.iterdir() if p.name.startswith("quizbot-")}
    assert {n for n in saved if n.endswith((".csv", ".json"))} and len(saved) == 4, saved
    for name in saved:
        assert f"文件已保存到 {name}" in done.stdout
    [history] = [p for p in tmp_path.iterdir() if p.suffix == ".csv"]
    [row] = read_csv(history.read_bytes())
    assert (row["question_id"], row["rating_name"], row["answer"]) == ("rag-001", "again", "先检索再生成")
    [weak] = [p for p in tmp_path.iterdir() if p.name.startswith("quizbot-weak-")]
    assert [n["Id"] for n in notes(weak.read_bytes())] == ["rag-001"]
    assert export.note_count((tmp_path / "quizbot-rag.apkg").read_bytes()) == 3

    # the operator's CLI, on the same database and bank
    made = cli(tmp_path, "--format", "apkg", "--out", "weak.apkg", "--user", "console:local")
    assert made.returncode == 0, made.stderr
    assert b"wrote 1 note(s) to weak.apkg" in made.stderr
    assert {n["guid"] for n in notes((tmp_path / "weak.apkg").read_bytes())} == {export.note_guid("rag-001")}
    assert cli(tmp_path, "--format", "csv", "--out", "me.csv", "--user", "console:local").returncode == 0
    assert read_csv((tmp_path / "me.csv").read_bytes())[0]["question_id"] == "rag-001"
    assert cli(tmp_path, "--format", "json", "--out", "me.json", "--user", "console:local", "--topic", "rag").returncode == 0
    assert [a["question_id"] for a in json.loads((tmp_path / "me.json").read_bytes())["answers"]] == ["rag-001"]

    nobody = cli(tmp_path, "--format", "csv", "--out", "x.csv", "--user", "telegram:404")
    assert nobody.returncode == 1 and b"telegram:404 has no answers" in nobody.stderr
    unknown = cli(tmp_path, "--format", "apkg", "--out", "x.apkg", "--topic", "quantum")
    assert unknown.returncode == 1 and b"no topic 'quantum'" in unknown.stderr and b"rag" in unknown.stderr


def test_the_cli_exports_the_bank_itself(tmp_path):
    folder = bank_with_an_awkward_topic(tmp_path / "content")
    config = tmp_path / "bank.toml"
    config.write_text(f'[bot]\ncontent_dir = "{folder}"\n[storage]\npath = "{tmp_path / "none.db"}"\n', encoding="utf-8")
    for fmt in ("csv", "json", "apkg"):
        done = cli(tmp_path, "--format", fmt, "--out", f"bank.{fmt}", "--config", str(config))
        assert done.returncode == 0, done.stderr
    assert not (tmp_path / "none.db").exists()                           # the bank needs no database
    rows = read_csv((tmp_path / "bank.csv").read_bytes())
    assert len(rows) == 9 + 2 and [(r["id"], r["parent"]) for r in rows if r["topic"] == "html"] == [
        ("html-001", ""), ("html-001-f1", "html-001")]
    bank = json.loads((tmp_path / "bank.json").read_bytes())
    assert [t["topic"] for t in bank["topics"]] == ["attention", "html", "rag", "rlhf"]
    assert bank["topics"][1]["questions"][0]["follow_ups"][0]["key_points"][0] == {"text": "整段转义", "terms": ["转义"]}
    deck = notes((tmp_path / "bank.apkg").read_bytes())
    assert len(deck) == 11 and deck[0]["decks"] == {export.deck_id("bank")}
    topic = cli(tmp_path, "--format", "apkg", "--out", "html.apkg", "--topic", "html", "--config", str(config))
    assert topic.returncode == 0 and {n["Id"] for n in notes((tmp_path / "html.apkg").read_bytes())} == {
        "html-001", "html-001-f1"}


# --- the platforms ----------------------------------------------------------------------------------

async def test_telegram_uploads_the_exports_as_documents(tmp_path):
    from .fakes.telegram_api import FakeBotAPI, private, user
    from .test_telegram import running

    api = await FakeBotAPI().start()
    try:
        ada = user(101, "Ada")
        async with running(tmp_path, api) as bot:
            chat = private(ada)
            await bot.say(chat, ada, "/topic rag")
            [reference] = await bot.say(chat, ada, "先检索相关文档")
            await bot.press(ada, reference, next(label for label in reference.buttons if label.startswith("模糊")))
            text, csv_doc, json_doc = await bot.say(chat, ada, "/export")
            assert "1 次作答，1 道题" in text.text
            assert re.fullmatch(r"quizbot-history-\d{8}\.csv", csv_doc.document)
            assert json_doc.document == csv_doc.document.replace(".csv", ".json")
            csv_bytes, json_bytes = api.documents
            assert read_csv(csv_bytes)[0]["rating_name"] == "hard"
            assert json.loads(json_bytes)["user"] == "telegram:101"

            text, deck = await bot.say(chat, ada, "/export anki")
            assert "弱项" in text.text and deck.document.startswith("quizbot-weak-") and deck.document.endswith(".apkg")
            assert [n["Id"] for n in notes(api.documents[-1])] == ["rag-001"]
            assert [c.params.get("chat_id") for c in api.calls_to("sendDocument")] == ["101"] * 3
    finally:
        await api.stop()


async def test_feishu_uploads_the_exports_then_sends_file_messages(tmp_path):
    import uuid
    from .fakes.feishu_api import FakeFeishu, card_event, card_text, card_values, message_event
    from .test_feishu import make_settings, running, say

    fake = FakeFeishu(app_id=f"cli_{uuid.uuid4().hex[:12]}").start()
    fake.users.update({"ou_ada": "Ada"})
    try:
        async with running(make_settings(tmp_path, fake)) as adapter:
            await say(fake, adapter, message_event("oc_p1", "ou_ada", "/topic rag"))
            await say(fake, adapter, message_event("oc_p1", "ou_ada", "先检索相关文档"))
            reference = fake.sent("oc_p1")[-1]
            hard = next(v for label, v in card_values(reference["card"]).items() if label.startswith("模糊"))
            await say(fake, adapter, card_event("oc_p1", "ou_ada", hard, reference["message_id"]))
            before = len(fake.sent("oc_p1"))
            await say(fake, adapter, message_event("oc_p1", "ou_ada", "/export anki rag"))
            text, file_message = fake.sent("oc_p1")[before:]
            assert "Anki 卡组" in card_text(text["card"]) and file_message["msg_type"] == "file"
            name, data = fake.files[file_message["card"]["file_key"]]             # uploaded first, then sent
            assert name == "quizbot-rag.apkg" and len(notes(data)) == 3

            await say(fake, adapter, message_event("oc_p1", "ou_ada", "/export"))
            files = [m for m in fake.sent("oc_p1") if m["msg_type"] == "file"]
            assert len(files) == 3
            names = [fake.files[m["card"]["file_key"]][0] for m in files[1:]]
            assert names[0].endswith(".csv") and names[1].endswith(".json")
            assert read_csv(fake.files[files[1]["card"]["file_key"]][1])[0]["rating_name"] == "hard"
            assert len(fake.calls_to("POST", "/im/v1/files")) == 3
    finally:
        fake.stop()
