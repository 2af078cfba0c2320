"""Shared fixtures: a small question bank written to disk, a controllable clock, and an engine on a
real SQLite file in a temp dir."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from bot.content import load_bank
from bot.engine import Engine
from bot.models import Chat, Incoming, Reply, User
from bot.storage import Storage

ANSWER = "这是一段参考答案，用来测试。它需要足够长才能通过内容检查，所以这里多写几句话：注意力机制让模型按相关性加权汇总信息，" \
         "缩放点积注意力用 softmax(QK^T / sqrt(d_k)) V 计算输出。"

TOPICS = {
    "attention": ("注意力机制", "Attention Mechanisms", ["什么是自注意力", "为什么要除以根号 d_k", "多头注意力有什么好处",
                                                      "MQA 和 GQA 有什么区别"]),
    "rag": ("检索增强生成", "Retrieval-Augmented Generation", ["什么是检索增强生成", "文档如何分块",
                                                              "为什么需要重排"]),
    "rlhf": ("人类反馈强化学习", "Reinforcement Learning from Human Feedback", ["奖励模型怎么训练", "DPO 的核心思想"]),
}


def write_bank(folder: Path, topics: dict = TOPICS, plans: bool = True, follow_ups: int = 0) -> Path:
    """A small bank; `follow_ups`: how many follow-ups (追问) each question gets."""
    folder.mkdir(parents=True, exist_ok=True)
    for slug, (title, title_en, questions) in topics.items():
        data = {"topic": slug, "title": title, "title_en": title_en, "questions": [
            {"id": f"{slug}-{i:03d}", "q": f"{q}？", "difficulty": 1 + (i - 1) % 3, "answer": f"{q}：{ANSWER}",
             "key_points": [{"text": f"{q} 要点一", "terms": [q[:12]]}, {"text": "要点二", "terms": ["要点二", "second"]},
                            {"text": "要点三", "terms": ["要点三"]}],
             "follow_ups": [{"q": f"追问{n}：{q}的细节是什么？", "answer": f"追问{n}的参考答案：{ANSWER[:60]}",
                             "key_points": [{"text": f"细节{n}甲", "terms": [f"细节{n}甲"]},
                                            {"text": f"细节{n}乙", "terms": [f"细节{n}乙"]}]}
                            for n in range(1, follow_ups + 1)],
             "tags": ["test"], "source": [f"seed 001 L{i}"]}
            for i, q in enumerate(questions, start=1)]}
        (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    if plans:
        plan = {"plans": [{"id": "sprint", "title": "冲刺", "title_en": "Sprint", "weeks": [["rlhf"], ["rag", "attention"]]}]}
        (folder / "plans.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return folder


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc))  # Monday 09:00 in Asia/Shanghai


@pytest.fixture
def bank_dir(tmp_path) -> Path:
    return write_bank(tmp_path / "content")


@pytest.fixture
async def store(tmp_path):
    store = await Storage.open(tmp_path / "quizbot.db")
    yield store
    await store.close()


@pytest.fixture
async def engine(store, bank_dir, clock) -> Engine:
    return Engine(store, load_bank(bank_dir), clock=clock)


@dataclass
class Person:
    """Somebody chatting with the engine, in a private chat or a group."""

    engine: Engine
    user: User
    chat: Chat
    is_admin: bool = False

    async def say(self, text: str) -> list[Reply]:
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            return await self.engine.handle(Incoming(self.chat, self.user, "command", name, args, self.is_admin))
        return await self.engine.handle(Incoming(self.chat, self.user, "text", text, "", self.is_admin))

    async def press(self, data: str) -> list[Reply]:
        return await self.engine.handle(Incoming(self.chat, self.user, "button", data, "", self.is_admin))


def person(engine: Engine, uid: str = "1", chat: Chat | None = None, name: str = "Ada", lang: str | None = None,
           is_admin: bool = False) -> Person:
    return Person(engine, User("test", uid, name, lang), chat or Chat("test", uid), is_admin)


def buttons(reply: Reply) -> dict[str, str]:
    """label → data of every button on a reply."""
    return {b.label: b.data for row in reply.buttons for b in row}


def button_data(reply: Reply, prefix: str) -> list[str]:
    return [b.data for row in reply.buttons for b in row if b.data.startswith(prefix)]


def shown(reply: Reply) -> str:
    """All a reply says: its text, then each section with its checklist (hidden ones included)."""
    from bot.markup import section_markup
    return "\n\n".join(part for part in [reply.text, *map(section_markup, reply.sections)] if part)
