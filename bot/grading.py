"""Which key points an answer covered, and the rating that suggests.

Local grading always works: no network, no model. A key point counts as covered only when the
answer contains one of its terms (or an alias: case-, width- and spacing-insensitive, a typo
allowed in longer Latin terms) or a phrase of the key point's own wording, so every ✓ can be
pointed at in the answer. An optional LLM grader (bot/llm_grader.py) refines it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz

from .models import KeyPoint, Question

# Chinese punctuation NFKC leaves alone, folded so "、" and "," separate alike.
_PUNCTUATION = str.maketrans({"。": ".", "、": ",", "「": '"', "」": '"', "『": '"', "』": '"', "《": '"', "》": '"',
                              "【": "[", "】": "]", "〈": "<", "〉": ">", "—": "-", "–": "-", "·": " ", "～": "~"})
_JOINERS = re.compile(r"[\s\-_/·.]+")  # "KV-cache", "kv cache", "KV_Cache" are one term
_PHRASE_SPLIT = re.compile(r"[\s,.;:!?()\[\]\"'<>+=~|/]+|[的和与及或是在了把被对将让用为即等]")
_LATIN = re.compile(r"^[a-z0-9]+$")
TYPO_MIN_CHARS = 6      # Latin terms this long may carry one typo ("attenton")
TYPO_SCORE = 88         # rapidfuzz ratio against a word-window of the answer
PHRASE_MIN_CHARS = 4    # a key point's own phrase counts once it is this long (after folding)
PHRASE_SCORE = 92       # partial_ratio for a phrase of the key point's wording


@dataclass(frozen=True)
class Verdict:
    covered: tuple[int, ...]                 # 0-based key point indexes
    suggested: int                           # 1 Again … 4 Easy
    grader: str = "local"                    # "local" or "llm"
    feedback: str = ""
    graded: bool = True                      # False when there was no answer to grade (revealed)
    evidence: dict[int, str] = field(default_factory=dict)  # key point → the term or phrase found

    def missed(self, total: int) -> list[int]:
        return [i for i in range(total) if i not in self.covered]


def fold(text: str) -> str:
    """Width-, case- and punctuation-folded text, spacing kept (word boundaries matter for Latin)."""
    return unicodedata.normalize("NFKC", text).translate(_PUNCTUATION).casefold()


def _compact(text: str) -> str:
    return _JOINERS.sub("", text)


@dataclass(frozen=True)
class _Answer:
    """An answer prepared once for all its key points."""

    folded: str
    compact: str
    words: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> "_Answer":
        folded = fold(text)
        return cls(folded, _compact(folded), tuple(re.findall(r"[a-z0-9]+", folded)))


@lru_cache(maxsize=8192)
def _term_pattern(term: str) -> tuple[str, re.Pattern | None]:
    """A term's compact form, and for a Latin term a pattern that respects word boundaries
    ("PPO" must not match inside "support")."""
    folded = fold(term)
    compact = _compact(folded)
    if _LATIN.match(compact):
        pieces = [re.escape(p) for p in re.findall(r"[a-z0-9]+", folded)]
        return compact, re.compile(r"(?<![a-z0-9])" + r"[\s\-_/.]*".join(pieces) + r"(?![a-z0-9])")
    return compact, None


def _find_term(term: str, answer: _Answer) -> bool:
    compact, pattern = _term_pattern(term)
    if not compact:
        return False
    if pattern is None:  # Chinese or mixed: spacing and hyphens do not matter
        return compact in answer.compact
    if pattern.search(answer.folded):
        return True
    if len(compact) >= TYPO_MIN_CHARS:  # one slip of the keyboard in a long Latin word
        size = max(1, len(re.findall(r"[a-z0-9]+", fold(term))))
        return any(fuzz.ratio(compact, "".join(answer.words[i:i + size])) >= TYPO_SCORE
                   for i in range(len(answer.words) - size + 1))
    return False


@lru_cache(maxsize=8192)
def _phrases(point_text: str) -> tuple[str, ...]:
    """The key point's own wording cut into content phrases worth finding in an answer."""
    parts = (_compact(p) for p in _PHRASE_SPLIT.split(fold(point_text)))
    return tuple(p for p in parts if len(p) >= PHRASE_MIN_CHARS)


def _find_phrase(point: KeyPoint, answer: _Answer) -> str | None:
    for phrase in _phrases(point.text):
        if phrase in answer.compact or (len(phrase) >= 6 and fuzz.partial_ratio(phrase, answer.compact) >= PHRASE_SCORE):
            return phrase
    return None


def evidence_for(point: KeyPoint, answer: _Answer) -> str | None:
    """The term or phrase of `point` the answer contains, or None."""
    for term in point.terms:
        if _find_term(term, answer):
            return term
    return _find_phrase(point, answer)


def suggest(covered: int, total: int) -> int:
    """A rating from the share of key points covered: all of them Easy, most Good, some Hard."""
    if total == 0:
        return 3
    share = covered / total
    return 4 if share >= 1 else 3 if share >= 0.55 else 2 if share >= 0.3 else 1


def grade_locally(question: Question, text: str) -> Verdict:
    if not text.strip():
        return Verdict((), 1, graded=False)
    answer = _Answer.of(text)
    evidence = {i: found for i, point in enumerate(question.key_points)
                if (found := evidence_for(point, answer)) is not None}
    covered = tuple(sorted(evidence))
    return Verdict(covered, suggest(len(covered), len(question.key_points)), evidence=evidence)
