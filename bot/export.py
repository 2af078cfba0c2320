"""Your data out: a learner's history as CSV and JSON, the bank itself as CSV and JSON, and Anki
decks (.apkg) of weak questions or of a topic.

Reading the database is one small async function (`load_learner`); everything else is a pure
function from plain rows and the bank to bytes, shared by the /export command (bot/data_out.py)
and `quizbot export` (quizbot/cli.py).

Anki matches what it imports by ids, so these never change: the note type's id (MODEL_ID), each
deck's id (derived from what the deck holds: "weak", "topic:rag", "bank") and each note's GUID
(derived from the question id alone). Importing a newer export of the same deck therefore
updates its notes instead of adding duplicates, and a question keeps its Anki review history.
"""
from __future__ import annotations

import csv
import html
import io
import itertools
import json
import sqlite3
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from . import markup
from .content import Bank
from .models import Question
from .srs import Grade

FORMAT_VERSION = 1
# A question is weak when its last self-rating was Again or Hard, or when FSRS holds it for less
# than this many days (it was forgotten recently and is still fragile, whatever the last rating).
WEAK_RATING = Grade.HARD
WEAK_STABILITY_DAYS = 2.0

MODEL_ID = 1_730_946_214        # the quizbot note type: chosen once, never to change
DECK_ID_RANGE = (1 << 30, 1 << 31)
HISTORY_FIELDS = ("question_id", "topic", "question", "answer", "key_points_hit", "key_points_missed", "rating",
                  "rating_name", "answered_at", "rated_at", "next_due", "stability_days", "grader")
BANK_FIELDS = ("id", "parent", "topic", "topic_title", "topic_title_en", "difficulty", "question", "answer",
               "key_points", "tags", "source")
LIST_SEPARATOR = " | "          # joins a list into one CSV cell


# --- reading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Learner:
    """What the database holds for one learner: every answer (oldest first) and every FSRS card."""

    user_key: str
    answers: tuple[dict, ...]
    cards: tuple[dict, ...]


async def load_learner(store, user_key: str) -> Learner:
    answers = await store.all("SELECT * FROM answers WHERE user_key = ? ORDER BY answered_at, id", user_key)
    cards = await store.all("SELECT * FROM cards WHERE user_key = ? ORDER BY due_utc, question_id", user_key)
    return Learner(user_key, tuple(map(dict, answers)), tuple(map(dict, cards)))


# --- history: CSV and JSON ----------------------------------------------------------------------

def history_rows(learner: Learner, bank: Bank, topic: str | None = None) -> list[dict]:
    """One row per answer, oldest first; `topic` keeps only that topic's questions (and follow-ups).
    Key points are None when the answer was not graded (the reference was shown without one)."""
    rows = []
    for answer in learner.answers:
        question = bank.by_id.get(answer["question_id"])
        if topic is not None and (question is None or question.topic != topic):
            continue
        hit = missed = None
        if question is not None and answer.get("covered") is not None:
            covered = set(json.loads(answer["covered"]))
            hit = [p.text for i, p in enumerate(question.key_points) if i in covered]
            missed = [p.text for i, p in enumerate(question.key_points) if i not in covered]
        rating = answer.get("rating")
        rows.append({
            "question_id": answer["question_id"], "topic": question.topic if question else None,
            "question": question.q if question else None, "answer": answer["text"],
            "key_points_hit": hit, "key_points_missed": missed, "rating": rating,
            "rating_name": Grade(rating).name.lower() if rating else None,
            "answered_at": answer["answered_at"], "rated_at": answer.get("rated_at"),
            "next_due": answer.get("due_utc"),
            "stability_days": round(answer["stability"], 2) if answer.get("stability") is not None else None,
            "grader": answer.get("grader"),
        })
    return rows


def card_rows(learner: Learner, bank: Bank, topic: str | None = None) -> list[dict]:
    """The learner's review schedule now: one row per question they rated."""
    rows = []
    for card in learner.cards:
        question = bank.by_id.get(card["question_id"])
        if topic is not None and (question is None or question.topic != topic):
            continue
        rows.append({"question_id": card["question_id"], "topic": question.topic if question else None,
                     "question": question.q if question else None, "next_due": card["due_utc"],
                     "stability_days": round(card["stability"], 2), "last_rating": card["last_rating"],
                     "reviews": card["reviews"]})
    return rows


def history_csv(rows: list[dict]) -> bytes:
    return _csv(HISTORY_FIELDS, rows)


def history_json(learner: Learner, bank: Bank, now: datetime, topic: str | None = None) -> bytes:
    return _json({"format": "quizbot.history", "version": FORMAT_VERSION, "user": learner.user_key,
                  "exported_at": _utc(now), "topic": topic, "answers": history_rows(learner, bank, topic),
                  "cards": card_rows(learner, bank, topic)})


# --- the bank: CSV and JSON -----------------------------------------------------------------------

def bank_rows(bank: Bank, topic: str | None = None) -> list[dict]:
    """Every question and follow-up (a follow-up names its question as `parent`), in bank order."""
    rows = []
    for slug, entry in bank.topics.items():
        if topic is not None and slug != topic:
            continue
        for question in entry.questions:
            for item in (question, *question.follow_ups):
                rows.append({"id": item.id, "parent": item.parent, "topic": slug, "topic_title": entry.title,
                             "topic_title_en": entry.title_en, "difficulty": item.difficulty, "question": item.q,
                             "answer": item.answer.strip(), "key_points": [p.text for p in item.key_points],
                             "tags": list(item.tags), "source": list(item.source)})
    return rows


def bank_csv(bank: Bank, topic: str | None = None) -> bytes:
    return _csv(BANK_FIELDS, bank_rows(bank, topic))


def bank_json(bank: Bank, now: datetime, topic: str | None = None) -> bytes:
    def item(q: Question) -> dict:
        data = {"id": q.id, "q": q.q, "difficulty": q.difficulty, "answer": q.answer.strip(),
                "key_points": [{"text": p.text, "terms": list(p.terms)} for p in q.key_points]}
        if q.parent is None:
            data.update(tags=list(q.tags), source=list(q.source), follow_ups=[item(f) for f in q.follow_ups])
        return data
    topics = [{"topic": slug, "title": t.title, "title_en": t.title_en, "questions": [item(q) for q in t.questions]}
              for slug, t in bank.topics.items() if topic is None or slug == topic]
    return _json({"format": "quizbot.bank", "version": FORMAT_VERSION, "exported_at": _utc(now), "topics": topics})


# --- Anki -------------------------------------------------------------------------------------------

def weak_question_ids(learner: Learner, bank: Bank) -> list[str]:
    """The learner's weak questions still in the bank, weakest (least stable) first."""
    weak = [c for c in learner.cards if c["question_id"] in bank.by_id
            and (c["last_rating"] <= WEAK_RATING or c["stability"] < WEAK_STABILITY_DAYS)]
    return [c["question_id"] for c in sorted(weak, key=lambda c: (c["stability"], c["question_id"]))]


def topic_question_ids(bank: Bank, topic: str | None = None) -> list[str]:
    """A topic's questions, each followed by its follow-ups (every topic when None)."""
    return [row["id"] for row in bank_rows(bank, topic)]


def deck_id(deck_key: str) -> int:
    """A stable Anki deck id for what a deck holds ("weak", "topic:rag", "bank")."""
    low, high = DECK_ID_RANGE
    return low + zlib.crc32(f"quizbot-deck:{deck_key}".encode()) % (high - low)


def note_guid(question_id: str) -> str:
    """A note's GUID: the question's id alone, so every export of it is the same Anki note."""
    import genanki
    return genanki.guid_for("quizbot", question_id)


def anki_package(bank: Bank, question_ids: Iterable[str], deck_key: str, deck_name: str, points_title: str,
                 now: datetime, description: str = "") -> bytes:
    """An .apkg: one note per question (front: the question, with the question it follows up for
    a follow-up; back: the reference answer and its key points). Every field is HTML-escaped."""
    import genanki  # imported on first use, like matplotlib

    model = _model(genanki)
    deck = genanki.Deck(deck_id(deck_key), deck_name, html.escape(description))
    for question_id in dict.fromkeys(question_ids):
        question = bank.by_id.get(question_id)
        if question is None:
            continue
        topic = bank.topics[question.topic]
        parent = bank.by_id.get(question.parent) if question.parent else None
        points = "".join(f"<li>{_html(p.text)}</li>" for p in question.key_points)
        fields = [html.escape(question.id), html.escape(f"{topic.title} · {topic.title_en}"),
                  _html(parent.q) if parent else "", _html(question.q), _html(question.answer.strip()),
                  f"<b>{html.escape(points_title)}</b><ul>{points}</ul>" if points else ""]
        tags = ["quizbot", question.topic, f"difficulty-{question.difficulty}"] + (["follow-up"] if parent else [])
        deck.add_note(genanki.Note(model=model, fields=fields, guid=note_guid(question.id), tags=tags))
    return _apkg(genanki.Package(deck), now)


def note_count(apkg: bytes) -> int:
    """How many notes an .apkg holds (for tests and the CLI's report)."""
    with zipfile.ZipFile(io.BytesIO(apkg)) as archive:
        name = next(n for n in ("collection.anki21", "collection.anki2") if n in archive.namelist())
        collection = archive.read(name)
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(collection)
        return db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    finally:
        db.close()


_CSS = """.card { font-family: -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
  font-size: 18px; line-height: 1.5; text-align: left; color: #111; background: #fff; }
.topic { font-size: 12px; color: #6b7280; }
.context { font-size: 14px; color: #6b7280; border-left: 3px solid #d1d5db; padding-left: 8px; margin: 6px 0; }
.question { font-weight: 600; margin: 8px 0; }
.answer { margin: 8px 0; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; background: #f3f4f6; border-radius: 3px; }
pre { padding: 6px; white-space: pre-wrap; }
"""
_FRONT = ('<div class="topic">{{Topic}} · {{Id}}</div>{{#Context}}<div class="context">{{Context}}</div>{{/Context}}'
          '<div class="question">{{Question}}</div>')
_BACK = '{{FrontSide}}<hr id="answer"><div class="answer">{{Answer}}</div><div class="points">{{KeyPoints}}</div>'


def _model(genanki):
    return genanki.Model(
        MODEL_ID, "quizbot question",
        fields=[{"name": name} for name in ("Id", "Topic", "Context", "Question", "Answer", "KeyPoints")],
        templates=[{"name": "Question → answer", "qfmt": _FRONT, "afmt": _BACK}], css=_CSS)


def _html(text: str) -> str:
    """The bank's tiny markup as escaped HTML: **bold**, `code`, code blocks, line breaks."""
    out = []
    for style, part in markup.segments(text):
        escaped = html.escape(part)
        if style == "pre":
            out.append(f"<pre><code>{escaped}</code></pre>")
        elif style == "code":
            out.append(f"<code>{escaped}</code>")
        else:
            escaped = escaped.replace("\n", "<br>")
            out.append(f"<b>{escaped}</b>" if style == "bold" else escaped)
    return "".join(out)


def _apkg(package, now: datetime) -> bytes:
    """The package as bytes, built in memory (genanki's own writer leaves a temporary file behind)."""
    timestamp = now.timestamp()
    db = sqlite3.connect(":memory:")
    try:
        package.write_to_db(db.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
        db.commit()
        collection = db.serialize()
    finally:
        db.close()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("collection.anki2", collection)
        archive.writestr("media", "{}")
    return out.getvalue()


# --- helpers -----------------------------------------------------------------------------------------

def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _csv(fields: tuple[str, ...], rows: list[dict]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese right; lists joined."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: LIST_SEPARATOR.join(v) if isinstance(v, list) else ("" if v is None else v)
                         for k, v in row.items() if k in fields})
    return out.getvalue().encode("utf-8-sig")


def _json(data: dict) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
