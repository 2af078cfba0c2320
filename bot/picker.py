"""Which question comes next: due reviews first, then new questions from the chosen pool, then the
weakest one. Pure: it sees what the user has done as plain values, so it is easy to test."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, Mapping

from .models import Question, Topic


@dataclass(frozen=True)
class Progress:
    due: tuple[str, ...]          # question ids due for review, most overdue first
    answered: frozenset[str]      # every question id the user has answered
    stability: dict[str, float]   # FSRS stability (days) of each reviewed question


@dataclass(frozen=True)
class Pick:
    question: Question
    reason: Literal["review", "new", "weakest", "chosen"]  # chosen: asked for by id (/q)


def pick(topics: list[Topic], progress: Progress, avoid: str | None, *, reviews: bool = True,
         new: bool = True, weakest: bool = True, index: Mapping[str, Question] | None = None) -> Pick | None:
    """Choose from `topics` (the pool), never `avoid` (the question just asked). `index` (id →
    question, the whole bank) saves rebuilding one on every call."""
    index = index if index is not None else {q.id: q for t in topics for q in t.questions}
    slugs = {t.slug for t in topics}

    def in_pool(qid: str) -> Question | None:
        question = index.get(qid)
        return question if question is not None and question.topic in slugs and qid != avoid else None

    if reviews:
        for qid in progress.due:
            if question := in_pool(qid):
                return Pick(question, "review")
    fresh = _new_question(topics, progress.answered, avoid, index) if new else None
    if fresh:
        return Pick(fresh, "new")
    if weakest:
        answered = [q for qid in progress.answered if (q := in_pool(qid))]
        if answered:
            return Pick(min(answered, key=lambda q: (progress.stability.get(q.id, 0.0), q.id)), "weakest")
    return None


def _new_question(topics: list[Topic], answered: frozenset[str], avoid: str | None,
                  index: Mapping[str, Question]) -> Question | None:
    """The easiest unseen question of the pool topic the user has touched least, so a mixed pool
    rotates through its topics instead of draining the first one."""
    done = Counter(index[qid].topic for qid in answered if qid in index)
    candidates = []
    for order, topic in enumerate(topics):
        fresh = next((q for q in topic.easiest_first if q.id not in answered and q.id != avoid), None)
        if fresh is not None:
            candidates.append((done[topic.slug], order, fresh))
    return min(candidates, key=lambda c: c[:2])[2] if candidates else None
