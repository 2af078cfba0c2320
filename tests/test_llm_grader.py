"""The optional LLM grader through the real `openai` SDK against a stand-in chat-completions server:
a good verdict refines the reply, anything else falls back to the local verdict silently for the
learner and with one log line for the operator; a daily cap bounds the cost; the request carries
only the question, reference, key points and answer; the key never reaches a log."""
from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from bot.config import Settings
from bot.content import load_bank
from bot.engine import Engine
from bot.grader import Grader, LlmGrader, LlmSettings
from quizbot.app import build_grader

from .conftest import button_data, person, shown, write_bank
from .fakes.chat_completions import FakeChatCompletions

API_KEY = "sk-test-NEVER-LOG-9931"


@pytest.fixture
async def llm():
    fake = await FakeChatCompletions().start()
    yield fake
    await fake.stop()


async def engine_with(store, bank_dir, clock, llm, *, timeout=5.0, daily_limit=50):
    grader = Grader(LlmGrader(LlmSettings(llm.base_url, "judge-1", API_KEY, timeout, daily_limit)), daily_limit,
                    store.spend_grading)
    engine = Engine(store, load_bank(bank_dir), clock=clock, grader=grader)
    later = []

    async def send_later(chat, reply):
        later.append((chat, reply))
    engine.send_later_with(send_later)
    return engine, later


async def answer_rag(p, text="先检索相关文档，再拼进提示词生成"):
    await p.say("/topic rag")
    [reference] = await p.say(text)
    return reference


async def test_a_good_verdict_edits_the_reference_with_marks_feedback_and_a_suggestion(store, bank_dir, clock, llm):
    llm.verdict([0, 2], 3, "没有提到要点二。")
    engine, later = await engine_with(store, bank_dir, clock, llm)
    reference = await answer_rag(person(engine))
    await engine.core.grader.drain()
    [(chat, refined)] = later
    assert chat.id == "1" and refined.key == reference.key and refined.key.startswith("ref:")  # edited in place
    text = shown(refined)
    assert "覆盖了 2/3 个" in text and "✓ 什么是检索增强生成 要点一" in text and "✗ 要点二" in text
    assert "💬 点评：没有提到要点二。" in text
    assert [b.label for row in refined.buttons for b in row][2] == "答对 ✓建议"
    [(covered, grader, suggested)] = await store.all("SELECT covered, grader, suggested FROM answers")
    assert json.loads(covered) == [0, 2] and grader == "llm" and suggested == 3


async def test_after_the_learner_rated_the_verdict_comes_as_a_message_of_its_own(store, bank_dir, clock, llm):
    llm.verdict([1], 2, "答得比较笼统。")
    llm.delay = 0.3
    engine, later = await engine_with(store, bank_dir, clock, llm)
    p = person(engine)
    reference = await answer_rag(p)
    await p.press(button_data(reference, "rate:")[2])
    await engine.core.grader.drain()
    [(_, refined)] = later
    assert refined.key is None and not refined.buttons and "答得比较笼统" in shown(refined)
    [(rating,)] = await store.all("SELECT rating FROM answers")
    assert rating == 3                                                 # the learner's choice schedules the review


@pytest.mark.parametrize("fault", ["timeout", "500", "429", "not json", "out of range", "missing key", "refusal"])
async def test_every_failure_falls_back_to_the_local_verdict(store, bank_dir, clock, llm, caplog, fault):
    caplog.set_level(logging.INFO)
    if fault == "timeout":
        llm.delay, timeout = 1.5, 0.3
    else:
        timeout = 5.0
    llm.status = {"500": 500, "429": 429}.get(fault, 200)
    llm.content = {"not json": "covered: 0 and 2", "out of range": '{"covered": [0, 7], "suggested": 3, "feedback": "x"}',
                   "missing key": '{"suggested": 3, "feedback": "x"}',
                   "refusal": "I'm sorry, I can't help with that."}.get(fault, llm.content)
    engine, later = await engine_with(store, bank_dir, clock, llm, timeout=timeout)
    reference = await answer_rag(person(engine))
    await engine.core.grader.drain()
    assert later == []                                                 # the learner keeps the local verdict
    assert "覆盖了" in shown(reference)
    [(grader,)] = await store.all("SELECT grader FROM answers")
    assert grader == "local"
    lines = [r for r in caplog.records if "the local verdict stands" in r.getMessage()]
    assert len(lines) == 1 and API_KEY not in caplog.text


async def test_the_daily_cap_holds_and_then_grading_is_local(store, bank_dir, clock, llm):
    llm.verdict([0], 2, "ok")
    engine, later = await engine_with(store, bank_dir, clock, llm, daily_limit=2)
    p = person(engine)
    for _ in range(3):
        await p.say("/next")
        await p.say("一个答案")
        await p.say("/skip")
    await engine.core.grader.drain()
    assert len(llm.requests) == 2 and len(later) == 2
    clock.advance(days=1)                                              # a new day, a new allowance
    await p.say("/next")
    await p.say("一个答案")
    await engine.core.grader.drain()
    assert len(llm.requests) == 3


async def test_the_request_carries_only_the_question_reference_key_points_and_answer(store, bank_dir, clock, llm,
                                                                                     caplog):
    caplog.set_level(logging.DEBUG)
    engine, _ = await engine_with(store, bank_dir, clock, llm)
    await answer_rag(person(engine, name="Ada Lovelace"), "我的答案 RAG")
    await engine.core.grader.drain()
    [request] = llm.requests
    body = request.body
    assert body["model"] == "judge-1" and body["temperature"] <= 0.2 and body["max_tokens"] <= 400
    system, user = body["messages"]
    assert system["role"] == "system" and "JSON" in system["content"]
    sent = json.loads(user["content"])
    assert set(sent) == {"question", "reference", "key_points", "answer"} and sent["answer"] == "我的答案 RAG"
    assert "Ada" not in json.dumps(body, ensure_ascii=False) and "test:1" not in json.dumps(body)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in caplog.text


async def test_revealing_without_answering_asks_no_llm_and_marks_nothing(store, bank_dir, clock, llm):
    engine, later = await engine_with(store, bank_dir, clock, llm)
    p = person(engine)
    await p.say("/topic rag")
    [reference] = await p.say("/answer")
    await engine.core.grader.drain()
    assert not llm.requests and not later
    assert "✓" not in shown(reference).replace("✓建议", "") and "✗" not in shown(reference)
    assert [b.label for row in reference.buttons for b in row][0] == "不会 ✓建议"


async def test_quizbot_grade_prints_one_json_object(tmp_path, llm):
    folder = write_bank(tmp_path / "content")
    config = tmp_path / "config.toml"
    config.write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")

    async def grade(*args, answer="要点二，还有要点三"):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "quizbot.cli", "grade", *args, "--config", str(config), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate(answer.encode())
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await grade("rag-001")
    assert code == 0
    assert json.loads(out) == {"question": "rag-001", "covered": [1, 2], "missed": [0], "suggested": 3, "grader": "local"}
    code, _, err = await grade("rag-999")
    assert code != 0 and err.strip() == "quizbot: no question 'rag-999' in the bank"
    code, _, err = await grade("rag-001", answer="  ")
    assert code != 0 and "empty" in err

    llm.verdict([1], 2, "只说了要点二。")
    config.write_text(f'[bot]\ncontent_dir = "{folder}"\n[grader]\nbase_url = "{llm.base_url}"\nmodel = "m"\n'
                      f'api_key = "{API_KEY}"\n', encoding="utf-8")
    code, out, err = await grade("rag-001")
    assert code == 0 and json.loads(out) == {"question": "rag-001", "covered": [1], "missed": [0, 2], "suggested": 2,
                                             "grader": "llm", "feedback": "只说了要点二。"}
    assert API_KEY not in err


def test_the_grader_section_names_a_bad_key_and_takes_the_key_from_the_environment(tmp_path):
    from bot.config import ConfigError, load_settings
    settings = load_settings(None, {"QUIZBOT_GRADER_API_KEY": API_KEY})
    assert settings.grader.api_key.get_secret_value() == API_KEY and API_KEY not in repr(settings)
    assert build_grader(Settings(), None).llm is None                  # no base_url: local only
    config = tmp_path / "config.toml"
    config.write_text('[grader]\nbase_url = "ftp://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[grader\] base_url: 'ftp://x' is not an http\(s\) URL"):
        load_settings(config, {})
