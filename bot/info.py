"""What the learner can look at: the welcome, help, topics, statistics, history and a group's board."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import i18n, srs
from .models import Button, Reply
from .quiz import progress, serve_topic, topic_buttons
from .stats import cjk_font, day_counts, mastery_chart, streak
from .storage import from_utc_text, utc_text
from .timeutil import local_date
from .turn import Core, Turn, next_button, row, short

HISTORY_SIZE = 10


async def start(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    """The welcome; `/start topic_rag` (a Telegram deep link t.me/<bot>?start=topic_rag) opens
    straight on that topic, after the welcome on first contact. Any other payload just welcomes."""
    name = turn.msg.user.name
    text = turn.t("welcome", name=turn.t("welcome_name", name=name) if name else "",
                  topics=len(core.bank.topics), questions=len(core.bank.questions))
    linked = deep_link_topic(core, args)
    if linked is not None:
        return ([Reply(text)] if turn.new_chat else []) + await serve_topic(core, turn, linked)
    buttons = (row(Button(turn.t("button_next"), "next"), Button(turn.t("button_topics"), "topics")),
               row(Button(turn.t("button_subscribe"), "subscribe"), Button(turn.t("button_plans"), "plan")))
    return [Reply(text, buttons)]


DEEP_LINK_TOPIC = "topic_"  # t.me/<bot>?start=topic_<slug>: a payload is at most 64 of A-Z a-z 0-9 _ -


def deep_link_topic(core: Core, payload: str):
    """The topic a /start payload names ("topic_rag"), or None."""
    payload = payload.strip().lower()
    if not payload.startswith(DEEP_LINK_TOPIC):
        return None
    return core.bank.topics.get(payload.removeprefix(DEEP_LINK_TOPIC))


async def help(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    return [Reply(turn.t("help"))]


async def topic_counts(core: Core, turn: Turn) -> dict[str, tuple[int, int, int]]:
    """slug → (answered, mastered, total) for the user."""
    answered = await core.store.answered_ids(turn.user["key"])
    stability = {c["question_id"]: c["stability"] for c in await core.store.cards(turn.user["key"])}
    counts = {}
    for slug, topic in core.bank.topics.items():
        ids = [q.id for q in topic.questions]
        counts[slug] = (sum(i in answered for i in ids),
                        sum(stability.get(i, 0) >= srs.MASTERED_STABILITY_DAYS for i in ids), len(ids))
    return counts


async def topics(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    counts = await topic_counts(core, turn)
    lines = "\n".join(f"- {topic.name(turn.lang)} `{slug}`: {'/'.join(map(str, counts[slug]))}"
                      for slug, topic in core.bank.topics.items())
    return [Reply(turn.t("topics", lines=lines), topic_buttons(turn, core.bank.topics.values()))]


async def stats(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    times = await core.store.answer_times(turn.user["key"])
    if not times:
        return [Reply(turn.t("stats_empty"), next_button(turn))]
    counts = await topic_counts(core, turn)
    known = await progress(core, turn)
    lines = "\n".join(f"- {core.bank.topics[slug].name(turn.lang)}: {'/'.join(map(str, c))}"
                      for slug, c in counts.items() if c[0])
    moments = [from_utc_text(x) for x in times]
    text = turn.t("stats", answers=len(times), distinct=len(known.answered), total=len(core.bank.questions),
                  streak=streak(moments, turn.now, turn.tz), due=len(known.due),
                  mastered=sum(c[1] for c in counts.values()), lines=lines)
    rows = [(core.bank.topics[slug], *c) for slug, c in counts.items()]
    chart = await asyncio.to_thread(lambda: mastery_chart(rows, day_counts(moments, turn.tz),
                                                          local_date(turn.now, turn.tz), turn.lang, cjk_font()))
    return [Reply(text, image=chart)]


async def history(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    """The latest answers: what the learner wrote (shortened), the key points hit and the rating,
    each with a button to try that question again."""
    rows = await core.store.history(turn.user["key"], HISTORY_SIZE)
    if not rows:
        return [Reply(turn.t("history_empty"))]
    lines, buttons = [], []
    for number, entry in enumerate(rows, start=1):
        question = core.question(entry["question_id"])
        title = short(question.q, 30) if question else f"{entry['question_id']} {turn.t('removed_question')}"
        rating = turn.t(f"grade_{entry['rating']}") if entry["rating"] else turn.t("not_rated")
        if entry["covered"] is not None and question is not None:
            rating += turn.t("board_hits", hit=len(json.loads(entry["covered"])), total=len(question.key_points))
        day = i18n.format_date(local_date(from_utc_text(entry["answered_at"]), turn.tz), turn.lang)
        said = short(entry["text"], 40) if entry["text"] else turn.t("history_revealed")
        lines.append(turn.t("history_line", number=number, day=day, title=title, rating=rating, answer=said))
        if question is not None and len(buttons) < 6:
            buttons.append(Button(turn.t("button_retry", number=number), f"q:{question.id}"))
    grid = tuple(tuple(buttons[i:i + 3]) for i in range(0, len(buttons), 3))
    return [Reply(turn.t("history", lines="\n".join(lines)), grid)]


def week_start(turn: Turn) -> tuple[str, str]:
    """This week's Monday in the chat's zone: as a UTC instant and as a date for people."""
    today = local_date(turn.now, turn.tz)
    monday = today - timedelta(days=today.weekday())
    return utc_text(datetime.combine(monday, datetime.min.time(), ZoneInfo(turn.tz))), i18n.format_date(monday, turn.lang)


async def leaderboard(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    """This week's answers (since Monday, local time) and average self-rating per member."""
    since, monday = week_start(turn)
    rows = await core.store.weekly_board(turn.chat["key"], since)
    if not rows:
        return [Reply(turn.t("leaderboard_empty"))]
    lines = "\n".join(turn.t("leaderboard_line", rank=i, name=r["name"] or r["user_key"].split(":", 1)[-1],
                             answers=r["answers"], average=f"{r['average']:.1f}" if r["average"] else "–")
                      for i, r in enumerate(rows, start=1))
    return [Reply(turn.t("leaderboard", since=monday, lines=lines))]
