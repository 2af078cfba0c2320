"""Grading as a service: the local verdict at once, an LLM's verdict later when one is configured.

The LLM is any OpenAI-compatible chat-completions endpoint (DeepSeek, Qwen/DashScope compatible
mode, Moonshot, Zhipu, Ollama, vLLM), through the `openai` SDK. It is asked for JSON only; any
failure (time-out, HTTP error, refusal, malformed JSON, indexes out of range) falls back to the
local verdict, which the learner has already seen, with one log line for the operator. It runs in
the background so no platform waits for it, and a per-learner daily cap bounds the cost.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from pydantic import BaseModel, Field, ValidationError

from .grading import Verdict, grade_locally
from .health import metrics
from .models import Question

log = logging.getLogger(__name__)
MAX_OUTPUT_TOKENS = 300
TEMPERATURE = 0.1
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")

SYSTEM_PROMPT = (
    "You grade a candidate's answer to an LLM-engineering interview question against the question's key points. "
    "Reply with one JSON object and nothing else: "
    '{"covered": [0-based indexes of the key points the answer states correctly], '
    '"suggested": 1-4, "feedback": "one or two sentences: what was missing or wrong"}. '
    "suggested: 1 = did not know it, 2 = partly right or vague, 3 = correct, 4 = complete and precise. "
    "A key point counts as covered only if the answer itself says it; do not credit what the answer merely implies. "
    "Write the feedback in {language}.")


@dataclass(frozen=True)
class LlmSettings:
    base_url: str
    model: str
    api_key: str
    timeout_seconds: float = 20
    daily_limit: int = 50


class _LlmReply(BaseModel):
    covered: list[int]
    suggested: int = Field(ge=1, le=4)
    feedback: str = Field(default="", max_length=600)


class LlmGrader:
    """One chat-completions call per answer; None whenever its verdict cannot be used."""

    def __init__(self, settings: LlmSettings):
        from openai import AsyncOpenAI  # imported only when an LLM grader is configured

        for name in ("openai", "httpx", "httpcore"):  # they log request details at DEBUG/INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        self.settings = settings
        self.client = AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key or "none",
                                  timeout=settings.timeout_seconds, max_retries=0)

    @staticmethod
    def request(question: Question, answer: str, lang: str) -> list[dict]:
        """The messages sent: the question, its reference, its key points and the answer; nothing about the learner."""
        content = json.dumps({"question": question.q, "reference": question.answer,
                              "key_points": [f"{i}. {p.text}" for i, p in enumerate(question.key_points)],
                              "answer": answer}, ensure_ascii=False)
        language = "English" if lang == "en" else "Simplified Chinese"
        return [{"role": "system", "content": SYSTEM_PROMPT.replace("{language}", language)},
                {"role": "user", "content": content}]

    async def grade(self, question: Question, answer: str, lang: str) -> Verdict | None:
        metrics.count("grader_calls")
        try:
            response = await self.client.chat.completions.create(
                model=self.settings.model, messages=self.request(question, answer, lang),
                temperature=TEMPERATURE, max_tokens=MAX_OUTPUT_TOKENS)
            content = (response.choices[0].message.content or "") if response.choices else ""
            return self.parse(content, len(question.key_points))
        except Exception as e:  # openai.APIError and friends, time-outs, unusable replies
            metrics.count("grader_fallbacks")
            log.warning("grader: the LLM's verdict on %s is unusable (%s: %s); the local verdict stands",
                        question.id, type(e).__name__, _brief(e))
            return None

    @staticmethod
    def parse(content: str, total: int) -> Verdict:
        """The model's JSON → a Verdict; ValueError for anything else."""
        text = _FENCE.sub("", content.strip())
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise ValueError(f"no JSON object in the reply ({len(content)} characters)")
        try:
            reply = _LlmReply.model_validate(json.loads(text[start:end + 1]))
        except (json.JSONDecodeError, ValidationError) as e:
            raise ValueError(f"malformed verdict: {_brief(e)}") from None
        if any(not 0 <= i < total for i in reply.covered):
            raise ValueError(f"key point index out of range 0..{total - 1}: {reply.covered}")
        covered = tuple(sorted(set(reply.covered)))
        return Verdict(covered, reply.suggested, grader="llm", feedback=" ".join(reply.feedback.split())[:300])


def _brief(error: BaseException) -> str:
    return " ".join(str(error).split())[:160]


class Grader:
    """Local verdicts now; with an LLM configured, a better one later through `on_verdict`."""

    def __init__(self, llm: LlmGrader | None = None, daily_limit: int = 50,
                 spend: Callable[[str, str], Awaitable[int]] | None = None):
        self.llm, self.daily_limit, self.spend = llm, daily_limit, spend
        self._tasks: set[asyncio.Task] = set()

    @staticmethod
    def local(question: Question, answer: str) -> Verdict:
        return grade_locally(question, answer)

    def refine(self, question: Question, answer: str, lang: str, learner: str, day: str,
               on_verdict: Callable[[Verdict], Awaitable[None]]) -> None:
        """Ask the LLM in the background (if configured and the learner's daily cap allows)."""
        if self.llm is None or not answer.strip():
            return
        task = asyncio.create_task(self._refine(question, answer, lang, learner, day, on_verdict))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refine(self, question, answer, lang, learner, day, on_verdict) -> None:
        try:
            if self.spend is not None and await self.spend(learner, day) > self.daily_limit:
                log.info("grader: %s reached the daily LLM limit (%d); local grading", learner, self.daily_limit)
                return
            verdict = await self.llm.grade(question, answer, lang)
            if verdict is not None:
                await on_verdict(verdict)
        except Exception:  # the learner already has the local verdict; never let this surface
            log.exception("grader: refining the verdict on %s failed", question.id)

    async def best(self, question: Question, answer: str, lang: str = "zh") -> Verdict:
        """The LLM's verdict when it gives a usable one, else the local one (for `quizbot grade`)."""
        if self.llm is not None and answer.strip():
            verdict = await self.llm.grade(question, answer, lang)
            if verdict is not None:
                return verdict
        return self.local(question, answer)

    async def drain(self, timeout: float = 30) -> None:
        """Wait for verdicts under way (tests, and a clean shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
