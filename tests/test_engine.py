"""The quiz loop through Engine.handle, on a real SQLite file: what a person sees and what is kept."""
from __future__ import annotations

import json

from bot.engine import MAX_ANSWER_CHARS
from bot.models import Chat, Incoming

from .conftest import button_data, buttons, person, shown


async def ask_topic(p, slug="attention"):
    [reply] = await p.say(f"/topic {slug}")
    return reply


async def study(p, slug: str, grade: int, answer: str = "答案") -> None:
    """Ask for a question of `slug`, answer it and rate it (grade 1 Again … 4 Easy)."""
    await ask_topic(p, slug)
    [reference] = await p.say(answer)
    await p.press(button_data(reference, "rate:")[grade - 1])


async def test_start_explains_the_loop_and_offers_push_and_plan(engine):
    [reply] = await person(engine).say("/start")
    assert "每天一道面试题" in reply.text and "Ada" in reply.text
    assert set(buttons(reply).values()) == {"next", "topics", "subscribe", "plan"}


async def test_whole_loop_question_answer_reference_rating(engine, store):
    p = person(engine)
    question = await ask_topic(p)
    assert "什么是自注意力？" in question.text and "注意力机制" in question.text
    [reference] = await p.say("自注意力让每个位置按相关性汇总序列")
    assert "参考答案" in shown(reference) and "什么是自注意力 要点一" in shown(reference)
    rating_buttons = button_data(reference, "rate:")
    labels = [label.removesuffix(" ✓建议") for label in buttons(reference)]
    assert len(rating_buttons) == 4 and labels == ["不会", "模糊", "答对", "轻松"]
    assert sum(label.endswith("✓建议") for label in buttons(reference)) == 1  # a suggestion, the learner chooses

    [saved] = await p.press(rating_buttons[2])  # 答对 Good
    assert "已记录：答对" in saved.text and "天后" in saved.text
    row = await store.one("SELECT * FROM answers")
    assert row["user_key"] == "test:1" and row["chat_key"] == "test:1" and row["question_id"] == "attention-001"
    assert row["text"] == "自注意力让每个位置按相关性汇总序列" and row["rating"] == 3
    assert json.loads(row["card"])["stability"] > 0 and row["answered_at"].endswith("+00:00")
    # the question is closed now: more text is not taken as an answer
    [hint] = await p.say("还有一点补充")
    assert "没有待回答的题目" in hint.text


async def test_the_rating_reply_says_when_the_question_returns(engine, clock):
    p = person(engine)
    await ask_topic(p)
    [reference] = await p.say("不知道")
    [again] = await p.press(button_data(reference, "rate:")[0])
    assert "1 天后" in again.text and "3月3日" in again.text


async def test_reveal_without_answer_still_asks_for_a_rating(engine, store):
    p = person(engine)
    await ask_topic(p)
    [reference] = await p.say("/answer")
    assert "参考答案" in shown(reference) and len(button_data(reference, "rate:")) == 4
    assert (await store.one("SELECT text FROM answers"))["text"] == ""


async def test_reveal_and_skip_buttons_act_on_the_open_question_only(engine):
    p = person(engine)
    first = await ask_topic(p)
    await p.say("/next")
    [stale] = await p.press(buttons(first)["看答案"])
    assert "已经结束" in stale.text


async def test_skip_moves_on_to_a_different_question(engine):
    p = person(engine)
    first = await ask_topic(p)
    skipped, question = await p.say("/skip")
    assert "已跳过" in skipped.text and question.text != first.text


async def test_next_never_repeats_the_question_just_asked(engine):
    p = person(engine)
    seen = []
    for _ in range(12):
        [reply] = await p.say("/next")
        seen.append(reply.text.split("\n\n")[1])
    assert all(a != b for a, b in zip(seen, seen[1:]))


async def test_due_reviews_come_before_new_questions(engine, clock):
    p = person(engine)
    await study(p, "rlhf", grade=1, answer="我不会")  # Again: back tomorrow
    await p.say("/topic rag")  # something else in between
    clock.advance(days=1)
    [review] = await p.say("/next")
    assert "复习" in review.text and "奖励模型怎么训练" in review.text


async def test_a_finished_topic_says_so_and_serves_the_weakest(engine):
    p = person(engine)
    for grade in (4, 1):  # rlhf has two questions: one Easy, one Again
        await study(p, "rlhf", grade)
    await p.say("/topic rag")
    [reply] = await p.say("/topic rlhf")
    assert "2 道题你都做过了" in reply.text and "DPO 的核心思想" in reply.text


async def test_topic_by_chinese_name_english_name_and_prefix(engine):
    p = person(engine)
    assert "检索增强生成" in (await p.say("/topic 检索"))[0].text
    assert "人类反馈强化学习" in (await p.say("/topic reinforcement learning"))[0].text
    assert "注意力机制" in (await p.say("/topic att"))[0].text


async def test_unknown_topic_offers_close_matches(engine):
    [reply] = await person(engine).say("/topic atention")
    assert "没有找到主题「atention」" in reply.text
    assert "topic:attention" in buttons(reply).values()


async def test_topic_without_a_name_lists_the_topics(engine):
    [reply] = await person(engine).say("/topic")
    assert "要哪个主题" in reply.text and len(buttons(reply)) == 3


async def test_topics_show_counts_and_progress(engine):
    p = person(engine)
    await study(p, "rag", grade=4, answer="先检索再生成")
    [reply] = await p.say("/topics")
    assert "检索增强生成 `rag`: 1/0/3" in reply.text and "注意力机制 `attention`: 0/0/4" in reply.text


async def test_empty_and_whitespace_answers_are_refused_and_the_question_stays_open(engine, store):
    p = person(engine)
    await ask_topic(p)
    for text in ("", "   \n\t "):
        [reply] = await p.say(text)
        assert "答案是空的" in reply.text
    assert await store.one("SELECT * FROM answers") is None
    [reference] = await p.say("真正的答案")
    assert "参考答案" in shown(reference)


async def test_oversized_answer_is_capped_and_the_user_is_told(engine, store):
    p = person(engine)
    await ask_topic(p)
    note, reference = await p.say("长" * 20_000)
    assert "20000" in note.text and str(MAX_ANSWER_CHARS) in note.text and "参考答案" in shown(reference)
    assert len((await store.one("SELECT text FROM answers"))["text"]) == MAX_ANSWER_CHARS


async def test_answering_twice_asks_for_the_rating_instead(engine, store):
    p = person(engine)
    await ask_topic(p)
    await p.say("第一次")
    [reply] = await p.say("第二次")
    assert "已经回答过" in reply.text and len(button_data(reply, "rate:")) == 4
    assert (await store.one("SELECT COUNT(*) FROM answers"))[0] == 1


async def test_someone_elses_rating_button_is_refused(engine, store):
    ada, bob = person(engine, "1"), person(engine, "2", name="Bob")
    await ask_topic(ada)
    [reference] = await ada.say("答案")
    [refused] = await bob.press(button_data(reference, "rate:")[3])
    assert "不是给你的" in refused.text
    assert (await store.one("SELECT rating FROM answers"))["rating"] is None


async def test_rating_twice_or_with_a_forged_button_changes_nothing(engine, store):
    p = person(engine)
    await ask_topic(p)
    [reference] = await p.say("答案")
    first = button_data(reference, "rate:")
    await p.press(first[2])
    [again] = await p.press(first[0])
    assert "已经打过分" in again.text
    for forged in ("rate:999:3", "rate:abc:3", "rate:1:9", "rate:", "rate:-1:2"):
        [reply] = await p.press(forged)
        assert "已经结束" in reply.text
    assert (await store.one("SELECT rating FROM answers"))["rating"] == 3
    assert (await store.one("SELECT reviews FROM cards"))["reviews"] == 1


async def test_unknown_command_is_answered_in_the_users_language(engine):
    [zh] = await person(engine).say("/frobnicate")
    assert "我不认识命令 /frobnicate" in zh.text
    [en] = await person(engine, "2", lang="en-GB").say("/frobnicate")
    assert "I don't know the command /frobnicate" in en.text


async def test_lang_switches_every_reply(engine):
    p = person(engine)
    [reply] = await p.say("/lang en")
    assert "English" in reply.text
    question = await ask_topic(p)
    assert "[Attention Mechanisms]" in question.text and "Show answer" in buttons(question)
    [bad] = await p.say("/lang fr")
    assert "zh" in bad.text and "en" in bad.text


async def test_subscribe_validates_time_and_zone(engine, store):
    p = person(engine)
    [bad_time] = await p.say("/subscribe 25:99")
    assert "25:99" in bad_time.text and "HH:MM" in bad_time.text
    [bad_zone] = await p.say("/subscribe 08:00 Mars/Olympus")
    assert "Mars/Olympus" in bad_zone.text
    assert (await store.one("SELECT subscribed FROM chats"))["subscribed"] == 0
    [ok] = await p.say("/subscribe 07:30 America/New_York")
    assert "07:30" in ok.text and "America/New_York" in ok.text
    chat = await store.one("SELECT * FROM chats")
    # Monday 01:00 UTC is Sunday 20:00 in New York (EST): next push Monday 07:30 EST = 12:30 UTC
    assert chat["subscribed"] == 1 and chat["next_push_utc"] == "2026-03-02T12:30:00+00:00"
    [settings] = await p.say("/settings")
    assert "每天 07:30" in settings.text and "America/New_York" in settings.text
    [off] = await p.say("/unsubscribe")
    assert "已取消" in off.text
    assert (await store.one("SELECT subscribed FROM chats"))["subscribed"] == 0


async def test_stats_count_answers_streak_and_due(engine, clock):
    p = person(engine)
    [empty] = await p.say("/stats")
    assert "还没有作答记录" in empty.text
    for _ in range(3):  # three days in a row, one Again each day
        await p.say("/next")
        [reference] = await p.say("答案")
        await p.press(button_data(reference, "rate:")[0])
        clock.advance(days=1)
    clock.advance(days=-1)
    [stats] = await p.say("/stats")
    assert "已作答 3 次" in stats.text and "连续学习 3 天" in stats.text
    assert "今天到期复习 1 道" in stats.text  # yesterday's Again is due today
    clock.advance(days=3)
    [later] = await p.say("/stats")
    assert "连续学习 0 天" in later.text


async def test_history_lists_latest_answers_with_ratings(engine):
    p = person(engine)
    await study(p, "attention", grade=2)
    await ask_topic(p, "rag")
    await p.say("另一个答案")
    [history] = await p.say("/history")
    lines = history.text.splitlines()[1:]
    assert "什么是检索增强生成" in lines[0] and "未打分" in lines[0] and "你的答案：另一个答案" in lines[1]
    assert "什么是自注意力" in lines[2] and "模糊" in lines[2] and "要点" in lines[2]
    assert button_data(history, "q:") == ["q:rag-001", "q:attention-001"]  # try each again
    [again] = await p.press("q:attention-001")
    assert "什么是自注意力？" in again.text and "📌 指定" in again.text


async def test_plan_drives_new_questions_week_by_week(engine, clock):
    p = person(engine)
    [plans] = await p.say("/plan")
    assert "冲刺" in plans.text and "plan:sprint" in buttons(plans).values()
    [chosen] = await p.press("plan:sprint")
    assert "人类反馈强化学习" in chosen.text
    [first] = await p.say("/next")
    assert "人类反馈强化学习" in first.text
    clock.advance(days=7)  # week 2: rag and attention
    for _ in range(4):
        [question] = await p.say("/next")
        assert "人类反馈强化学习" not in question.text
    [unknown] = await p.say("/plan marathon")
    assert "marathon" in unknown.text
    [off] = await p.say("/plan off")
    assert "已退出" in off.text


async def test_group_members_answer_the_same_question_on_one_shared_board(engine, store):
    group = Chat("test", "-100", is_group=True)
    ada = person(engine, "1", chat=group, name="Ada", is_admin=True)
    bob = person(engine, "2", chat=group, name="Bob")
    cyd = person(engine, "3", chat=group, name="Cyd")
    [question] = await ada.say("/next")
    assert "回复这条消息作答" in question.text
    [board] = await ada.say("Ada 的答案")
    [board_again] = await bob.say("/a Bob 的答案")
    # one board per question, replaced in place: the reference hidden, who has answered and how
    # many key points each hit, never what they wrote
    assert board.key == board_again.key and board.key.startswith("board:")
    hidden = [s for s in board.sections if s.hidden]
    assert len(hidden) == 1 and "参考答案" in hidden[0].text and "要点二" in shown(board)
    assert "已作答 2 人：Ada（未打分 · 要点 0/3）、Bob（未打分 · 要点 0/3）" in shown(board_again)
    assert "Bob 的答案" not in shown(board_again)

    board_update, toast = await ada.press(button_data(board_again, "rate:")[3])
    assert toast.toast and "已记录：轻松" in toast.text
    assert board_update.key == board.key and "Ada（轻松 · 要点 0/3）、Bob（未打分 · 要点 0/3）" in shown(board_update)
    [twice] = await ada.press(button_data(board_again, "rate:")[0])
    assert twice.toast and "已经打过分" in twice.text
    [not_yet] = await cyd.press(button_data(board_again, "rate:")[3])
    assert not_yet.toast and "先回复题目作答" in not_yet.text
    await bob.press(button_data(board_again, "rate:")[1])

    rows = await store.all("SELECT user_key, rating FROM answers ORDER BY user_key")
    assert [(r["user_key"], r["rating"]) for r in rows] == [("test:1", 4), ("test:2", 2)]
    [leaderboard] = await bob.say("/leaderboard")
    assert "Ada：1 题 · 4.0" in leaderboard.text and "Bob：1 题 · 2.0" in leaderboard.text


async def test_a_rating_button_from_another_chat_is_refused(engine, store):
    ada, bob = person(engine, "1"), person(engine, "2", name="Bob")
    await ask_topic(ada)
    [reference] = await ada.say("答案")
    await ask_topic(bob)
    await bob.say("Bob 的答案")
    [refused] = await bob.press(button_data(reference, "rate:")[3])  # Ada's button, pressed in Bob's chat
    assert refused.toast and "不是给你的" in refused.text
    assert [r["rating"] for r in await store.all("SELECT rating FROM answers")] == [None, None]


async def test_only_group_admins_change_group_settings(engine, store):
    group = Chat("test", "-100", is_group=True)
    [refused] = await person(engine, "2", chat=group).say("/subscribe 09:00")
    assert "只有群管理员" in refused.text
    [ok] = await person(engine, "1", chat=group, is_admin=True).say("/subscribe 09:00")
    assert "已订阅" in ok.text


async def test_read_only_database_gets_a_friendly_reply_and_keeps_what_was_saved(engine, store):
    p = person(engine)
    await ask_topic(p)
    await store.write("PRAGMA query_only = ON")
    replies = await p.say("答案")
    assert "无法保存" in replies[0].text
    await store.write("PRAGMA query_only = OFF")
    [reference] = await p.say("答案")
    assert "参考答案" in shown(reference)


async def test_a_redelivered_event_is_handled_once(engine, store):
    p = person(engine)
    await ask_topic(p)
    answer = Incoming(p.chat, p.user, "text", "我的答案", event_id="evt-1")
    assert "参考答案" in (await engine.handle(answer))[0].text
    assert await engine.handle(answer) == []
    assert (await store.one("SELECT COUNT(*) FROM answers"))[0] == 1


async def test_joining_a_group_greets_it_and_leaving_pauses_its_pushes(engine, store):
    group = Chat("test", "-100", is_group=True)
    someone = person(engine, "1", chat=group)
    [welcome] = await engine.handle(Incoming(group, someone.user, "joined"))
    assert "quizbot" in welcome.text
    assert await engine.handle(Incoming(group, someone.user, "left")) == []
    assert (await store.one("SELECT paused FROM chats WHERE key = 'test:-100'"))["paused"] == 1


async def test_a_group_keeps_one_language_whoever_speaks(engine):
    group = Chat("test", "-100", is_group=True)
    adder = person(engine, "1", chat=group, lang="en-US")
    await engine.handle(Incoming(group, adder.user, "joined"))
    [reply] = await person(engine, "2", chat=group, lang="zh-hans").say("/next")
    assert "Reply to this message" in reply.text


async def test_a_paused_private_chat_is_resumed_when_its_user_writes_again(engine, store):
    p = person(engine)
    await p.say("/subscribe 09:00")
    await engine.handle(Incoming(p.chat, p.user, "left"))  # e.g. the user blocked the bot
    assert (await store.one("SELECT paused FROM chats"))["paused"] == 1
    await p.say("/start")
    assert (await store.one("SELECT paused FROM chats"))["paused"] == 0


async def test_every_reply_says_which_language_it_is_in(engine):
    p = person(engine)
    assert {r.lang for r in await p.say("/start")} == {"zh"}
    [switched] = await p.say("/lang en")
    assert switched.lang == "en"
    assert {r.lang for r in await p.say("/help")} == {"en"}


async def test_stats_come_with_a_mastery_chart(engine):
    p = person(engine)
    await study(p, "rag", grade=3)
    [stats] = await p.say("/stats")
    assert stats.image.startswith(b"\x89PNG\r\n\x1a\n") and len(stats.image) > 2000


async def test_a_group_that_gets_a_new_id_keeps_its_question_subscription_and_board(engine, store):
    old, new = Chat("test", "-100", is_group=True), Chat("test", "-1009", is_group=True)
    ada = person(engine, "1", chat=old, name="Ada", is_admin=True)
    await ada.say("/subscribe 09:00")
    [question] = await ada.say("/next")
    await person(engine, "2", chat=new, name="Bob").say("/help")  # someone spoke in the new chat already
    assert await engine.handle(Incoming(old, ada.user, "moved", "-1009")) == []
    [board] = await person(engine, "2", chat=new, name="Bob").say("Bob 的答案")  # the open question moved too
    assert "Bob（未打分" in shown(board)
    chats = await store.all("SELECT key, subscribed FROM chats WHERE platform = 'test' AND is_group = 1")
    assert [(c["key"], c["subscribed"]) for c in chats] == [("test:-1009", 1)]


async def test_an_upgraded_group_is_not_welcomed_a_second_time(engine):
    old, new = Chat("test", "-100", is_group=True), Chat("test", "-1009", is_group=True)
    ada = person(engine, "1", chat=old, is_admin=True)
    [welcome] = await engine.handle(Incoming(old, ada.user, "joined"))
    assert "我是 **quizbot**" in welcome.text
    await engine.handle(Incoming(old, ada.user, "moved", "-1009"))
    assert await engine.handle(Incoming(new, ada.user, "joined")) == []      # Telegram's member update for the supergroup
    await engine.handle(Incoming(new, ada.user, "left"))
    [again] = await engine.handle(Incoming(new, ada.user, "joined"))         # removed and added back: welcomed
    assert "我是 **quizbot**" in again.text
