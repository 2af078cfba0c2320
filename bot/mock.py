"""Mock interviews: /mock [topic] [n] asks n questions in a row in interview style, following up
where the bank has follow-ups, with no reference until the end unless asked, then one summary.
Every answer is graded and self-rated like any other, so all of it feeds spaced repetition."""
from __future__ import annotations

import json

from .models import Button, Reply, Section
from .picker import Pick, Progress, pick
from .quiz import apply_rating, keep_answer, marked_points, progress, rating_buttons, reference
from .storage import utc_text
from .turn import Core, Turn, row, short

DEFAULT_QUESTIONS, MAX_QUESTIONS = 5, 20
STOP_WORDS = {"stop", "end", "结束", "停止"}


def active(turn: Turn) -> bool:
    """The chat's open question belongs to its mock interview under way."""
    return bool(turn.chat.get("mock_id")) and turn.ask is not None and turn.ask.get("mock_id") == turn.chat["mock_id"]


async def command(core: Core, turn: Turn, args: str) -> list[Reply]:
    """/mock [topic] [n], /mock stop."""
    if turn.is_group:
        return [Reply(turn.t("mock_private_only"))]
    words = args.split()
    if words and words[0].lower() in STOP_WORDS:
        if not turn.chat.get("mock_id"):
            return [Reply(turn.t("mock_none"), (row(Button(turn.t("button_mock"), "mock")),))]
        return [await finish(core, turn, early=True)]
    if turn.chat.get("mock_id"):
        if words and words[0].lower() in ("continue", "继续"):
            return await ask_next(core, turn, turn.chat["mock_id"])
        mock = await core.store.one("SELECT * FROM mocks WHERE id = ?", turn.chat["mock_id"])
        asked = await _main_asks(core, turn.chat["mock_id"])
        return [Reply(turn.t("mock_under_way", done=len(asked), total=mock["total"] if mock else "?"),
                      (row(Button(turn.t("button_mock_continue"), "mock:continue"),
                           Button(turn.t("button_mock_stop"), "mock:stop")),))]
    total, topic, rest = DEFAULT_QUESTIONS, None, []
    for word in words:
        if word.isdigit():
            total = int(word)
        else:
            rest.append(word)
    if not 1 <= total <= MAX_QUESTIONS:
        return [Reply(turn.t("mock_bad_count", limit=MAX_QUESTIONS))]
    if rest:
        found = core.bank.find_topics(" ".join(rest))
        if len(found) != 1:
            return [Reply(turn.t("mock_bad_topic", query=short(" ".join(rest))))]
        topic = found[0].slug
    mock_id = await core.store.write(
        "INSERT INTO mocks (chat_key, user_key, topic, total, started_at) VALUES (?, ?, ?, ?, ?)",
        turn.chat["key"], turn.user["key"], topic, total, utc_text(turn.now))
    await core.store.update("chats", turn.chat["key"], mock_id=mock_id)
    turn.chat["mock_id"] = mock_id
    title = core.bank.topics[topic].name(turn.lang) if topic else turn.t("mock_all_topics")
    return [Reply(turn.t("mock_intro", total=total, topic=title))] + await ask_next(core, turn, mock_id)


async def _main_asks(core: Core, mock_id: int) -> list[dict]:
    rows = await core.store.all("SELECT id, question_id FROM asks WHERE mock_id = ? ORDER BY id", mock_id)
    return [dict(r) for r in rows if (q := core.question(r["question_id"])) is None or q.parent is None]


async def ask_next(core: Core, turn: Turn, mock_id: int, after: str | None = None) -> list[Reply]:
    """The follow-up to the question just answered (once per question), else the next question,
    else the summary."""
    mock = await core.store.one("SELECT * FROM mocks WHERE id = ?", mock_id)
    asked = await core.store.all("SELECT question_id FROM asks WHERE mock_id = ?", mock_id)
    asked_ids = {r["question_id"] for r in asked}
    if after is not None:
        question = core.question(after)
        if question is not None and question.parent is None and question.follow_ups \
                and question.follow_ups[0].id not in asked_ids:
            return [await _serve(core, turn, mock_id, Pick(question.follow_ups[0], "new"), len(asked_ids), mock["total"])]
    main = [qid for qid in asked_ids if (q := core.question(qid)) is None or q.parent is None]
    if len(main) >= mock["total"]:
        return [await finish(core, turn)]
    known = await progress(core, turn)
    # Never the same question twice in one interview: what it asked counts as answered and firmly held.
    known = Progress(tuple(q for q in known.due if q not in asked_ids), known.answered | asked_ids,
                     {**known.stability, **{q: float("inf") for q in asked_ids}})
    pool = [core.bank.topics[mock["topic"]]] if mock["topic"] in core.bank.topics else list(core.bank.topics.values())
    chosen = pick(pool, known, None, index=core.bank.by_id)
    if chosen is None or chosen.question.id in asked_ids:
        return [await finish(core, turn)]
    return [await _serve(core, turn, mock_id, chosen, len(main) + 1, mock["total"])]


async def _serve(core: Core, turn: Turn, mock_id: int, chosen: Pick, number: int, total: int) -> Reply:
    question = chosen.question
    ask_id = await core.store.ask(turn.chat["key"], question.id, turn.now, mock_id)
    topic = core.bank.topics[question.topic].name(turn.lang)
    key = "mock_follow_up" if question.parent else "mock_question"
    text = turn.t(key, number=number, total=total, topic=topic, q=question.q)
    return Reply(text, (row(Button(turn.t("button_reveal"), f"reveal:{ask_id}"), Button(turn.t("button_skip"), f"mskip:{ask_id}"),
                            Button(turn.t("button_mock_stop"), "mock:stop")),))


async def answer(core: Core, turn: Turn, text: str, revealing: bool = False) -> list[Reply]:
    """An answer in the interview: kept and graded, but the reference waits for the summary
    (unless the learner asked to see it); a self-rating moves on."""
    kept = await keep_answer(core, turn, text.strip(), revealing)
    if isinstance(kept, list):
        return kept
    [grades] = rating_buttons(turn, kept.ask["id"], kept.verdict.suggested if kept.verdict else None)
    buttons = (tuple(Button(b.label, "m" + b.data) for b in grades),)  # "mrate:…": a rating that moves on
    if revealing:
        shown = await reference(core, turn, kept.ask, kept.answer_id, kept.verdict)
        return kept.notes + [Reply(shown.text, buttons, sections=shown.sections)]
    return kept.notes + [Reply(turn.t("mock_answered"), buttons)]


async def reveal(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    return await answer(core, turn, "", revealing=True)


async def rate(core: Core, turn: Turn, arg: str) -> list[Reply]:
    """A self-rating during the interview: saved with FSRS, then the next question."""
    rated = await apply_rating(core, turn, arg)
    if isinstance(rated, list):
        return rated
    mock_id = rated.ask.get("mock_id") or turn.chat.get("mock_id")
    if not mock_id or mock_id != turn.chat.get("mock_id"):
        return [Reply(rated.text)]
    return await ask_next(core, turn, mock_id, after=rated.answer["question_id"])


async def skip(core: Core, turn: Turn, arg: str = "") -> list[Reply]:
    """Skip the interview's open question (a button names it; /skip means the open one)."""
    if turn.ask is None or (arg and str(turn.ask["id"]) != arg) or not turn.chat.get("mock_id"):
        return [Reply(turn.t("stale_button"))]
    await core.store.close_ask(turn.ask["id"])
    return [Reply(turn.t("skipped"))] + await ask_next(core, turn, turn.chat["mock_id"])


async def finish(core: Core, turn: Turn, early: bool = False) -> Reply:
    """The summary: per question the key points hit and missed and the self-rating, the weakest
    topic and what to review next."""
    mock_id = turn.chat["mock_id"]
    await core.store.write("UPDATE mocks SET finished_at = ? WHERE id = ?", utc_text(turn.now), mock_id)
    await core.store.update("chats", turn.chat["key"], mock_id=None)
    turn.chat["mock_id"] = None
    rows = await core.store.all(
        "SELECT a.id, a.question_id, ans.text, ans.rating, ans.covered FROM asks a LEFT JOIN answers ans "
        "ON ans.ask_id = a.id AND ans.user_key = ? WHERE a.mock_id = ? ORDER BY a.id", turn.user["key"], mock_id)
    lines, review, by_topic = [], [], {}
    for number, entry in enumerate(rows, start=1):
        question = core.question(entry["question_id"])
        if question is None:
            continue
        total = len(question.key_points)
        covered = set(json.loads(entry["covered"])) if entry["covered"] else set()
        rating = turn.t(f"grade_{entry['rating']}") if entry["rating"] else (
            turn.t("not_rated") if entry["text"] is not None else turn.t("mock_skipped"))
        missed = [p.text for i, p in enumerate(question.key_points) if i not in covered]
        prefix = "↳ " if question.parent else f"{number}. "
        lines.append(turn.t("mock_line", prefix=prefix, q=short(question.q, 34), hit=len(covered), total=total,
                            rating=rating, id=question.id))
        if missed and entry["text"] is not None:
            lines.append(turn.t("mock_missed", points=turn.t("list_separator").join(short(m, 24) for m in missed[:3])))
        if entry["rating"] is None or entry["rating"] <= 2:
            review.append(question.id)
        by_topic.setdefault(question.topic, []).append(entry["rating"] or 1)
    if not lines:
        return Reply(turn.t("mock_empty"), (row(Button(turn.t("button_mock"), "mock")),))
    weakest = min(by_topic, key=lambda slug: sum(by_topic[slug]) / len(by_topic[slug]))
    advice = turn.t("mock_review", ids=" ".join(f"/q {q}" for q in review[:5])) if review else turn.t("mock_all_good")
    footer = turn.t("mock_footer", topic=core.bank.topics[weakest].name(turn.lang), slug=weakest, advice=advice)
    title = turn.t("mock_summary_early" if early else "mock_summary")
    return Reply(title, (row(Button(turn.t("button_mock_again"), "mock"), Button(turn.t("button_next"), "next")),),
                 sections=(Section("\n".join(lines)), Section(footer)))
