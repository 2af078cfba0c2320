"""Studying like an interview, through Engine.handle on a real SQLite file: follow-ups, mock
interviews, finding questions again (/q, /search), and one learner across platforms (/link)."""
from __future__ import annotations

import re

import pytest

from bot.content import load_bank
from bot.engine import Engine
from bot.models import Chat, User

from .conftest import Person, button_data, buttons, person, shown, write_bank


@pytest.fixture
async def engine(store, tmp_path, clock) -> Engine:
    return Engine(store, load_bank(write_bank(tmp_path / "content", follow_ups=2)), clock=clock)


async def rate(p, reply, grade: int = 3, prefix: str = "rate:"):
    return await p.press(button_data(reply, prefix)[grade - 1])


# --- follow-ups ---------------------------------------------------------------------------------

async def test_after_a_rating_the_interviewer_follows_up_on_its_own_card(engine, store, clock):
    p = person(engine)
    await p.say("/topic rag")
    [reference] = await p.say("先检索再生成")
    [rated] = await rate(p, reference)
    assert list(buttons(rated)) == ["追问", "下一题"]
    [follow_up] = await p.press(buttons(rated)["追问"])
    assert "面试官追问" in follow_up.text and "追问1：什么是检索增强生成的细节是什么？" in follow_up.text
    [reference] = await p.say("细节1甲")
    assert "✓ 细节1甲" in shown(reference) and "✗ 细节1乙" in shown(reference)   # graded like any question
    [rated] = await rate(p, reference, 2)
    assert list(buttons(rated)) == ["追问", "下一题"]                        # a second follow-up is there
    [second] = await p.press(buttons(rated)["追问"])
    assert "追问2" in second.text
    cards = await store.all("SELECT question_id, last_rating FROM cards ORDER BY question_id")
    assert [(r["question_id"], r["last_rating"]) for r in cards] == [("rag-001", 3), ("rag-001-f1", 2)]

    clock.advance(days=3)                                                  # the follow-up comes back on its own
    [due] = await p.say("/next")
    assert "复习" in due.text and "追问1" in due.text


async def test_a_stale_or_foreign_follow_up_button_is_refused(engine):
    p, other = person(engine), person(engine, "2")
    await p.say("/topic rag")
    [reference] = await p.say("答案")
    [rated] = await rate(p, reference)
    [refused] = await other.press(buttons(rated)["追问"])
    assert "已经结束" in refused.text
    [refused] = await p.press("follow:" + "9" * 40)
    assert "已经结束" in refused.text


# --- mock interviews ------------------------------------------------------------------------------

async def test_a_mock_interview_asks_follows_up_and_sums_up_without_references_until_the_end(engine, store):
    p = person(engine)
    intro, first = await p.say("/mock rag 2")
    assert "模拟面试" in intro.text and "共 2 道题" in intro.text and "第 1/2 题" in first.text
    [noted] = await p.say("先检索再生成，要点二")
    assert "参考答案" not in shown(noted) and len(button_data(noted, "mrate:")) == 4
    [follow_up] = await rate(p, noted, 3, "mrate:")
    assert "追问" in follow_up.text and "面试官" in follow_up.text
    [noted] = await p.say("细节1甲")
    [second] = await rate(p, noted, 2, "mrate:")
    assert "第 2/2 题" in second.text
    [noted] = await p.say("不太清楚")
    [follow_up] = await rate(p, noted, 1, "mrate:")
    [noted] = await p.say("细节1乙")
    [summary] = await rate(p, noted, 2, "mrate:")
    text = shown(summary)
    assert "模拟面试小结" in text and "要点 1/3 · 答对 `rag-001`" in text and "要点 1/2 · 模糊 `rag-001-f1`" in text
    assert "漏掉：" in text and "最需要加强的主题：检索增强生成" in text and "/q rag-002" in text
    ratings = await store.all("SELECT question_id, rating FROM answers ORDER BY id")
    assert [r["rating"] for r in ratings] == [3, 2, 1, 2]                  # every answer feeds FSRS
    assert len(await store.all("SELECT * FROM cards")) == 4
    [after] = await p.say("一个普通的答案")                                 # the interview is over
    assert "现在没有待回答的题目" in after.text


async def test_a_mock_interview_can_end_early_and_is_private_only(engine):
    p = person(engine)
    await p.say("/mock 3")
    [noted] = await p.say("答案")
    await rate(p, noted, 3, "mrate:")
    [summary] = await p.say("/mock stop")
    assert "提前结束" in summary.text and "要点" in shown(summary) and "答对" in shown(summary)
    [none] = await p.say("/mock stop")
    assert "没有进行中的模拟面试" in none.text
    group = person(engine, "9", chat=Chat("test", "-5", is_group=True))
    [refused] = await group.say("/mock")
    assert "只在私聊中进行" in refused.text
    [bad] = await p.say("/mock rag 99")
    assert "1 到 20" in bad.text


async def test_showing_the_answer_in_a_mock_interview_still_moves_on(engine):
    p = person(engine)
    await p.say("/mock rag 1")
    [shown_reply] = await p.say("/answer")
    assert "参考答案" in shown(shown_reply) and len(button_data(shown_reply, "mrate:")) == 4
    [next_one] = await rate(p, shown_reply, 1, "mrate:")
    assert "追问" in next_one.text                                        # the follow-up still comes


# --- finding questions again ------------------------------------------------------------------------

async def test_q_serves_a_question_or_follow_up_by_id_and_suggests_close_ids(engine):
    p = person(engine)
    [again] = await p.say("/q rag-002")
    assert "文档如何分块？" in again.text and "📌 指定" in again.text
    [follow_up] = await p.say("/q rag-002-f1")
    assert "追问1：文档如何分块" in follow_up.text
    [unknown] = await p.say("/q rag-0099")
    assert "没有题号为「rag-0099」的题" in unknown.text and button_data(unknown, "q:")
    [usage] = await p.say("/q")
    assert "/q rag-001" in usage.text


async def test_search_finds_questions_in_chinese_english_and_with_typos(engine):
    p = person(engine)
    [found] = await p.say("/search 分块")
    assert button_data(found, "q:")[0] == "q:rag-002"
    [english] = await p.say("/search Retrieval-Augmented")                # the topic's English name
    assert {d.split(":")[1] for d in button_data(english, "q:")} >= {"rag-001", "rag-002"}
    [typo] = await p.say("/search 多头注意")
    assert "q:attention-003" in button_data(typo, "q:")
    [nothing] = await p.say("/search 量子计算机")
    assert "没有找到" in nothing.text
    [answerable] = await p.press(button_data(found, "q:")[0])
    assert "文档如何分块？" in answerable.text


# --- one learner across platforms -------------------------------------------------------------------

def code_in(reply) -> str:
    return re.search(r"`([A-Z0-9]{8})`", reply.text)[1]


def telegram_ada(engine) -> Person:
    return Person(engine, User("telegram", "101", "Ada"), Chat("telegram", "101"))


def feishu_ada(engine) -> Person:
    return Person(engine, User("feishu", "ou_ada", "Ada"), Chat("feishu", "oc_ada"))


async def test_linking_two_platforms_joins_every_answer_and_keeps_the_later_rating(engine, store, clock):
    tg, fs = telegram_ada(engine), feishu_ada(engine)
    await tg.say("/topic rag")
    [reference] = await tg.say("Telegram 上的答案")
    await rate(tg, reference, 1)                                           # rag-001: 不会, on Telegram
    clock.advance(hours=2)
    await fs.say("/topic rag")
    [reference] = await fs.say("飞书上的答案")
    await rate(fs, reference, 4)                                           # rag-001 again, later: 轻松
    [code_reply] = await tg.say("/link")
    code = code_in(code_reply)
    [done] = await fs.say(f"/link {code.lower()}")
    assert "已关联" in done.text
    rows = await store.all("SELECT user_key, text FROM answers ORDER BY id")
    assert {r["user_key"] for r in rows} == {"telegram:101"} and len(rows) == 2   # no answer lost
    [card] = await store.all("SELECT last_rating, reviews FROM cards WHERE question_id = 'rag-001'")
    assert card["last_rating"] == 4 and card["reviews"] == 2              # the later rating wins
    [stats] = await fs.say("/stats")
    assert "已作答 2 次" in stats.text                                    # one history, on either platform
    [history] = await tg.say("/history")
    assert "飞书上的答案" in history.text and "Telegram 上的答案" in history.text

    [again] = await fs.say(f"/link {code}")                               # single use
    assert "不对或已过期" in again.text
    [split] = await fs.say("/unlink")
    assert "已取消关联" in split.text
    await fs.say("/topic attention")
    await fs.say("从此分开记录")
    assert len(await store.all("SELECT * FROM answers WHERE user_key = 'feishu:ou_ada'")) == 1


async def test_link_codes_expire_are_rate_limited_and_never_work_in_groups(engine, clock):
    tg, fs = telegram_ada(engine), feishu_ada(engine)
    [code_reply] = await tg.say("/link")
    code = code_in(code_reply)
    clock.advance(minutes=11)
    [expired] = await fs.say(f"/link {code}")
    assert "不对或已过期" in expired.text
    for _ in range(4):
        await fs.say("/link WRONGCOD")
    [paused] = await fs.say("/link WRONGCOD")
    assert "尝试次数太多" in paused.text
    group = person(engine, "9", chat=Chat("feishu", "oc_g", is_group=True))
    [refused] = await group.say("/link")
    assert "只能在私聊中进行" in refused.text
    [code_reply] = await tg.say("/link")
    code = code_in(code_reply)
    other_tg = Person(engine, User("telegram", "55", "Bob"), Chat("telegram", "55"))
    [same_platform] = await other_tg.say(f"/link {code}")
    assert "另一个平台" in same_platform.text


async def test_unlinking_from_the_first_account_lets_the_other_study_on_its_own(engine, store):
    tg, fs = telegram_ada(engine), feishu_ada(engine)
    await fs.say("/start")
    [code_reply] = await tg.say("/link")
    code = code_in(code_reply)
    await fs.say(f"/link {code}")
    [split] = await tg.say("/unlink")                                      # from the Telegram side this time
    assert "已取消关联" in split.text
    [question] = await fs.say("/topic rag")
    assert "检索增强生成" in question.text                                  # not refused as somebody else's chat
    await fs.say("飞书自己的答案")
    [(user_key,)] = await store.all("SELECT user_key FROM answers")
    assert user_key == "feishu:ou_ada"
