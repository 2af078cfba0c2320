"""Messages nobody asked for: the daily question and the weekly digest (sent by bot/delivery.py)."""
from __future__ import annotations

from .info import leaderboard, week_start
from .models import Question, Reply, Topic
from .quiz import choose_next, progress, serve
from .stats import streak
from .storage import from_utc_text
from .turn import Core, Turn, next_button, scheduled, short


async def daily_question(core: Core, chat_key: str) -> Reply | None:
    """Today's question for a subscribed chat; a group also hears how the last one went."""
    turn = await scheduled(core, chat_key)
    if turn is None:
        return None
    header = turn.t("daily_header")
    previous = turn.ask
    if turn.is_group and previous is not None:
        answers = await core.store.answers_to(previous["id"])
        ratings = [a["rating"] for a in answers if a["rating"]]
        question = core.question(previous["question_id"])
        if question is not None:
            header += turn.t("group_summary", q=short(question.q, 30), count=len(answers),
                             average=f"{sum(ratings) / len(ratings):.1f}" if ratings else "–") + "\n\n"
    known = await progress(core, turn)
    chosen, note = await choose_next(core, turn, known)
    if chosen is None:
        return Reply(header + turn.t("bank_done"), lang=turn.lang)
    [reply] = await serve(core, turn, chosen, note)
    more_due = len(known.due) - (chosen.reason == "review")
    text = reply.text
    if turn.chat["nudge"] and more_due > 0:  # a person's own reviews; a group has none
        text += "\n\n" + turn.t("nudge", count=more_due)
    return Reply(header + text, reply.buttons, lang=turn.lang)


async def preview_daily(core: Core, chat_key: str) -> Question | None:
    """The question the next push to this chat would ask; changes nothing."""
    turn = await scheduled(core, chat_key)
    chosen = (await choose_next(core, turn))[0] if turn else None
    return chosen.question if chosen else None


async def weekly_digest(core: Core, chat_key: str) -> Reply | None:
    """The week in numbers: for a person their answers, streak and weakest topic; for a group its board."""
    turn = await scheduled(core, chat_key)
    if turn is None:
        return None
    if turn.is_group:
        [board] = await leaderboard(core, turn)
        return Reply(turn.t("digest_header") + board.text, lang=turn.lang)
    since, _ = week_start(turn)
    times = [from_utc_text(x) for x in await core.store.answer_times(turn.user["key"])]
    week = sum(moment >= from_utc_text(since) for moment in times)
    weakest = await weakest_topic(core, turn)
    return Reply(turn.t("digest_header") + turn.t(
        "digest", answers=week, streak=streak(times, turn.now, turn.tz),
        weakest=weakest.name(turn.lang) if weakest else turn.t("none"),
        slug=weakest.slug if weakest else ""), next_button(turn), lang=turn.lang)


async def weakest_topic(core: Core, turn: Turn) -> Topic | None:
    """The answered topic whose questions the user holds least firmly (lowest mean stability)."""
    stability = {c["question_id"]: c["stability"] for c in await core.store.cards(turn.user["key"])}
    means = {}
    for slug, topic in core.bank.topics.items():
        held = [stability[q.id] for q in topic.questions if q.id in stability]
        if held:
            means[slug] = sum(held) / len(held)
    return core.bank.topics[min(means, key=means.get)] if means else None
