"""/export: the learner's history as CSV and JSON files, and Anki decks of weak questions or of a
topic. The bytes are built by bot/export.py (shared with `quizbot export`); this module only
decides what to send and says so."""
from __future__ import annotations

import asyncio

from . import export
from .models import Attachment, Button, Reply
from .timeutil import local_date
from .turn import Core, Turn, next_button, row, short

CSV, JSON, APKG = "text/csv", "application/json", "application/octet-stream"  # .apkg has no registered type


async def export_command(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    """`/export` (CSV and JSON), `/export csv`, `/export json`, `/export anki [TOPIC]`."""
    what, _, rest = args.strip().partition(" ")
    what = what.lower()
    if what in ("anki", "apkg"):
        return await anki(core, turn, rest.strip())
    if what not in ("", "csv", "json") or rest.strip():
        return [Reply(turn.t("export_usage"))]
    if turn.is_group:  # a learner's answers are theirs: never posted to a group
        return [Reply(turn.t("export_private_only"))]
    learner = await export.load_learner(core.store, turn.user["key"])
    if not learner.answers:
        return [Reply(turn.t("export_empty"), next_button(turn))]
    stamp = _stamp(turn)
    files = []
    if what in ("", "csv"):
        rows = export.history_rows(learner, core.bank)
        files.append(Attachment(f"quizbot-history-{stamp}.csv", export.history_csv(rows), CSV))
    if what in ("", "json"):
        files.append(Attachment(f"quizbot-history-{stamp}.json",
                                export.history_json(learner, core.bank, turn.now), JSON))
    distinct = len({a["question_id"] for a in learner.answers})
    return [Reply(turn.t("export_history", answers=len(learner.answers), questions=distinct), files=tuple(files))]


async def anki(core: Core, turn: Turn, query: str) -> list[Reply]:
    """A deck of the learner's weak questions, or of a whole topic (bank content: fine in a group)."""
    bank = core.bank
    if query:
        found = bank.find_topics(query)
        if len(found) != 1:
            key = "export_topic_ambiguous" if found else "export_topic_unknown"
            choices = found or list(bank.topics.values())
            return [Reply(turn.t(key, query=short(query)), _deck_buttons(turn, choices))]
        topic = found[0]
        ids = export.topic_question_ids(bank, topic.slug)
        name = f"quizbot::{topic.name(turn.lang)}"
        data = await _package(core, turn, ids, f"topic:{topic.slug}", name)
        return [Reply(turn.t("export_anki_topic", topic=topic.name(turn.lang), questions=len(topic.questions),
                             follow_ups=len(ids) - len(topic.questions)),
                      files=(Attachment(f"quizbot-{topic.slug}.apkg", data, APKG),))]
    if turn.is_group:
        return [Reply(turn.t("export_private_only"))]
    learner = await export.load_learner(core.store, turn.user["key"])
    ids = export.weak_question_ids(learner, bank)
    if not ids:
        key = "export_no_weak" if learner.cards else "export_nothing_rated"
        return [Reply(turn.t(key, days=_days()), _deck_buttons(turn, _studied_topics(core, learner)))]
    data = await _package(core, turn, ids, "weak", f"quizbot::{turn.t('export_weak_deck')}")
    return [Reply(turn.t("export_anki_weak", count=len(ids), days=_days()),
                  files=(Attachment(f"quizbot-weak-{_stamp(turn)}.apkg", data, APKG),))]


async def _package(core: Core, turn: Turn, ids: list[str], deck_key: str, name: str) -> bytes:
    # genanki and SQLite work for a few milliseconds per hundred notes: off the event loop all the same
    return await asyncio.to_thread(export.anki_package, core.bank, ids, deck_key, name,
                                   turn.t("export_points_title"), turn.now, turn.t("export_deck_description"))


def _deck_buttons(turn: Turn, topics) -> tuple[tuple[Button, ...], ...]:
    """One button per topic, each exporting that topic's deck."""
    buttons = [Button(t.name(turn.lang), f"export:anki {t.slug}") for t in topics
               if len(f"export:anki {t.slug}".encode()) <= 64]  # Telegram's callback_data limit
    if not buttons:
        return next_button(turn)
    return tuple(row(*buttons[i:i + 2]) for i in range(0, len(buttons), 2))


def _studied_topics(core: Core, learner: export.Learner):
    seen = {core.bank.by_id[a["question_id"]].topic for a in learner.answers if a["question_id"] in core.bank.by_id}
    return [t for slug, t in core.bank.topics.items() if slug in seen]


def _stamp(turn: Turn) -> str:
    return local_date(turn.now, turn.tz).strftime("%Y%m%d")


def _days() -> str:
    return f"{export.WEAK_STABILITY_DAYS:g}"

