"""The question bank: YAML topic files and study plans → validated, immutable Topics and Plans.

Every problem is reported as one line that names the file, the question id and the field, so a
person fixing a broken file never has to guess where to look.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from rapidfuzz import fuzz, process

from . import markup
from .grading import fold
from .models import KeyPoint, Plan, Question, Topic

SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
ANSWER_CHARS = (80, 900)  # guidance is 100–600; outside these bounds an answer is surely wrong
FOLLOW_UP_ANSWER_CHARS = (40, 600)
KEY_POINT_COUNT = (3, 6)
FOLLOW_UP_KEY_POINT_COUNT = (2, 4)
MAX_FOLLOW_UPS = 3
NEAR_DUPLICATE_SCORE = 90  # rapidfuzz ratio on normalised question text
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


def term_key(text: str) -> str:
    """How two terms are compared: width-folded (NFKC), case-folded, without spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).casefold())


def wording_size(text: str) -> float:
    """How much a text says, comparable across scripts: a Latin word counts 1, a CJK character ½
    ("梯度消失" and "vanishing gradient" are the same size)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return len(re.findall(r"[a-z0-9]+", folded)) + 0.5 * len(re.findall(r"[\u3400-\u9fff\uf900-\ufaff]", folded))


class KeyPointSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60)]
    terms: list[Term] = []  # what a grader looks for: technical terms with their aliases


def _key_points_as_mappings(value):
    """A key point may be written as a plain string (a skeleton from `content import`)."""
    return [{"text": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


class FollowUpSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=200)]
    answer: str = ""
    key_points: list[KeyPointSchema] = []
    _key_points = field_validator("key_points", mode="before")(_key_points_as_mappings)


class QuestionSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(pattern=rf"^{SLUG}-\d{{3,}}$")]
    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=300)]
    difficulty: Literal[1, 2, 3]
    answer: str = ""
    key_points: list[KeyPointSchema] = []
    follow_ups: list[FollowUpSchema] = Field(default=[], max_length=MAX_FOLLOW_UPS)
    tags: list[Text] = []
    source: list[Text] = []

    _key_points = field_validator("key_points", mode="before")(_key_points_as_mappings)

    @field_validator("source", mode="before")
    @classmethod
    def _one_source_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value


class TopicSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: Annotated[str, StringConstraints(pattern=rf"^{SLUG}$")]
    title: Text
    title_en: Text
    questions: list[dict] = Field(min_length=1)


class PlanSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(pattern=rf"^{SLUG}$")]
    title: Text
    title_en: Text
    weeks: list[list[Text]] = Field(min_length=1)


class ContentError(Exception):
    """Raised with every problem found, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Bank:
    topics: dict[str, Topic]
    plans: dict[str, Plan]

    @cached_property
    def questions(self) -> dict[str, Question]:
        """The bank's questions by id (follow-ups are not among them: see by_id)."""
        return {q.id: q for t in self.topics.values() for q in t.questions}

    @cached_property
    def by_id(self) -> dict[str, Question]:
        """Every question and follow-up by id: what an answer or a review can refer to."""
        return {x.id: x for q in self.questions.values() for x in (q, *q.follow_ups)}

    @cached_property
    def search_texts(self) -> dict[str, str]:
        """id → what /search matches against, case- and width-folded: the question, its key
        points and their terms, tags and topic names."""
        texts = {}
        for question in self.by_id.values():
            topic = self.topics[question.topic]
            words = [question.id, question.q, topic.title, topic.title_en, *question.tags,
                     *(p.text for p in question.key_points), *(t for p in question.key_points for t in p.terms)]
            texts[question.id] = fold(" ".join(words))
        return texts

    def find_topics(self, query: str) -> list[Topic]:
        """Exact slug or title first, then unambiguous prefixes, then close fuzzy matches."""
        wanted = query.strip().lower()
        if not wanted:
            return []
        names = {slug: (slug, t.title.lower(), t.title_en.lower()) for slug, t in self.topics.items()}
        for slug, keys in names.items():
            if wanted in keys:
                return [self.topics[slug]]
        prefixed = [s for s, keys in names.items() if any(k.startswith(wanted) for k in keys)]
        if prefixed:
            return [self.topics[s] for s in prefixed]
        contained = [s for s, keys in names.items() if any(wanted in k for k in keys)]
        if contained:
            return [self.topics[s] for s in contained]
        choices = {f"{s}\t{k}": s for s, keys in names.items() for k in keys}
        close = process.extract(wanted, list(choices), scorer=fuzz.WRatio, limit=6, score_cutoff=60)
        return [self.topics[s] for s in dict.fromkeys(choices[c] for c, _, _ in close)]


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _validated(schema: type[BaseModel], item, path: str, fallback_name: str, problems: list[str]):
    """Validate one list entry; on failure record one line per problem, naming the entry by its id."""
    name = item.get("id") if isinstance(item, dict) else None
    where = f"{path}: {name or fallback_name}"
    try:
        return where, schema.model_validate(item)
    except ValidationError as e:
        problems.extend(f"{where}: {_field_path(err['loc'])}: {err['msg']}" for err in e.errors())
        return where, None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10× faster start-up


def _read_yaml(path: Path, problems: list[str]):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problems.append(f"{where}: YAML syntax error: {e.problem}")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: cannot read: {e}")
    return None


def _key_point_problems(where: str, points: list[KeyPointSchema]) -> list[str]:
    """Every key point needs terms a grader can find in an answer: distinct, and each no longer
    than the point it stands for."""
    problems = []
    for index, point in enumerate(points):
        at = f"{where}.{index}"
        if not point.terms:
            problems.append(f"{at}: terms: missing (the words an answer covering '{point.text}' would use)")
        keys = [term_key(term) for term in point.terms]
        problems += [f"{at}: terms: '{term}' is listed twice" for i, term in enumerate(point.terms) if keys[i] in keys[:i]]
        problems += [f"{at}: terms: '{term}' is longer than the key point" for term in point.terms
                     if wording_size(term) > max(wording_size(point.text), 1)]
        problems += [f"{at}: text: {problem}" for problem in markup.problems(point.text)]
    return problems


def _studyable_problems(where: str, item: QuestionSchema | FollowUpSchema, answer_chars: tuple[int, int],
                        point_count: tuple[int, int]) -> list[str]:
    """What makes a question or follow-up unusable for studying, though its shape is right."""
    problems = [f"{where}: q: {problem}" for problem in markup.problems(item.q)]
    answer = item.answer.strip()
    if not answer:
        problems.append(f"{where}: answer: missing")
    elif not answer_chars[0] <= len(answer) <= answer_chars[1]:
        problems.append(f"{where}: answer: {len(answer)} characters, expected {answer_chars[0]}–{answer_chars[1]}")
    problems += [f"{where}: answer: {problem}" for problem in markup.problems(answer)]
    if not point_count[0] <= len(item.key_points) <= point_count[1]:
        problems.append(f"{where}: key_points: {len(item.key_points)} given, expected {point_count[0]}–{point_count[1]}")
    return problems + _key_point_problems(f"{where}: key_points", item.key_points)


def _quality_problems(where: str, q: QuestionSchema) -> list[str]:
    problems = _studyable_problems(where, q, ANSWER_CHARS, KEY_POINT_COUNT)
    if not q.source:
        problems.append(f"{where}: source: missing (cite the document the question comes from)")
    for number, follow_up in enumerate(q.follow_ups, start=1):
        problems += _studyable_problems(f"{where}: follow_ups.{number}", follow_up, FOLLOW_UP_ANSWER_CHARS,
                                        FOLLOW_UP_KEY_POINT_COUNT)
    return problems


def _key_points(points: list[KeyPointSchema]) -> tuple[KeyPoint, ...]:
    return tuple(KeyPoint(p.text, tuple(p.terms)) for p in points)


def follow_up_id(question_id: str, number: int) -> str:
    """A follow-up's stable id: its question's id and its 1-based place (follow-ups are only appended)."""
    return f"{question_id}-f{number}"


def _question(topic: str, q: QuestionSchema) -> Question:
    follow_ups = tuple(
        Question(follow_up_id(q.id, number), topic, f.q.strip(), q.difficulty, f.answer.strip(),
                 _key_points(f.key_points), tags=tuple(q.tags), source=tuple(q.source), parent=q.id)
        for number, f in enumerate(q.follow_ups, start=1))
    return Question(q.id, topic, q.q.strip(), q.difficulty, q.answer.strip(), _key_points(q.key_points),
                    tuple(q.tags), tuple(q.source), follow_ups=follow_ups)


def load_topic(path: Path, problems: list[str], strict: bool = True) -> Topic | None:
    raw = _read_yaml(path, problems)
    if raw is None:
        if not problems or not problems[-1].startswith(str(path)):
            problems.append(f"{path}: file is empty")
        return None
    try:
        head = TopicSchema.model_validate(raw)
    except ValidationError as e:
        problems.extend(f"{path}: {_field_path(err['loc']) or 'file'}: {err['msg']}" for err in e.errors())
        return None
    if head.topic != path.stem:
        problems.append(f"{path}: topic: '{head.topic}' must match the file name '{path.stem}'")
    questions = []
    for index, item in enumerate(head.questions):
        where, q = _validated(QuestionSchema, item, f"{path}", f"question #{index + 1}", problems)
        if q is None:
            continue
        if strict:
            problems.extend(_quality_problems(where, q))
        questions.append(_question(head.topic, q))
    return Topic(head.topic, head.title, head.title_en, tuple(questions))


def _normalised(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _bank_problems(topics: list[tuple[Path, Topic]]) -> list[str]:
    problems, first_seen = [], {}
    for path, topic in topics:
        for q in topic.questions:
            if q.id in first_seen:
                problems.append(f"{path}: {q.id}: id: duplicate, already used in {first_seen[q.id]}")
            else:
                first_seen[q.id] = path
    everything = [(path, q) for path, t in topics for q in t.questions]
    texts = [_normalised(q.q) for _, q in everything]
    for i, text in enumerate(texts):
        for _, score, j in process.extract(text, texts[i + 1:], scorer=fuzz.ratio,
                                           score_cutoff=NEAR_DUPLICATE_SCORE, limit=None):
            (path, q), (other_path, other) = everything[i], everything[i + 1 + j]
            problems.append(f"{other_path}: {other.id}: q: near-duplicate of {q.id} ({path}) "
                            f"[{score:.0f}%]: '{other.q}' ~ '{q.q}'")
    return problems


def load_plans(path: Path, topics: dict[str, Topic], problems: list[str]) -> dict[str, Plan]:
    if not path.exists():
        return {}
    raw = _read_yaml(path, problems)
    if not isinstance(raw, dict) or not isinstance(raw.get("plans"), list):
        problems.append(f"{path}: plans: expected a list of plans")
        return {}
    plans = {}
    for index, item in enumerate(raw["plans"]):
        where, p = _validated(PlanSchema, item, f"{path}", f"plan #{index + 1}", problems)
        if p is None:
            continue
        for week, slugs in enumerate(p.weeks, start=1):
            problems.extend(f"{where}: weeks.{week}: unknown topic '{s}'" for s in slugs if s not in topics)
        plans[p.id] = Plan(p.id, p.title, p.title_en, tuple(tuple(w) for w in p.weeks))
    return plans


def topic_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        files += sorted(p for p in path.glob("*.yaml") if p.name != "plans.yaml") if path.is_dir() else [path]
    return files


def check(paths: list[Path], strict: bool = True) -> tuple[Bank, list[str]]:
    """Load everything under `paths` and return the bank with every problem found."""
    problems: list[str] = []
    loaded = [(p, t) for p in topic_files(paths) if (t := load_topic(p, problems, strict)) is not None]
    problems += _bank_problems(loaded)
    topics = {t.slug: t for _, t in loaded}
    plans: dict[str, Plan] = {}
    for path in paths:
        if path.is_dir():
            plans.update(load_plans(path / "plans.yaml", topics, problems))
    return Bank(topics, plans), problems


def load_bank(content_dir: Path) -> Bank:
    bank, problems = check([content_dir])
    if problems:
        raise ContentError(problems)
    if not bank.topics:
        raise ContentError([f"{content_dir}: no topic files (*.yaml) found"])
    return bank
