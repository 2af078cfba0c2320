"""The quiz loop: ask → answer → reference with the key points marked → self-rating, and the
follow-ups (追问) an interviewer would ask next."""
from __future__ import annotations

import json
from dataclasses import dataclass

from . import i18n, srs
from .grading import Verdict
from .models import Button, Point, Question, Reply, Section, Topic
from .picker import Pick, Progress, pick
from .storage import from_utc_text, utc_text
from .timeutil import end_of_local_day, local_date
from .turn import Core, Turn, next_button, row, short

MAX_ANSWER_CHARS = 4000  # a chat message is at most 4096 characters on Telegram


# --- asking -----------------------------------------------------------------------------

async def serve(core: Core, turn: Turn, chosen: Pick, note: str = "") -> list[Reply]:
    """Open `chosen` as the chat's question."""
    question = chosen.question
    ask_id = await core.store.ask(turn.chat["key"], question.id, turn.now)
    return [Reply(f"{note}\n\n{question_text(core, turn, chosen)}" if note else question_text(core, turn, chosen),
                  question_buttons(turn, ask_id))]


def question_text(core: Core, turn: Turn, chosen: Pick) -> str:
    question = chosen.question
    topic = core.bank.topics[question.topic]
    reason = turn.t(f"reason_{chosen.reason}")
    if question.parent:  # a fresh follow-up is the interviewer drilling down; a due one is a review of it
        reason = turn.t("reason_follow_up") if chosen.reason == "new" else reason + turn.t("follow_up_tag")
    template = "question_group" if turn.is_group else "question"
    return turn.t(template, reason=reason, topic=topic.name(turn.lang),
                  difficulty=turn.t(f"difficulty_{question.difficulty}"), q=question.q)


def question_buttons(turn: Turn, ask_id: int) -> tuple[tuple[Button, ...], ...]:
    return (row(Button(turn.t("button_reveal"), f"reveal:{ask_id}"), Button(turn.t("button_skip"), f"skip:{ask_id}")),)


async def progress(core: Core, turn: Turn) -> Progress:
    """A person's reviews and answers; for a group, the questions it has been asked (members'
    reviews are their own, so a group's question is a new one for everybody)."""
    if turn.is_group:
        return Progress(due=(), answered=frozenset(await core.store.asked_ids(turn.chat["key"])), stability={})
    rows = await core.store.studied(turn.user["key"])
    due_before = utc_text(end_of_local_day(turn.now, turn.tz))
    return Progress(
        due=tuple(r["question_id"] for r in rows if r["due_utc"] is not None and r["due_utc"] < due_before),
        answered=frozenset(r["question_id"] for r in rows),
        stability={r["question_id"]: r["stability"] for r in rows if r["stability"] is not None},
    )


def last_question(turn: Turn) -> str | None:
    return turn.ask["question_id"] if turn.ask else None


async def next_question(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    chosen, note = await choose_next(core, turn)
    if chosen is None:
        return [Reply(turn.t("bank_done"))]
    return await serve(core, turn, chosen, note)


async def choose_next(core: Core, turn: Turn, known: Progress | None = None) -> tuple[Pick | None, str]:
    """Due reviews anywhere, then new questions of the focus (topic or plan week), then new
    ones anywhere, then the weakest; with a note when the focus has run dry."""
    known = known or await progress(core, turn)
    avoid, index = last_question(turn), core.bank.by_id
    everything = list(core.bank.topics.values())
    focus = focus_topics(core, turn) or everything
    chosen = (pick(everything, known, avoid, new=False, weakest=False, index=index)
              or pick(focus, known, avoid, reviews=False, weakest=False, index=index))
    note = ""
    if chosen is None and focus is not everything:
        chosen = pick(everything, known, avoid, reviews=False, weakest=False, index=index)
        note = turn.t("plan_week_done") if chosen and not turn.chat["topic"] else ""
    return chosen or pick(everything, known, avoid, index=index), note


def focus_topics(core: Core, turn: Turn) -> list[Topic] | None:
    """The chat's chosen topic, else its plan's topics for the current week, else None (all)."""
    chat, bank = turn.chat, core.bank
    if chat["topic"] in bank.topics:
        return [bank.topics[chat["topic"]]]
    plan = bank.plans.get(chat["plan"] or "")
    if plan is None:
        return None
    started = local_date(from_utc_text(chat["plan_started"]), turn.tz)
    week = min((local_date(turn.now, turn.tz) - started).days // 7, len(plan.weeks) - 1)
    return [bank.topics[s] for s in plan.weeks[max(week, 0)] if s in bank.topics]


async def topic(core: Core, turn: Turn, query: str) -> list[Reply]:
    bank = core.bank
    if not query:
        return [Reply(turn.t("topic_needs_name"), topic_buttons(turn, bank.topics.values()))]
    found = bank.find_topics(query)
    if not found:
        return [Reply(turn.t("topic_unknown_no_match", query=short(query)),
                      (row(Button(turn.t("button_topics"), "topics")),))]
    if len(found) > 1:  # several names contain the query, or only close spellings matched
        key = "topic_ambiguous" if _all_contain(query, found) else "topic_unknown"
        return [Reply(turn.t(key, query=short(query)), topic_buttons(turn, found))]
    return await serve_topic(core, turn, found[0])


async def serve_topic(core: Core, turn: Turn, chosen_topic: Topic) -> list[Reply]:
    """Focus the chat on a topic and ask one of its questions now."""
    if turn.chat["topic"] != chosen_topic.slug:
        await core.store.update("chats", turn.chat["key"], topic=chosen_topic.slug)
        turn.chat["topic"] = chosen_topic.slug
    chosen = pick([chosen_topic], await progress(core, turn), last_question(turn), index=core.bank.by_id)
    if chosen is None:
        return [Reply(turn.t("bank_done"))]
    note = turn.t("topic_done", topic=chosen_topic.name(turn.lang),
                  count=len(chosen_topic.questions)) if chosen.reason == "weakest" else ""
    return await serve(core, turn, chosen, note)


def _all_contain(query: str, topics: list[Topic]) -> bool:
    wanted = query.strip().lower()
    return all(any(wanted in name for name in (t.slug, t.title.lower(), t.title_en.lower())) for t in topics)


def topic_buttons(turn: Turn, topics) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(t.name(turn.lang), f"topic:{t.slug}") for t in topics]
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


async def skip(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    ask, _ = open_question(turn)
    if ask is not None:
        await core.store.close_ask(ask["id"])
    replies = await next_question(core, turn)
    return [Reply(turn.t("skipped"))] + replies if ask is not None else replies


# --- answering ----------------------------------------------------------------------------

def open_question(turn: Turn) -> tuple[dict | None, dict | None]:
    """The chat's open question and the sender's answer to it. In a private chat a question
    is over once its user has rated it; in a group it stays open for the other members."""
    ask, previous = turn.ask, turn.answer
    if ask is None or ask["closed"] or (previous is not None and previous["rating"] is not None and not turn.is_group):
        return None, None
    return ask, previous


def not_an_answer(turn: Turn, kind: str) -> list[Reply]:
    """A forward, photo, voice, sticker…: only the learner's own text counts as an answer."""
    ask, _ = open_question(turn)
    if ask is None:
        return [] if turn.is_group else [Reply(turn.t("media_no_question"), next_button(turn))]
    return [Reply(turn.t("forward_not_answer" if kind == "forward" else "text_answers_only"))]


async def answer(core: Core, turn: Turn, text: str) -> list[Reply]:
    return await record_answer(core, turn, text.strip())


async def reveal(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    """Show the reference without an answer; the rating still counts (an empty answer is kept)."""
    return await record_answer(core, turn, "", revealing=True)


@dataclass
class Answered:
    """An answer just kept: its question's ask, its id, the question and the grader's verdict."""

    ask: dict
    answer_id: int
    question: Question | None
    verdict: Verdict | None
    notes: list[Reply]


async def keep_answer(core: Core, turn: Turn, text: str, revealing: bool = False,
                      on_refined=None) -> Answered | list[Reply]:
    """Grade and keep the sender's answer to the chat's open question; the replies to send
    instead when there is none to keep (no open question, answered already, empty)."""
    ask, previous = open_question(turn)
    if ask is None:
        return [Reply(turn.t("no_open_question"), next_button(turn))]
    if previous is not None:
        return already_answered(turn, ask, previous)
    if not text and not revealing:
        return [Reply(turn.t("empty_answer"))]
    notes = []
    if len(text) > MAX_ANSWER_CHARS:
        notes.append(Reply(turn.t("answer_truncated", length=len(text), limit=MAX_ANSWER_CHARS)))
        text = text[:MAX_ANSWER_CHARS]
    question = core.question(ask["question_id"])
    verdict = core.grader.local(question, text) if question is not None else None
    answer_id = await core.store.add_answer(ask, turn.user["key"], text, turn.now, verdict)
    if question is not None:  # an LLM's verdict, if one is configured, is kept (and shown) when it comes
        async def refined(better: Verdict) -> None:
            await core.store.set_verdict(answer_id, better)
            if on_refined is not None:
                await on_refined(ask, question, answer_id, better)
        core.grader.refine(question, text, turn.lang, turn.user["key"], local_date(turn.now, turn.tz).isoformat(),
                           refined)
    return Answered(ask, answer_id, question, verdict, notes)


async def record_answer(core: Core, turn: Turn, text: str, revealing: bool = False) -> list[Reply]:
    async def show(ask, question, answer_id, verdict):
        await _refined(core, turn, ask, question, answer_id, verdict)
    kept = await keep_answer(core, turn, text, revealing, show)
    if isinstance(kept, list):
        return kept
    return kept.notes + [await reference(core, turn, kept.ask, kept.answer_id, kept.verdict)]


async def _refined(core: Core, turn: Turn, ask: dict, question: Question, answer_id: int, verdict: Verdict) -> None:
    """Show the LLM's verdict: the reference (or a group's board) is edited in place; once the
    learner has rated, the feedback comes as a message of its own."""
    if core.later is None:
        return
    if turn.is_group:
        await core.later(turn.msg.chat, await reference(core, turn, ask, None, None))
        return
    rated = await core.store.one("SELECT rating FROM answers WHERE id = ?", answer_id)
    if rated is None or rated["rating"] is None:
        await core.later(turn.msg.chat, private_reference(turn, question, ask["id"], answer_id, verdict))
        return
    heading = turn.t("key_points_marked", hit=len(verdict.covered), total=len(question.key_points))
    await core.later(turn.msg.chat, Reply(turn.t("grader_later"), sections=(
        Section(heading, marked_points(question, verdict)), Section(turn.t("grader_feedback", feedback=verdict.feedback)))))


def already_answered(turn: Turn, ask: dict, previous: dict) -> list[Reply]:
    if previous["rating"] is not None:
        return [Reply(turn.t("rated_already"), next_button(turn))]
    return [Reply(turn.t("already_answered"), rating_buttons(turn, ask["id"]))]


def marked_points(question: Question, verdict: Verdict | None) -> tuple[Point, ...]:
    covered = set(verdict.covered) if verdict is not None and verdict.graded else None
    return tuple(Point(p.text, None if covered is None else i in covered) for i, p in enumerate(question.key_points))


async def reference(core: Core, turn: Turn, ask: dict, answer_id: int | None, verdict: Verdict | None) -> Reply:
    """The reference answer and key points with rating buttons. In a private chat the points are
    marked for this answer and a rating is suggested. In a group it is one shared board per
    question, edited as members answer and rate, so the group is never flooded; it shows how
    many key points each member hit, never their answers."""
    question = core.question(ask["question_id"])
    if question is None:  # removed from the bank while it was open
        return Reply(turn.t("removed_question"))
    if not turn.is_group:
        return private_reference(turn, question, ask["id"], answer_id, verdict)
    members = []
    for member in await core.store.answers_to(ask["id"]):
        status = turn.t(f"grade_{member['rating']}") if member["rating"] else turn.t("not_rated")
        if member["covered"] is not None and member["text"]:
            status += turn.t("board_hits", hit=len(json.loads(member["covered"])), total=len(question.key_points))
        members.append(turn.t("board_member", name=member["name"] or member["user_key"].split(":", 1)[-1],
                              status=status))
    hidden = Section(turn.t("reference_answer", answer=question.answer), marked_points(question, None),
                     hidden=True, title=turn.t("reveal_label"))
    board = Section(turn.t("board_footer", count=len(members), members=turn.t("list_separator").join(members)))
    return Reply(turn.t("board_title"), rating_buttons(turn, ask["id"]), key=f"board:{ask['id']}",
                 sections=(hidden, board))


def private_reference(turn: Turn, question: Question, ask_id: int, answer_id: int | None,
                      verdict: Verdict | None) -> Reply:
    graded = verdict is not None and verdict.graded
    heading = turn.t("key_points_marked", hit=len(verdict.covered), total=len(question.key_points)) if graded \
        else turn.t("key_points_heading")
    sections = [Section(heading, marked_points(question, verdict))]
    if graded and verdict.feedback:
        sections.append(Section(turn.t("grader_feedback", feedback=verdict.feedback)))
    sections.append(Section(turn.t("rate_prompt")))
    suggested = verdict.suggested if verdict is not None else None
    return Reply(turn.t("reference_answer", answer=question.answer), rating_buttons(turn, ask_id, suggested),
                 key=f"ref:{answer_id}" if answer_id else None, sections=tuple(sections))


def rating_buttons(turn: Turn, ask_id: int, suggested: int | None = None) -> tuple[tuple[Button, ...], ...]:
    """Buttons name the question asked, not the answer: whoever presses one rates their own
    answer to it, so a button cannot be used to rate somebody else's."""
    def label(grade: srs.Grade) -> str:
        name = turn.t(f"grade_{grade.value}")
        return turn.t("grade_suggested", grade=name) if grade.value == suggested else name
    return (tuple(Button(label(g), f"rate:{ask_id}:{g.value}") for g in srs.Grade),)


# --- rating -----------------------------------------------------------------------------------

@dataclass
class Rated:
    ask: dict
    answer: dict
    grade: srs.Grade
    text: str  # "Saved: Good. This question comes back on …"


async def apply_rating(core: Core, turn: Turn, arg: str) -> Rated | list[Reply]:
    """A rating button ("<ask id>:<grade>") applied to the presser's own answer, FSRS updated;
    the toast to show instead when the press is stale, forged, early or repeated."""
    ask_text, _, grade_text = arg.partition(":")
    ask_id = _ask_id(ask_text)
    if turn.ask is not None and turn.ask["id"] == ask_id:  # the usual case: the newest question
        ask, answer_row, card = turn.ask, turn.answer, turn.card
    else:
        ask, answer_row, card = (await core.store.attempt(turn.user["key"], ask_id) if ask_id is not None
                                 else (None, None, None))
    if ask is None or grade_text not in {"1", "2", "3", "4"}:
        return [Reply(turn.t("stale_button"), toast=True)]
    if ask["chat_key"] != turn.chat["key"] or (answer_row is None and not turn.is_group):
        return [Reply(turn.t("not_yours"), toast=True)]
    if answer_row is None:
        return [Reply(turn.t("answer_first"), toast=True)]
    if answer_row["rating"] is not None:
        return [Reply(turn.t("rated_already"), toast=True)]
    grade = srs.Grade(int(grade_text))
    review = srs.review(card, answer_row["user_key"], answer_row["question_id"], grade, turn.now)
    if not await core.store.rate(answer_row, grade.value, review.card_json, review.due, review.stability, turn.now):
        return [Reply(turn.t("rated_already"), toast=True)]
    days = (local_date(review.due, turn.tz) - local_date(turn.now, turn.tz)).days
    text = turn.t("rated", grade=turn.t(f"grade_{grade.value}"),
                  due=i18n.format_date(local_date(review.due, turn.tz), turn.lang), days=days)
    return Rated(ask, answer_row, grade, text)


async def rate(core: Core, turn: Turn, arg: str) -> list[Reply]:
    rated = await apply_rating(core, turn, arg)
    if isinstance(rated, list):
        return rated
    if turn.is_group:
        return [await reference(core, turn, rated.ask, None, None), Reply(rated.text, toast=True)]
    follow_up = next_follow_up(core, core.question(rated.answer["question_id"]))
    buttons = [Button(turn.t("button_next"), "next")]
    if follow_up is not None:
        buttons.insert(0, Button(turn.t("button_follow_up"), f"follow:{rated.ask['id']}"))
    return [Reply(rated.text, (tuple(buttons),))]


def _ask_id(text: str) -> int | None:
    """A button's ask id, or None for anything that is not one (a forged 40-digit number included)."""
    return int(text) if text.isdigit() and len(text) <= 18 else None


def next_follow_up(core: Core, question: Question | None) -> Question | None:
    """The follow-up to ask after `question`: its first one, or for a follow-up the one after it."""
    if question is None:
        return None
    if question.parent is None:
        return question.follow_ups[0] if question.follow_ups else None
    parent = core.question(question.parent)
    ids = [f.id for f in parent.follow_ups] if parent else []
    place = ids.index(question.id) if question.id in ids else len(ids)
    return parent.follow_ups[place + 1] if place + 1 < len(ids) else None


async def follow_up(core: Core, turn: Turn, arg: str) -> list[Reply]:
    """The 追问 button: ask the follow-up of the question that ask `arg` asked in this chat."""
    ask_id = _ask_id(arg)
    ask = (await core.store.attempt(turn.user["key"], ask_id))[0] if ask_id is not None else None
    if ask is None or ask["chat_key"] != turn.chat["key"]:
        return [Reply(turn.t("stale_button"))]
    chosen = next_follow_up(core, core.question(ask["question_id"]))
    if chosen is None:
        return [Reply(turn.t("no_follow_up"), next_button(turn))]
    return await serve(core, turn, Pick(chosen, "new"))
