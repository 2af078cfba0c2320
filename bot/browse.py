"""Finding questions again: /q ID serves one by its id, /search WORDS lists matching ones as buttons
(Chinese or English, fuzzy, over the question, its key points and their terms)."""
from __future__ import annotations

from rapidfuzz import fuzz, process

from .content import Bank
from .grading import fold
from .models import Button, Question, Reply
from .picker import Pick
from .quiz import open_question, serve
from .turn import Core, Turn, short

RESULTS = 8
SCORE_CUTOFF = 60


def search_bank(bank: Bank, words: str, limit: int = RESULTS) -> list[Question]:
    """The questions that best match `words`: every word found scores highest, then fuzzy matches."""
    wanted = fold(words).split()
    if not wanted:
        return []
    index = bank.search_texts
    exact = [qid for qid, text in index.items() if all(w in text for w in wanted)]
    if len(exact) < limit:
        close = process.extract(" ".join(wanted), index, scorer=fuzz.partial_token_set_ratio,
                                score_cutoff=SCORE_CUTOFF, limit=limit * 3)
        exact += [qid for _, _, qid in sorted(close, key=lambda c: -c[1]) if qid not in exact]
    # main questions before follow-ups, then bank order
    order = {qid: n for n, qid in enumerate(index)}
    chosen = sorted(exact[:limit * 2], key=lambda qid: (bank.by_id[qid].parent is not None, order[qid]))
    return [bank.by_id[qid] for qid in chosen[:limit]]


async def search(core: Core, turn: Turn, args: str) -> list[Reply]:
    if not args.strip():
        return [Reply(turn.t("search_usage"))]
    found = search_bank(core.bank, args)
    if not found:
        return [Reply(turn.t("search_none", query=short(args)))]
    buttons = tuple((Button(short(f"{q.id} {q.q}", 40), f"q:{q.id}"),) for q in found)
    return [Reply(turn.t("search_found", query=short(args), count=len(found)), buttons)]


async def question(core: Core, turn: Turn, args: str) -> list[Reply]:
    """/q ID: that question (or follow-up) again, now."""
    wanted = args.strip().lower()
    if not wanted:
        return [Reply(turn.t("q_usage"))]
    chosen = core.question(wanted)
    if chosen is None:
        close = search_bank(core.bank, wanted, limit=4)
        buttons = tuple((Button(short(f"{q.id} {q.q}", 40), f"q:{q.id}"),) for q in close)
        return [Reply(turn.t("q_unknown", id=short(wanted)), buttons)]
    ask, _ = open_question(turn)
    if ask is not None:
        await core.store.close_ask(ask["id"])  # the open question gives way to the one asked for
    return await serve(core, turn, Pick(chosen, "chosen"))
