"""Every user-facing string, in Chinese (the default) and English. Translators edit only this file."""
from __future__ import annotations

from datetime import date

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

MESSAGES: dict[str, dict[str, str]] = {
    "welcome": {
        "zh": "你好{name}！我是 **quizbot**，陪你准备大模型面试的出题官。\n\n"
              "每天一道面试题：你先用自己的话作答，我给出参考答案和要点，你对照给自己打分。"
              "答得不好的题会按间隔重复算法再回来，答得好的会渐渐淡出。\n\n"
              "题库共 {topics} 个主题、{questions} 道题。可以先来一题，也可以订阅每日推送或选一个学习计划。",
        "en": "Hi{name}! I'm **quizbot**, your quizmaster for LLM engineering interviews.\n\n"
              "One interview question a day: answer in your own words, I show a reference answer with its key points, "
              "and you rate yourself against it. Weak questions come back on a spaced-repetition schedule; strong ones fade.\n\n"
              "The bank has {questions} questions in {topics} topics (written in Chinese). Try one now, "
              "or subscribe to the daily push, or pick a study plan.",
    },
    "welcome_name": {"zh": "，{name}", "en": ", {name}"},
    "help": {
        "zh": "**命令**\n"
              "- /next 下一题（先复习到期的题，再出新题）\n"
              "- /topics 全部主题和你的进度\n"
              "- /topic 主题名 来一道该主题的题，例如 /topic rag\n"
              "- /answer 不作答，直接看参考答案\n"
              "- /skip 跳过当前题\n"
              "- /a 答案 在群里作答（也可以直接回复题目消息）\n"
              "- /stats 学习统计\n"
              "- /history 最近的作答（你写的答案和重做按钮）\n"
              "- /mock rag 5 模拟面试：连续 5 题，带追问，最后一起看参考答案；/mock stop 结束\n"
              "- /q rag-001 按题号再做一道题\n"
              "- /search KV cache 按关键词找题\n"
              "- /leaderboard 群内本周排行\n"
              "- /export 导出你的作答记录（CSV 和 JSON 文件）\n"
              "- /export anki 把弱项题导出为 Anki 卡组；/export anki rag 导出一个主题\n"
              "- /plan 选择学习计划\n"
              "- /subscribe 09:00 Asia/Shanghai 订阅每日一题\n"
              "- /unsubscribe 取消每日推送\n"
              "- /settings 查看设置\n"
              "- /nudge on|off 每日推送时提醒还有几道到期复习\n"
              "- /lang en 切换语言（zh / en）\n"
              "- /link 关联 Telegram 与飞书账号，合并学习记录；/unlink 取消\n\n"
              "出题后直接发送你的答案即可，我会标出你覆盖了哪些要点。",
        "en": "**Commands**\n"
              "- /next next question (due reviews first, then new ones)\n"
              "- /topics all topics with your progress\n"
              "- /topic NAME a question from that topic, e.g. /topic rag\n"
              "- /answer show the reference answer without answering\n"
              "- /skip skip the current question\n"
              "- /a ANSWER answer in a group (or reply to the question message)\n"
              "- /stats your statistics\n"
              "- /history your latest answers (what you wrote, and a retry button)\n"
              "- /mock rag 5 a mock interview: 5 questions in a row with follow-ups, references at the end; /mock stop ends it\n"
              "- /q rag-001 a question again, by its id\n"
              "- /search KV cache find questions by keyword\n"
              "- /leaderboard this week's ranking in a group\n"
              "- /export your answers as CSV and JSON files\n"
              "- /export anki your weak questions as an Anki deck; /export anki rag a whole topic\n"
              "- /plan choose a study plan\n"
              "- /subscribe 09:00 Europe/London daily question\n"
              "- /unsubscribe stop the daily question\n"
              "- /settings show your settings\n"
              "- /nudge on|off say with the daily question how many more reviews are due\n"
              "- /lang zh switch language (zh / en)\n"
              "- /link join your Telegram and Feishu accounts into one history; /unlink splits them\n\n"
              "After a question, just send your answer: I'll mark which key points it covered.",
    },
    "unknown_command": {
        "zh": "我不认识命令 /{command}。发送 /help 查看全部命令。",
        "en": "I don't know the command /{command}. Send /help to see them all.",
    },
    "question": {
        "zh": "{reason}**【{topic}】** {difficulty}\n\n{q}\n\n直接发送你的答案；想不出来可以点「看答案」。",
        "en": "{reason}**[{topic}]** {difficulty}\n\n{q}\n\nSend your answer as a message, or tap \"Show answer\" if you're stuck.",
    },
    "question_group": {
        "zh": "{reason}**【{topic}】** {difficulty}\n\n{q}\n\n回复这条消息作答（或发送 /a 你的答案），答完给自己打分。",
        "en": "{reason}**[{topic}]** {difficulty}\n\n{q}\n\nReply to this message to answer (or send /a YOUR ANSWER), then rate yourself.",
    },
    "reason_review": {"zh": "🔁 复习 · ", "en": "🔁 Review · "},
    "reason_new": {"zh": "🆕 新题 · ", "en": "🆕 New · "},
    "reason_weakest": {"zh": "💪 巩固 · ", "en": "💪 Weak spot · "},
    "difficulty_1": {"zh": "· 基础", "en": "· basic"},
    "difficulty_2": {"zh": "· 进阶", "en": "· intermediate"},
    "difficulty_3": {"zh": "· 高阶", "en": "· advanced"},
    "reference_answer": {"zh": "**参考答案**\n{answer}", "en": "**Reference answer**\n{answer}"},
    "key_points_heading": {"zh": "**要点**（对照检查你的答案）", "en": "**Key points** (check your answer against them)"},
    "key_points_marked": {
        "zh": "**要点**：你的答案覆盖了 {hit}/{total} 个（✓ 已覆盖 · ✗ 未提到）",
        "en": "**Key points**: your answer covered {hit} of {total} (✓ covered · ✗ not mentioned)",
    },
    "grader_feedback": {"zh": "💬 点评：{feedback}", "en": "💬 Feedback: {feedback}"},
    "grader_later": {"zh": "**补充点评**（更细致的批改结果）", "en": "**A closer look at your answer**"},
    "rate_prompt": {
        "zh": "和参考答案比，你答得怎么样？（标 ✓建议 的是按要点覆盖给出的建议，仍由你决定）",
        "en": "How well did you answer, compared with the reference? (✓ marks the rating your key points suggest; you choose)",
    },
    "grade_suggested": {"zh": "{grade} ✓建议", "en": "{grade} ✓suggested"},
    "board_title": {"zh": "**参考答案与要点**", "en": "**Reference answer and key points**"},
    "reveal_label": {"zh": "👀 看答案（只对点开的人可见）", "en": "👀 Show answer (only you see it)"},
    "board_footer": {
        "zh": "已作答 {count} 人：{members}\n作答后点下面的按钮给自己打分。",
        "en": "{count} answered: {members}\nAfter answering, rate yourself with the buttons below.",
    },
    "board_hits": {"zh": " · 要点 {hit}/{total}", "en": " · {hit}/{total} key points"},
    "forward_not_answer": {
        "zh": "转发的消息不算作答：请用你自己的话回答这道题。",
        "en": "A forwarded message doesn't count as an answer: please answer in your own words.",
    },
    "text_answers_only": {
        "zh": "只有文字答案才算作答（图片可以附上文字说明）。请直接发送你的答案。",
        "en": "Only text answers count (a photo counts by its caption). Please send your answer as text.",
    },
    "media_no_question": {
        "zh": "我只读文字消息。发送 /next 来一道题吧。",
        "en": "I only read text messages. Send /next for a question.",
    },
    "file_failed": {"zh": "（文件 {name} 发送失败，请稍后再试。）", "en": "(The file {name} could not be sent; please try again later.)"},
    "mock_private_only": {
        "zh": "模拟面试只在私聊中进行：请私聊我发送 /mock。",
        "en": "Mock interviews run in a private chat only: send me /mock privately.",
    },
    "mock_intro": {
        "zh": "🎤 **模拟面试**开始：{topic}，共 {total} 道题。像真正的面试一样作答，面试官会追问；参考答案在结束时一起看（也可以随时点「看答案」）。/mock stop 提前结束。",
        "en": "🎤 **Mock interview**: {topic}, {total} questions. Answer as you would in the room; the interviewer follows up. References come at the end (or tap \"Show answer\" any time). /mock stop ends early.",
    },
    "mock_all_topics": {"zh": "全部主题", "en": "all topics"},
    "mock_question": {"zh": "🎤 第 {number}/{total} 题 · 【{topic}】\n\n面试官：{q}", "en": "🎤 Question {number}/{total} · [{topic}]\n\nInterviewer: {q}"},
    "mock_follow_up": {"zh": "🎯 追问（第 {number} 题）\n\n面试官：{q}", "en": "🎯 Follow-up (question {number})\n\nInterviewer: {q}"},
    "mock_answered": {
        "zh": "已记下。先凭感觉给自己打个分（标 ✓建议 的是按要点覆盖的建议），然后继续：",
        "en": "Noted. Rate yourself on it (✓ marks what your key points suggest), then we go on:",
    },
    "mock_under_way": {
        "zh": "模拟面试进行中：已问 {done}/{total} 道题。",
        "en": "A mock interview is under way: {done} of {total} questions asked.",
    },
    "mock_none": {"zh": "现在没有进行中的模拟面试。", "en": "There's no mock interview under way."},
    "mock_bad_count": {"zh": "题数请用 1 到 {limit} 之间的数字，例如 /mock rag 5。", "en": "Use a number of questions from 1 to {limit}, e.g. /mock rag 5."},
    "mock_bad_topic": {
        "zh": "没有找到唯一的主题「{query}」。发送 /topics 查看主题名，例如 /mock rag 5。",
        "en": "I can't find one topic called \"{query}\". Send /topics for their names, e.g. /mock rag 5.",
    },
    "mock_summary": {"zh": "**模拟面试小结**", "en": "**Mock interview summary**"},
    "mock_summary_early": {"zh": "**模拟面试小结**（提前结束）", "en": "**Mock interview summary** (ended early)"},
    "mock_line": {"zh": "{prefix}{q} — 要点 {hit}/{total} · {rating} `{id}`", "en": "{prefix}{q} — {hit}/{total} key points · {rating} `{id}`"},
    "mock_missed": {"zh": "   漏掉：{points}", "en": "   missed: {points}"},
    "mock_skipped": {"zh": "跳过", "en": "skipped"},
    "mock_review": {"zh": "接下来复习：{ids}（间隔重复会把它们排回来）", "en": "Review next: {ids} (spaced repetition will bring them back)"},
    "mock_all_good": {"zh": "每道题都答得不错，继续保持！", "en": "Every answer went well: keep it up!"},
    "mock_footer": {"zh": "最需要加强的主题：{topic}（/topic {slug}）\n{advice}", "en": "Weakest topic: {topic} (/topic {slug})\n{advice}"},
    "mock_empty": {"zh": "这场模拟面试还没有作答，已结束。", "en": "That mock interview had no answers yet; it's over."},
    "button_mock": {"zh": "模拟面试", "en": "Mock interview"},
    "button_mock_again": {"zh": "再来一场", "en": "Another one"},
    "button_mock_continue": {"zh": "继续", "en": "Continue"},
    "button_mock_stop": {"zh": "结束面试", "en": "End interview"},
    "follow_up_tag": {"zh": "追问 · ", "en": "follow-up · "},
    "reason_follow_up": {"zh": "🎯 面试官追问 · ", "en": "🎯 Follow-up · "},
    "button_follow_up": {"zh": "追问", "en": "Follow-up"},
    "no_follow_up": {
        "zh": "这道题没有更多追问了。来下一题吧：",
        "en": "There are no more follow-ups to that question. On to the next one:",
    },
    "board_member": {"zh": "{name}（{status}）", "en": "{name} ({status})"},
    "list_separator": {"zh": "、", "en": ", "},
    "answer_first": {
        "zh": "先回复题目作答（或点「看答案」），再给自己打分。",
        "en": "Answer the question first (or tap \"Show answer\"), then rate yourself.",
    },
    "answer_truncated": {
        "zh": "（你的答案有 {length} 字，超过上限 {limit} 字，只保存了前 {limit} 字。）",
        "en": "(Your answer had {length} characters, over the {limit} limit: I kept the first {limit}.)",
    },
    "empty_answer": {
        "zh": "答案是空的。写下你的想法再发送，或发送 /answer 直接看参考答案。",
        "en": "That answer is empty. Write what you think and send it, or send /answer to see the reference.",
    },
    "no_open_question": {
        "zh": "现在没有待回答的题目。发送 /next 来一题，或 /topics 选个主题。",
        "en": "There's no open question right now. Send /next for one, or /topics to pick a topic.",
    },
    "already_answered": {
        "zh": "你已经回答过这道题了，先给自己打个分吧：",
        "en": "You've already answered this one. Rate yourself first:",
    },
    "rated": {
        "zh": "已记录：{grade}。这道题将在 {due}（{days} 天后）再次出现。",
        "en": "Saved: {grade}. This question comes back on {due} (in {days} days).",
    },
    "rated_already": {"zh": "这道题已经打过分了。", "en": "You've already rated this one."},
    "not_yours": {
        "zh": "这个按钮不是给你的：只能给自己的答案打分。",
        "en": "That button isn't yours: you can only rate your own answer.",
    },
    "stale_button": {
        "zh": "这道题已经结束了。发送 /next 来一道新题。",
        "en": "That question is closed. Send /next for a new one.",
    },
    "skipped": {"zh": "已跳过。", "en": "Skipped."},
    "topic_needs_name": {
        "zh": "要哪个主题？例如 /topic rag 或 /topic 检索。可选的主题：",
        "en": "Which topic? For example /topic rag. The topics are:",
    },
    "topic_unknown": {
        "zh": "没有找到主题「{query}」。你是不是想找：",
        "en": "I couldn't find the topic \"{query}\". Did you mean:",
    },
    "topic_unknown_no_match": {
        "zh": "没有找到主题「{query}」。发送 /topics 查看全部主题。",
        "en": "I couldn't find the topic \"{query}\". Send /topics to see them all.",
    },
    "topic_ambiguous": {
        "zh": "「{query}」能对上好几个主题，请选一个：",
        "en": "\"{query}\" matches several topics. Pick one:",
    },
    "topics": {
        "zh": "**全部主题**（已答 / 已掌握 / 题数）\n{lines}\n\n点一个主题，马上出题。",
        "en": "**All topics** (answered / mastered / questions)\n{lines}\n\nTap a topic for a question right away.",
    },
    "topic_done": {
        "zh": "「{topic}」的 {count} 道题你都做过了，也没有到期的复习。下面是你掌握得最弱的一题：",
        "en": "You've done all {count} questions of \"{topic}\" and none is due. Here's your weakest one:",
    },
    "bank_done": {
        "zh": "题库里的题你都做过了，现在也没有到期的复习。明天再来吧！",
        "en": "You've done every question in the bank and nothing is due. Come back tomorrow!",
    },
    "plan_week_done": {
        "zh": "本周计划里的新题已经做完了，接下来从其他主题出题。",
        "en": "You've finished this week's new questions in your plan; here's one from another topic.",
    },
    "stats": {
        "zh": "**学习统计**\n已作答 {answers} 次，{distinct} 道不同的题（题库共 {total} 道）\n"
              "连续学习 {streak} 天\n今天到期复习 {due} 道\n已掌握 {mastered} 道\n\n**各主题**（已答 / 已掌握 / 题数）\n{lines}",
        "en": "**Your statistics**\n{answers} answers to {distinct} different questions (of {total} in the bank)\n"
              "Streak: {streak} days in a row\nDue today: {due}\nMastered: {mastered}\n\n"
              "**By topic** (answered / mastered / questions)\n{lines}",
    },
    "stats_empty": {
        "zh": "还没有作答记录。发送 /next 开始第一题吧！",
        "en": "No answers yet. Send /next for your first question!",
    },
    # The /stats chart: drawn in English when no font on the machine can draw Chinese (bot/stats.py).
    "chart_title": {"zh": "各主题掌握情况", "en": "Mastery by topic"},
    "chart_questions": {"zh": "题数", "en": "questions"},
    "chart_answered": {"zh": "已答", "en": "answered"},
    "chart_mastered": {"zh": "已掌握（21 天以上）", "en": "mastered (21+ days)"},
    "chart_calendar": {"zh": "近 {weeks} 周学习日历：共 {answers} 次作答", "en": "Study days, last {weeks} weeks: {answers} answers"},
    "chart_weekdays": {"zh": "周一 周二 周三 周四 周五 周六 周日", "en": "Mon Tue Wed Thu Fri Sat Sun"},
    "chart_months": {"zh": "1月 2月 3月 4月 5月 6月 7月 8月 9月 10月 11月 12月",
                     "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"},
    # /export (bot/data_out.py)
    "export_usage": {
        "zh": "用法：/export 导出作答记录（CSV 和 JSON）；/export csv 或 /export json 只要一种；"
              "/export anki 导出弱项题的 Anki 卡组；/export anki 主题 导出整个主题，例如 /export anki rag。",
        "en": "Usage: /export sends your answers as CSV and JSON; /export csv or /export json just one of them; "
              "/export anki an Anki deck of your weak questions; /export anki TOPIC a whole topic, e.g. /export anki rag.",
    },
    "export_private_only": {
        "zh": "你的作答记录只发到私聊里：请在和我的私聊中发送 /export。（整个主题的卡组可以在群里导出，例如 /export anki rag）",
        "en": "Your answers are only sent in a private chat: send /export to me directly. "
              "(A whole topic's deck works in a group too, e.g. /export anki rag.)",
    },
    "export_empty": {
        "zh": "还没有可以导出的作答记录。先答几道题吧！",
        "en": "There's nothing to export yet: answer a few questions first!",
    },
    "export_history": {
        "zh": "📦 你的作答记录：{answers} 次作答，{questions} 道题。CSV 可以用表格软件打开，JSON 便于程序读取。"
              "每行有题号、题目、你的答案、命中的要点、自评、时间和下次复习时间。",
        "en": "📦 Your history: {answers} answers to {questions} questions. The CSV opens in any spreadsheet, the JSON "
              "suits programs. Each row has the question id, the question, your answer, the key points you hit, "
              "your rating, the time and the next review.",
    },
    "export_topic_unknown": {
        "zh": "没有找到主题「{query}」。选一个主题导出 Anki 卡组：",
        "en": "I couldn't find the topic \"{query}\". Pick a topic to export as an Anki deck:",
    },
    "export_topic_ambiguous": {
        "zh": "「{query}」能对上好几个主题，选一个导出：",
        "en": "\"{query}\" matches several topics. Pick one to export:",
    },
    "export_anki_topic": {
        "zh": "🗂 「{topic}」的 Anki 卡组：{questions} 道题和 {follow_ups} 道追问。正面是题目，背面是参考答案和要点；"
              "以后再导入会更新已有的卡，不会重复。",
        "en": "🗂 An Anki deck of \"{topic}\": {questions} questions and {follow_ups} follow-ups. Front: the question; "
              "back: the reference answer and key points. Importing a later export updates these cards instead of "
              "duplicating them.",
    },
    "export_anki_weak": {
        "zh": "🗂 你的弱项 Anki 卡组：{count} 道题。弱项指最近一次自评为「不会」或「模糊」，或记忆稳定度不足 {days} 天的题"
              "（最弱的在前）。以后再导入会更新已有的卡，不会重复。",
        "en": "🗂 An Anki deck of your weak questions: {count}. Weak means your last rating was Again or Hard, or your "
              "memory of it is good for less than {days} days (weakest first). Importing a later export updates these "
              "cards instead of duplicating them.",
    },
    "export_no_weak": {
        "zh": "目前没有弱项题（最近一次自评为「不会」或「模糊」，或记忆稳定度不足 {days} 天的题）。"
              "可以导出整个主题，例如 /export anki rag：",
        "en": "You have no weak questions right now (last rated Again or Hard, or remembered for less than {days} days). "
              "You can export a whole topic instead, e.g. /export anki rag:",
    },
    "export_nothing_rated": {
        "zh": "你还没有给任何题打过分，所以还没有弱项。可以导出整个主题，例如 /export anki rag：",
        "en": "You haven't rated any question yet, so there are no weak ones. You can export a whole topic, "
              "e.g. /export anki rag:",
    },
    "export_weak_deck": {"zh": "弱项", "en": "Weak spots"},
    "export_points_title": {"zh": "要点", "en": "Key points"},
    "export_deck_description": {
        "zh": "quizbot 大模型面试题。正面是题目，背面是参考答案和要点。",
        "en": "quizbot LLM interview questions. Front: the question; back: the reference answer and key points.",
    },
    # Telegram's bot profile: the description (≤ 512 characters) shows in an empty chat, the short one (≤ 120) on the profile
    "bot_description": {
        "zh": "大模型面试出题官：每天一道面试题，你用自己的话作答，我给出参考答案和要点，你给自己打分；"
              "答得不好的题会按间隔重复再回来。题库覆盖 RAG、注意力机制、微调、RLHF、推理部署等主题。点「开始」来第一题。",
        "en": "A quizmaster for LLM engineering interviews: one question a day, you answer in your own words, I show a "
              "reference answer with its key points and you rate yourself; weak questions come back on a spaced-repetition "
              "schedule. Topics from RAG and attention to fine-tuning, RLHF and serving. Tap Start for your first question.",
    },
    "bot_short_description": {
        "zh": "每天一道大模型面试题：作答、对照要点自评、按间隔重复复习。",
        "en": "One LLM interview question a day: answer, check the key points, review with spaced repetition.",
    },
    "image_saved": {"zh": "📊 图表已保存到 {path}", "en": "📊 Chart saved to {path}"},
    "file_saved": {"zh": "📎 文件已保存到 {path}", "en": "📎 File saved to {path}"},
    "save_failed": {"zh": "⚠️ 无法保存 {path}：{error}", "en": "⚠️ Could not save {path}: {error}"},
    "send_failed": {"zh": "⚠️ 这条回复无法显示（{error}），请继续。", "en": "⚠️ That reply could not be shown ({error}); carry on."},
    "history": {"zh": "**最近的作答**\n{lines}\n\n点按钮可以重做对应的题。", "en": "**Your latest answers**\n{lines}\n\nTap a button to try that question again."},
    "history_line": {"zh": "{number}. {day} {title} — {rating}\n   你的答案：{answer}", "en": "{number}. {day} {title} — {rating}\n   you wrote: {answer}"},
    "history_revealed": {"zh": "（直接看了答案）", "en": "(looked at the answer)"},
    "button_retry": {"zh": "重做 {number}", "en": "Retry {number}"},
    "search_usage": {"zh": "要找什么？例如 /search KV cache 或 /search 位置编码。", "en": "What should I look for? E.g. /search KV cache or /search position encoding."},
    "search_none": {"zh": "没有找到和「{query}」相关的题。换个说法试试，或发送 /topics 按主题浏览。", "en": "No question matches \"{query}\". Try other words, or browse with /topics."},
    "search_found": {"zh": "和「{query}」相关的 {count} 道题，点一道马上作答：", "en": "{count} questions match \"{query}\". Tap one to answer it now:"},
    "q_usage": {"zh": "请给出题号，例如 /q rag-001（/history 和 /search 里能看到题号）。", "en": "Give a question id, e.g. /q rag-001 (/history and /search show them)."},
    "q_unknown": {"zh": "没有题号为「{id}」的题。你是不是想找：", "en": "There's no question \"{id}\". Did you mean:"},
    "link_private_only": {
        "zh": "关联账号只能在私聊中进行（群里的验证码所有人都看得见）。请私聊我发送 /link。",
        "en": "Linking accounts works in a private chat only (a code shown in a group is seen by all). Send me /link privately.",
    },
    "link_code": {
        "zh": "你的一次性关联码：`{code}`（{minutes} 分钟内有效，只能用一次）。\n在另一个平台上私聊我发送 /link {code}，两边的学习记录就会合并成一份。",
        "en": "Your one-time link code: `{code}` (valid {minutes} minutes, single use).\nOn the other platform, send me /link {code} in a private chat and your two histories become one.",
    },
    "link_bad_code": {
        "zh": "这个关联码不对或已过期。在原来的平台上发送 /link 重新获取一个。",
        "en": "That code is wrong or has expired. Send /link on the other platform for a new one.",
    },
    "link_too_many": {
        "zh": "尝试次数太多了，请一小时后再试。",
        "en": "Too many tries: please wait an hour and try again.",
    },
    "link_same": {"zh": "这两个账号已经是同一份学习记录了。", "en": "Those accounts already share one history."},
    "link_other_platform": {
        "zh": "请在另一个平台（例如飞书 ↔ Telegram）上使用这个关联码。",
        "en": "Use the code on the other platform (e.g. Feishu ↔ Telegram).",
    },
    "link_done": {
        "zh": "✅ 已关联：两边的学习记录合并为一份（并入 {answers} 条作答）。今后在任一平台学习都算同一个人；/unlink 可以再分开。",
        "en": "✅ Linked: your two histories are now one ({answers} answers joined). Study on either platform as one learner; /unlink splits them again.",
    },
    "unlink_none": {"zh": "这个账号没有关联其他平台。", "en": "This account isn't linked to another platform."},
    "unlink_done": {
        "zh": "已取消关联：从现在起两边分开记录（已合并的历史保留在原来的学习记录里）。",
        "en": "Unlinked: from now on each platform keeps its own history (what was joined stays with the original one).",
    },
    "reason_chosen": {"zh": "📌 指定 · ", "en": "📌 Chosen · "},
    "history_empty": {"zh": "还没有作答记录。", "en": "No answers yet."},
    "not_rated": {"zh": "未打分", "en": "not rated"},
    "removed_question": {"zh": "（已从题库移除）", "en": "(removed from the bank)"},
    "subscribed": {
        "zh": "已订阅：每天{days} {time}（{tz}）推送一道题。下一次：{next}。",
        "en": "Subscribed: a question every day{days} at {time} ({tz}). Next one: {next}.",
    },
    "bad_time": {
        "zh": "时间「{value}」不对。请用 24 小时制 HH:MM，例如 /subscribe 08:30 Asia/Shanghai。",
        "en": "\"{value}\" isn't a valid time. Use 24-hour HH:MM, e.g. /subscribe 08:30 Europe/London.",
    },
    "bad_timezone": {
        "zh": "不认识时区「{value}」。请用 IANA 时区名，例如 Asia/Shanghai、Europe/London、America/New_York。",
        "en": "I don't know the time zone \"{value}\". Use an IANA name such as Asia/Shanghai, Europe/London or America/New_York.",
    },
    "on_weekdays": {"zh": "（仅工作日）", "en": " (Monday to Friday)"},
    "unsubscribed": {
        "zh": "已取消每日推送。随时可以 /subscribe 重新订阅。",
        "en": "Daily questions stopped. Send /subscribe any time to start again.",
    },
    "not_subscribed": {"zh": "你还没有订阅每日推送。", "en": "You aren't subscribed to the daily question."},
    "settings": {
        "zh": "**设置**\n语言：{language}\n每日推送：{push}\n时区：{tz}\n学习计划：{plan}\n当前主题：{topic}",
        "en": "**Settings**\nLanguage: {language}\nDaily question: {push}\nTime zone: {tz}\nStudy plan: {plan}\nCurrent topic: {topic}",
    },
    "push_off": {"zh": "未订阅", "en": "off"},
    "push_on": {"zh": "每天 {time}", "en": "every day at {time}"},
    "none": {"zh": "无", "en": "none"},
    "lang_name": {"zh": "中文", "en": "English"},
    "lang_set": {"zh": "好的，之后用中文和你交流。", "en": "OK, I'll speak English from now on."},
    "lang_bad": {
        "zh": "支持的语言：zh（中文）、en（English）。例如 /lang en",
        "en": "Supported languages: zh (Chinese) and en (English). For example /lang zh",
    },
    "plans": {
        "zh": "**学习计划**（当前：{current}）\n{lines}\n\n选一个计划，每天的新题会按它的周次出题；/plan off 退出计划。",
        "en": "**Study plans** (current: {current})\n{lines}\n\nPick one and new questions follow its weeks; /plan off leaves the plan.",
    },
    "plan_line": {"zh": "- {title} `{id}`：{weeks} 周", "en": "- {title} `{id}`: {weeks} weeks"},
    "plan_set": {
        "zh": "已选择「{title}」（{weeks} 周）。第 1 周主题：{topics}。发送 /next 开始。",
        "en": "You're on \"{title}\" ({weeks} weeks). Week 1 topics: {topics}. Send /next to start.",
    },
    "plan_unknown": {
        "zh": "没有学习计划「{value}」。可选的计划：",
        "en": "There's no study plan \"{value}\". The plans are:",
    },
    "plan_off": {"zh": "已退出学习计划。", "en": "You've left the study plan."},
    "no_plans": {"zh": "题库还没有学习计划。", "en": "The bank has no study plans yet."},
    "admin_only": {
        "zh": "只有群管理员可以修改本群的设置。",
        "en": "Only the group's admins can change its settings.",
    },
    "storage_error": {
        "zh": "抱歉，现在无法保存你的记录（数据库暂时不可写）。请稍后再试，已保存的内容不会丢失。",
        "en": "Sorry, I can't save right now (the database is not writable). Please try again later; nothing saved is lost.",
    },
    "internal_error": {
        "zh": "抱歉，处理这条消息时出了错，已记录下来。你的学习记录没有丢失，请再试一次。",
        "en": "Sorry, something went wrong with that message; it has been logged. Your progress is safe: please try again.",
    },
    "leaderboard": {
        "zh": "**本周排行**（{since} 起：作答数 · 平均自评，1 不会 – 4 轻松）\n{lines}",
        "en": "**This week** (since {since}: answers · average self-rating, 1 Again – 4 Easy)\n{lines}",
    },
    "leaderboard_line": {"zh": "{rank}. {name}：{answers} 题 · {average}", "en": "{rank}. {name}: {answers} · {average}"},
    "leaderboard_empty": {
        "zh": "本周这里还没有人作答。发送 /next 来一题！",
        "en": "Nobody has answered here this week yet. Send /next for a question!",
    },
    "nudge": {
        "zh": "📌 另外还有 {count} 道题到期复习，发送 /next 继续。（/nudge off 关闭此提醒）",
        "en": "📌 {count} more reviews are due: send /next to go on. (/nudge off turns this reminder off)",
    },
    "nudge_usage": {
        "zh": "复习提醒目前：{state}。用 /nudge on 或 /nudge off 切换。",
        "en": "The reviews reminder is {state}. Use /nudge on or /nudge off.",
    },
    "nudge_set": {"zh": "复习提醒：{state}。", "en": "Reviews reminder: {state}."},
    "on": {"zh": "开", "en": "on"},
    "off": {"zh": "关", "en": "off"},
    "daily_header": {"zh": "☀️ **每日一题**\n", "en": "☀️ **Question of the day**\n"},
    "group_summary": {
        "zh": "上一题「{q}」：{count} 人作答，平均自评 {average}。\n",
        "en": "Last question \"{q}\": {count} answered, average self-rating {average}.\n",
    },
    "digest_header": {"zh": "📅 **本周小结**\n", "en": "📅 **Your week**\n"},
    "digest": {
        "zh": "本周作答 {answers} 次，连续学习 {streak} 天。\n最需要加强的主题：{weakest}（/topic {slug}）",
        "en": "{answers} answers this week, a {streak}-day streak.\nYour weakest topic: {weakest} (/topic {slug})",
    },
    "grade_1": {"zh": "不会", "en": "Again"},
    "grade_2": {"zh": "模糊", "en": "Hard"},
    "grade_3": {"zh": "答对", "en": "Good"},
    "grade_4": {"zh": "轻松", "en": "Easy"},
    "button_next": {"zh": "下一题", "en": "Next question"},
    "button_reveal": {"zh": "看答案", "en": "Show answer"},
    "button_skip": {"zh": "跳过", "en": "Skip"},
    "button_subscribe": {"zh": "订阅每日一题", "en": "Daily question"},
    "button_plans": {"zh": "学习计划", "en": "Study plans"},
    "button_topics": {"zh": "选主题", "en": "Topics"},
    "button_same_topic": {"zh": "同主题再来一题", "en": "More from this topic"},
    "date": {"zh": "{month}月{day}日", "en": "{month_name} {day}"},
}


def normalise_lang(hint: str | None) -> str | None:
    """A platform language code ("zh-hans", "en-US", "ru") → one of LANGS, or None if unknown."""
    if not hint:
        return None
    hint = hint.lower()
    return "zh" if hint.startswith("zh") else "en"


def t(key: str, lang: str, **values) -> str:
    texts = MESSAGES[key]
    return texts.get(lang, texts[DEFAULT_LANG]).format(**values)


def format_date(day: date, lang: str) -> str:
    return t("date", lang, month=day.month, day=day.day, month_name=day.strftime("%b"))


# The command menu platforms show (Telegram's setMyCommands); same commands, each language's words.
COMMAND_MENU: dict[str, tuple[tuple[str, str], ...]] = {
    "zh": (("next", "下一题"), ("topics", "全部主题与进度"), ("topic", "指定主题出题，如 /topic rag"),
           ("answer", "直接看参考答案"), ("skip", "跳过当前题"), ("a", "在群里作答：/a 你的答案"),
           ("stats", "学习统计"), ("history", "最近的作答"), ("mock", "模拟面试，如 /mock rag 5"),
           ("q", "按题号做题，如 /q rag-001"), ("search", "按关键词找题"), ("leaderboard", "本周排行"),
           ("export", "导出作答记录；/export anki 导出 Anki 卡组"),
           ("plan", "选择学习计划"), ("subscribe", "订阅每日一题，如 /subscribe 09:00"),
           ("unsubscribe", "取消每日推送"), ("settings", "查看设置"), ("nudge", "到期复习提醒 on / off"),
           ("lang", "切换语言 zh / en"), ("link", "关联另一平台的账号"), ("unlink", "取消账号关联"),
           ("help", "帮助"), ("start", "开始")),
    "en": (("next", "Next question"), ("topics", "Topics and progress"), ("topic", "A question on a topic: /topic rag"),
           ("answer", "Show the reference answer"), ("skip", "Skip this question"),
           ("a", "Answer in a group: /a your answer"), ("stats", "Your statistics"), ("history", "Latest answers"),
           ("mock", "A mock interview: /mock rag 5"), ("q", "A question by id: /q rag-001"),
           ("search", "Find questions by keyword"), ("leaderboard", "This week's ranking"),
           ("export", "Your answers as files; /export anki an Anki deck"), ("plan", "Choose a study plan"),
           ("subscribe", "Daily question, e.g. /subscribe 09:00"), ("unsubscribe", "Stop the daily question"),
           ("settings", "Your settings"), ("nudge", "Due-reviews reminder on / off"), ("lang", "Language zh / en"),
           ("link", "Link your account on another platform"), ("unlink", "Undo the account link"),
           ("help", "Help"), ("start", "Start")),
}
