"""The local grader (bot/grading.py) against a labelled set of learners' answers.

tests/data/graded_answers.yaml holds answers labelled by hand as a strict interviewer would (which
key points a human credits, and a 1–4 rating) and a frozen copy of the questions they answer, so
the figures here do not move when the bank is edited. Run with `-s` to see the figures:

    .venv/bin/python -m pytest tests/test_grading.py -s

The labels are indexes into each question's key points, so the asserted figures come from the
frozen copy (100 answers, 31 questions in 14 topics, 485 key-point judgements); the bars sit a
little under what was measured. The live bank (content/) is graded on the same answers too, when
its key points still read the same, and its figures are printed, not asserted.

Defects found while measuring are fixed, and kept fixed by the tests at the end.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from rapidfuzz import fuzz

from bot.content import check
from bot.grading import Verdict, fold, grade_locally, suggest
from bot.models import KeyPoint, Question

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "graded_answers.yaml"
LIVE_CONTENT = ROOT / "content"

# The promises and the bars. Measured on the frozen set when it was written:
# first precision 0.810, recall 0.835 (single Latin words of a point's wording, terms the question
# names and denied terms counted as evidence); after fixing those: precision 0.935, recall 0.752,
# rating agreement exact 0.54 and within ±1 0.91. The grader trades recall for precision on
# purpose: a ✓ the answer did not earn misleads a learner more than a ✗ they can check.
PRECISION_BAR = 0.90
PRECISION_PROMISE = 0.85
RECALL_BAR = 0.72
EXACT_AGREEMENT_BAR = 0.50
WITHIN_ONE_AGREEMENT_BAR = 0.88
WRONG_SUGGESTED_LOW_BAR = 0.90   # share of answers a human rated 1 that get 不会 or 模糊 suggested (measured 30/32)



@cache
def labelled() -> tuple[dict[str, Question], list[dict]]:
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    questions = {qid: Question(qid, qid.rsplit("-", 1)[0], q["q"], 2, "",
                               tuple(KeyPoint(p["text"], tuple(p["terms"])) for p in q["key_points"]))
                 for qid, q in data["questions"].items()}
    return questions, data["answers"]


def _compact(text: str) -> str:
    return re.sub(r"[\s\-_/·.]+", "", fold(text))


def _evidence_in(evidence: str, answer: str) -> bool:
    """The evidence occurs in the answer once both are width-, case- and spacing-folded."""
    return _compact(evidence) in _compact(answer)


def _typo_of(evidence: str, answer: str) -> bool:
    """The evidence is a run of the answer's Latin words (as a typo match reports it)."""
    return " ".join(re.findall(r"[a-z0-9]+", fold(evidence))) in " ".join(re.findall(r"[a-z0-9]+", fold(answer)))


def _language(text: str) -> str:
    latin = len(re.findall(r"[A-Za-z]+", text))
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return "zh" if latin <= 3 else "en" if cjk == 0 else "mixed"


def _figures(rows) -> dict:
    """rows: (labelled item, verdict). Precision and recall of "covered" per key point, rating agreement."""
    tp = fp = fn = exact = near = 0
    for item, verdict in rows:
        truth, claimed = set(item["covered"]), set(verdict.covered)
        tp, fp, fn = tp + len(truth & claimed), fp + len(claimed - truth), fn + len(truth - claimed)
        exact += verdict.suggested == item["rating"]
        near += abs(verdict.suggested - item["rating"]) <= 1
    n = max(1, len(rows))
    return dict(tp=tp, fp=fp, fn=fn, n=len(rows), precision=tp / max(1, tp + fp), recall=tp / max(1, tp + fn),
                exact=exact / n, near=near / n)


@cache
def measured():
    """Grade every labelled answer once against the frozen questions."""
    questions, answers = labelled()
    verdicts = [(item, questions[item["question"]], grade_locally(questions[item["question"]], item["answer"]))
                for item in answers]
    figures = _figures([(item, v) for item, _, v in verdicts])
    figures["verdicts"] = verdicts
    figures["false_claims"] = [(number, item["question"], i, v.evidence.get(i))
                               for number, (item, _, v) in enumerate(verdicts)
                               for i in sorted(set(v.covered) - set(item["covered"]))]
    return figures


def test_the_labelled_set_is_what_it_says():
    questions, answers = labelled()
    assert len(answers) >= 60 and len({a["question"] for a in answers}) >= 20
    assert len({q.topic for q in questions.values()}) >= 10
    assert {a["kind"] for a in answers} == {"strong", "partial", "short", "wrong", "negated", "off-topic"}
    assert {_language(a["answer"]) for a in answers} == {"zh", "en", "mixed"}
    for item in answers:
        question = questions[item["question"]]
        assert item["answer"].strip() and item["rating"] in (1, 2, 3, 4) and item.get("note"), item
        assert all(0 <= i < len(question.key_points) for i in item["covered"]), item
        assert all(point.terms for point in question.key_points), item["question"]


def test_precision_recall_and_rating_agreement(capsys):
    m = measured()
    rows = [(item, v) for item, _, v in m["verdicts"]]
    with capsys.disabled():
        print(f"\nlocal grader on {m['n']} labelled answers: "
              f"precision {m['precision']:.3f} ({m['tp']} right of {m['tp'] + m['fp']} claims), "
              f"recall {m['recall']:.3f} ({m['tp']} of {m['tp'] + m['fn']} credited points), "
              f"rating agreement exact {m['exact']:.2f}, within ±1 {m['near']:.2f}")
        for label, key in (("kind", lambda i: i["kind"]), ("language", lambda i: _language(i["answer"]))):
            for value in sorted({key(item) for item, _ in rows}):
                f = _figures([(item, v) for item, v in rows if key(item) == value])
                print(f"  {label} {value:9} {f['n']:3} answers: {f['tp'] + f['fp']:3} claims, {f['fp']:2} false; "
                      f"precision {f['precision']:.2f} recall {f['recall']:.2f} exact {f['exact']:.2f}")
    for number, qid, point, evidence in m["false_claims"]:  # shown with -s, or when a bar fails
        print(f"  false claim: answer #{number} {qid} point {point} on evidence {evidence!r}")
    assert m["precision"] >= PRECISION_BAR
    assert m["recall"] >= RECALL_BAR
    assert m["exact"] >= EXACT_AGREEMENT_BAR
    assert m["near"] >= WITHIN_ONE_AGREEMENT_BAR


def test_precision_reaches_the_promise():
    assert measured()["precision"] >= PRECISION_PROMISE


def test_complete_answers_are_never_over_claimed():
    """Every claim on an answer a human rated complete and precise is one the human made too."""
    complete = [(item, v) for item, _, v in measured()["verdicts"] if item["rating"] == 4]
    assert all(set(v.covered) <= set(item["covered"]) for item, v in complete)


def test_off_topic_answers_are_suggested_again():
    rows = [(item, v) for item, _, v in measured()["verdicts"] if item["kind"] == "off-topic"]
    assert rows and all(v.suggested == 1 for _, v in rows)
    assert sum(len(v.covered) for _, v in rows) <= 1  # measured: 1, "token" in a RAG-chunking answer


def test_wrong_answers_are_not_suggested_good_or_easy():
    """Answers a human rated 1 (confidently wrong, negated terms, off-topic, "不会")."""
    rows = [(item, v) for item, _, v in measured()["verdicts"] if item["rating"] == 1]
    assert not [item["answer"] for item, v in rows if v.suggested == 4]
    assert sum(v.suggested <= 2 for _, v in rows) / len(rows) >= WRONG_SUGGESTED_LOW_BAR


def test_every_claim_shows_evidence_found_in_the_answer():
    """The ✓ can always be pointed at: the evidence is in the folded answer, or is a long Latin
    term one slip away from the answer's words (the grader's typo allowance)."""
    typos = []
    for item, question, verdict in measured()["verdicts"]:
        assert set(verdict.evidence) == set(verdict.covered), item
        for i in verdict.covered:
            evidence = verdict.evidence[i]
            assert evidence, (item["question"], i)
            if not _evidence_in(evidence, item["answer"]):
                assert _typo_of(evidence, item["answer"]), (item["question"], i, evidence, item["answer"])
                typos.append((item["question"], i, evidence))
    print(f"\nclaims by typo allowance: {typos}")


@pytest.mark.parametrize("answer", ["", "   ", "\n\t", "\u3000\u3000"])
def test_revealing_or_an_empty_answer_marks_nothing_and_suggests_again(answer):
    question = next(iter(labelled()[0].values()))
    verdict = grade_locally(question, answer)
    assert verdict == Verdict((), 1, graded=False)
    assert verdict.missed(len(question.key_points)) == list(range(len(question.key_points)))


def test_suggestion_follows_the_share_covered():
    assert [suggest(n, 5) for n in range(6)] == [1, 1, 2, 3, 3, 4]
    assert suggest(0, 0) == 3


# Targeted behaviour on one-point questions.

def _question(*terms: str, text: str = "某个要点") -> Question:
    return Question("t-001", "t", "问题？", 1, "", (KeyPoint(text, terms),))


def _covered(answer: str, *terms: str, text: str = "某个要点") -> bool:
    return grade_locally(_question(*terms, text=text), answer).covered == (0,)


def test_width_case_and_spacing_fold():
    assert _covered("推理时用ＫＶ　ＣＡＣＨＥ省掉重复计算", "KV Cache")
    assert _covered("kv-cache 存历史的 k 和 v", "KV Cache")
    assert _covered("Kv_Cache", "KV Cache")
    assert _covered("用 ＦｌａｓｈＡｔｔｅｎｔｉｏｎ", "FlashAttention")
    assert _covered("全角标点，ＰＰＯ－Ｃｌｉｐ。", "PPO-Clip")
    verdict = grade_locally(_question("KV Cache"), "推理时用ＫＶ　ＣＡＣＨＥ省掉重复计算")
    assert _evidence_in(verdict.evidence[0], "推理时用ＫＶ　ＣＡＣＨＥ省掉重复计算")


def test_abbreviation_aliases_listed_as_terms():
    # An abbreviation counts when the bank lists it as an alias of the term.
    assert _covered("用 RAG 给模型补上新知识", "检索增强生成", "RAG", "retrieval-augmented")
    assert _covered("检索增强生成可以缓解幻觉", "检索增强生成", "RAG")
    assert _covered("Retrieval-Augmented Generation retrieves first", "检索增强生成", "RAG", "retrieval-augmented")
    assert _covered("GQA 把 query 头分组共享 KV", "分组查询注意力", "GQA", "grouped-query")
    # an alias the bank does not list is not guessed
    assert not _covered("use MHA everywhere", "分组查询注意力", "GQA", text="分组查询")


def test_latin_terms_do_not_match_inside_other_words():
    assert not _covered("we support many formats", "PPO")
    assert not _covered("the Moebius strip", "MoE")
    assert not _covered("a trip to Europe", "RoPE", text="旋转位置编码")
    assert _covered("RLHF 用 PPO 训练", "PPO")
    assert _covered("PPO/DPO 都行", "PPO")
    assert _covered("PPO训练", "PPO")  # a Chinese character next to it is a boundary


def test_one_letter_typo_in_a_long_latin_term():
    assert _covered("softmax 做 normalizaton", "normalization")            # one letter dropped
    assert _covered("attentoin scores", "attention")                       # two letters swapped
    assert _covered("speculative decodng with a draft model", "speculative decoding")
    assert not _covered("PP0 训练", "PPO")                                 # short terms must be exact
    assert not _covered("the retention of data", "attention", text="注意力")  # another word


def test_a_key_points_own_wording_counts_without_terms():
    assert _covered("我认为要先检索相关片段再生成", text="先检索相关片段，再拼入提示词生成")
    assert not _covered("完全不相关的回答", text="先检索相关片段，再拼入提示词生成")


# Defects found while measuring, fixed in bot/grading.py; these keep them fixed.

def test_a_lone_latin_word_of_the_wording_is_not_evidence():
    assert not _covered("Dropout 是在测试时随机丢掉神经元", "关闭", "eval", text="推理时关闭 Dropout")
    assert not _covered("BN 按 batch 归一化", "小 batch", "自回归", text="小 batch、自回归推理不适合 BN")


def test_latin_words_of_the_wording_respect_word_boundaries():
    assert not _covered("a trip to Europe", "rotary", text="主流 LLM 多采用 RoPE")


def test_the_typo_allowance_does_not_join_words_across_other_text():
    assert not _covered("KV 不是 cache", "KV cache")
    assert not _covered("去掉了 value，model 只剩一个 policy", "value model")


def test_one_substituted_or_swapped_letter_in_a_six_to_eight_letter_term():
    assert _covered("softmex 之后取最大", "softmax")
    assert _covered("用 dropuot 防过拟合", "dropout")


def test_english_inflections_of_a_latin_term():
    assert _covered("BPE repeatedly merges the most frequent pair", "merge")
    assert _covered("QLoRA quantizes the quantization constants", "quantize")
    assert not _covered("a normal distribution", "norm")               # an ending, not another word


def test_unicode_hyphens_fold_like_ascii():
    assert _covered("top\u2011p 按累计概率截断", "top-p")   # non-breaking hyphen
    assert _covered("top\u2010k 固定 k 个", "top-k")        # hyphen
    assert _covered("pass\u2212k", "pass-k")                # minus sign


@cache
def _live_questions() -> dict[str, Question]:
    """The labelled questions as the live bank has them, when it has terms and the same key points."""
    if not LIVE_CONTENT.is_dir():
        return {}
    bank, _ = check([LIVE_CONTENT], strict=False)
    frozen = labelled()[0]
    return {qid: live for qid, q in frozen.items() if (live := bank.questions.get(qid)) is not None
            and [p.text for p in live.key_points] == [p.text for p in q.key_points]
            and all(p.terms for p in live.key_points)}


def test_the_live_bank_on_the_labelled_answers(capsys):
    """A report on content/ as it is now (its terms may since have changed): the figures are
    printed, the evidence promise is asserted; the bars above hold for the frozen copy."""
    live = _live_questions()
    answers = [a for a in labelled()[1] if a["question"] in live]
    tp = fp = fn = 0
    for item in answers:
        verdict = grade_locally(live[item["question"]], item["answer"])
        truth, claimed = set(item["covered"]), set(verdict.covered)
        tp, fp, fn = tp + len(truth & claimed), fp + len(claimed - truth), fn + len(truth - claimed)
        for i in verdict.covered:
            evidence = verdict.evidence[i]
            assert _evidence_in(evidence, item["answer"]) or _typo_of(evidence, item["answer"]), (item, i, evidence)
    with capsys.disabled():
        if answers:
            print(f"\nlive bank {LIVE_CONTENT}: {len(answers)} labelled answers on {len(live)} questions: "
                  f"precision {tp / max(1, tp + fp):.3f}, recall {tp / max(1, tp + fn):.3f}")
        else:
            print(f"\nlive bank {LIVE_CONTENT}: no labelled question has terms there yet; frozen copy only")
