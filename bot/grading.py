"""Which key points an answer covered, and the rating that suggests.

Local grading always works: no network, no model. A key point counts as covered only when the
answer contains one of its terms (or an alias: case-, width- and spacing-insensitive, an English
inflection or one slip of the keyboard allowed in longer Latin terms) or a phrase of the key
point's own wording, so every ✓ can be pointed at in the answer (`Verdict.evidence` holds what
was found). What the question itself names proves nothing, and a term the answer denies ("不是
KV cache", "without RoPE") is not credited. An optional LLM grader (bot/grader.py) refines it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from .models import KeyPoint, Question

# Chinese punctuation NFKC leaves alone, and dashes and roots written the typographic way.
_PUNCTUATION = str.maketrans({"。": ".", "、": ",", "「": '"', "」": '"', "『": '"', "』": '"', "《": '"', "》": '"',
                              "【": "[", "】": "]", "〈": "<", "〉": ">", "—": "-", "–": "-", "‐": "-", "‑": "-",
                              "−": "-", "·": " ", "～": "~", "√": "sqrt"})
_JOINERS = re.compile(r"[\s\-_/·.]+")  # "KV-cache", "kv cache", "KV_Cache" are one term
_PHRASE_SPLIT = re.compile(r"[\s,.;:!?()\[\]\"'<>+=~|/，：；！？（）]+|[的和与及或]")
_LATIN = re.compile(r"^[a-z0-9]+$")
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Words that deny what follows them: "不是 KV cache", "没有用 RoPE", "without a critic".
_NEGATED_CJK = re.compile(r"(?:不是|不用|没有|没用|无需|不需要|并非|并不|不|没|非|未|无)$")
_NEGATED_LATIN = re.compile(r"(?:\bnot|\bno|\bwithout|\bnever|n't)(?:\s+(?:a|an|the|any|use|using|need|needed))?\s*$")
TYPO_MIN_CHARS = 6      # Latin terms this long may carry one slip ("attenton", "softmex", "dropuot")
PHRASE_MIN_CHARS = 4    # a CJK phrase of the key point's wording counts once it is this long
PHRASE_SCORE = 92       # partial_ratio for a long CJK phrase of the key point's wording
INFLECTIONS = r"(?:s|es|ed|d|ing)?"


@dataclass(frozen=True)
class Verdict:
    covered: tuple[int, ...]                 # 0-based key point indexes
    suggested: int                           # 1 Again … 4 Easy
    grader: str = "local"                    # "local" or "llm"
    feedback: str = ""
    graded: bool = True                      # False when there was no answer to grade (revealed)
    evidence: dict[int, str] = field(default_factory=dict)  # key point → what of the answer showed it

    def missed(self, total: int) -> list[int]:
        return [i for i in range(total) if i not in self.covered]


def fold(text: str) -> str:
    """Width-, case- and punctuation-folded text, spacing kept (word boundaries matter for Latin)."""
    return unicodedata.normalize("NFKC", text).translate(_PUNCTUATION).casefold()


def _compact(text: str) -> str:
    return _JOINERS.sub("", text)


@dataclass(frozen=True)
class _Text:
    """A text prepared once for every key point: folded, compacted, and its runs of Latin words
    (words next to each other, with only spaces or hyphens between)."""

    folded: str
    compact: str
    runs: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, text: str) -> "_Text":
        folded = fold(text)
        runs, current, end = [], [], None
        for match in _WORD.finditer(folded):
            if end is not None and not re.fullmatch(r"[\s\-_]*", folded[end:match.start()]):
                runs.append(tuple(current))
                current = []
            current.append(match.group())
            end = match.end()
        if current:
            runs.append(tuple(current))
        return cls(folded, _compact(folded), tuple(runs))


@lru_cache(maxsize=16384)
def _term_pattern(term: str) -> tuple[str, re.Pattern | None, int]:
    """A term's compact form; for a Latin term a pattern that respects word boundaries ("PPO" must
    not match inside "support") and takes English endings on a long last word; its word count."""
    folded = fold(term)
    compact = _compact(folded)
    pieces = _WORD.findall(folded)
    if _LATIN.match(compact) and pieces:
        ending = INFLECTIONS if len(pieces[-1]) >= 4 and pieces[-1].isalpha() else ""
        body = r"[\s\-_/.]*".join(re.escape(p) for p in pieces)
        return compact, re.compile(rf"(?<![a-z0-9]){body}{ending}(?![a-z0-9])"), len(pieces)
    return compact, None, len(pieces)


def _denied_cjk(compact: str, at: int) -> bool:
    return bool(_NEGATED_CJK.search(compact[max(0, at - 3):at]))


def _find_term(term: str, answer: _Text) -> str | None:
    """What of the answer shows `term` (not denied), or None."""
    compact, pattern, size = _term_pattern(term)
    if not compact:
        return None
    if pattern is None:  # Chinese or mixed: spacing and hyphens do not matter
        at = answer.compact.find(compact)
        while at >= 0:
            if not _denied_cjk(answer.compact, at):
                return compact
            at = answer.compact.find(compact, at + 1)
        return None
    for match in pattern.finditer(answer.folded):
        before = answer.folded[max(0, match.start() - 24):match.start()]
        if not _NEGATED_LATIN.search(before) and not _denied_cjk(_compact(before), len(_compact(before))):
            return match.group()
    if len(compact) >= TYPO_MIN_CHARS:  # one slip of the keyboard in a long Latin term
        for run in answer.runs:
            for i in range(len(run) - size + 1):
                window = run[i:i + size]
                if OSA.distance(compact, "".join(window), score_cutoff=1) <= 1:
                    return " ".join(window)
    return None


@lru_cache(maxsize=16384)
def _phrases(point_text: str) -> tuple[tuple[str, re.Pattern | None], ...]:
    """The key point's own wording cut into phrases worth finding in an answer: CJK phrases of a
    few characters, Latin phrases of two words or more (one word alone is the question's subject
    as often as it is knowledge)."""
    out = []
    for part in _PHRASE_SPLIT.split(fold(point_text)):
        compact = _compact(part)
        if len(compact) < PHRASE_MIN_CHARS:
            continue
        words = _WORD.findall(part)
        if _CJK.search(compact):
            out.append((compact, None))
        elif len(words) >= 2:
            out.append((compact, re.compile(r"(?<![a-z0-9])" + r"[\s\-_/.]*".join(map(re.escape, words))
                                            + r"(?![a-z0-9])")))
    return tuple(out)


def _find_phrase(point: KeyPoint, answer: _Text, asked: str) -> str | None:
    for phrase, pattern in _phrases(point.text):
        if phrase in asked:
            continue
        if pattern is not None:
            if (match := pattern.search(answer.folded)) is not None:
                return match.group()
        elif phrase in answer.compact:
            return phrase
        elif len(phrase) >= 6 and fuzz.partial_ratio(phrase, answer.compact) >= PHRASE_SCORE:
            found = fuzz.partial_ratio_alignment(phrase, answer.compact)  # the near-copy in the answer
            return answer.compact[found.dest_start:found.dest_end]
    return None


def evidence_for(point: KeyPoint, answer: _Text, asked: str = "") -> str | None:
    """What of the answer shows `point` (a term of it, or a phrase of its wording), or None.
    `asked`: the question, compacted: what it names is no evidence."""
    for term in point.terms:
        if _term_pattern(term)[0] in asked:
            continue
        if (found := _find_term(term, answer)) is not None:
            return found
    return _find_phrase(point, answer, asked)


def suggest(covered: int, total: int) -> int:
    """A rating from the share of key points covered: all of them Easy, most Good, some Hard."""
    if total == 0:
        return 3
    share = covered / total
    return 4 if share >= 1 else 3 if share >= 0.55 else 2 if share >= 0.3 else 1


def grade_locally(question: Question, text: str) -> Verdict:
    if not text.strip():
        return Verdict((), 1, graded=False)
    answer, asked = _Text.of(text), _compact(fold(question.q))
    evidence = {i: found for i, point in enumerate(question.key_points)
                if (found := evidence_for(point, answer, asked)) is not None}
    covered = tuple(sorted(evidence))
    return Verdict(covered, suggest(len(covered), len(question.key_points)), evidence=evidence)
