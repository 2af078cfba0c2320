"""A chat's settings: the daily push (time, zone, weekdays), nudges, language and study plan."""
from __future__ import annotations

from . import i18n
from .models import Button, Reply
from .storage import utc_text
from .timeutil import local_date, next_local_time, parse_hhmm, zone
from .turn import Core, Turn, next_button, row, short

WEEKDAY_WORDS = {"weekdays": "12345", "workdays": "12345", "mon-fri": "12345", "工作日": "12345",
                 "daily": None, "everyday": None, "每天": None}


async def subscribe(core: Core, turn: Turn, args: str) -> list[Reply]:
    """/subscribe [HH:MM] [Area/City] [weekdays|daily], in any order. In a forum topic the
    daily question goes to that topic."""
    push_time = parse_hhmm(turn.chat["push_time"] or core.defaults.push_time)
    tz, weekdays = turn.chat["timezone"], turn.chat["weekdays"]
    for word in args.split():
        if parse_hhmm(word):
            push_time = parse_hhmm(word)
        elif zone(word):
            tz = word
        elif word.lower() in WEEKDAY_WORDS:
            weekdays = WEEKDAY_WORDS[word.lower()]
        elif any(c.isdigit() for c in word) and "/" not in word:
            return [Reply(turn.t("bad_time", value=short(word)))]
        else:
            return [Reply(turn.t("bad_timezone", value=short(word)))]
    hhmm = push_time.strftime("%H:%M")
    next_push = next_local_time(push_time, tz, turn.now, weekdays)
    await core.store.update("chats", turn.chat["key"], subscribed=1, paused=0, push_time=hhmm, timezone=tz,
                            weekdays=weekdays, next_push_utc=utc_text(next_push), thread=turn.msg.chat.thread)
    when = f"{i18n.format_date(local_date(next_push, tz), turn.lang)} {hhmm}"
    days = turn.t("on_weekdays") if weekdays else ""
    return [Reply(turn.t("subscribed", time=hhmm, tz=tz, next=when, days=days))]


async def unsubscribe(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    if not turn.chat["subscribed"]:
        return [Reply(turn.t("not_subscribed"))]
    await core.store.update("chats", turn.chat["key"], subscribed=0, next_push_utc=None)
    return [Reply(turn.t("unsubscribed"))]


async def settings(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    chat, lang = turn.chat, turn.lang
    plan = core.bank.plans.get(chat["plan"] or "")
    topic = core.bank.topics.get(chat["topic"] or "")
    push = turn.t("push_on", time=chat["push_time"]) if chat["subscribed"] else turn.t("push_off")
    return [Reply(turn.t("settings", language=turn.t("lang_name"), push=push, tz=turn.tz,
                         plan=plan.name(lang) if plan else turn.t("none"),
                         topic=topic.name(lang) if topic else turn.t("none")))]


async def nudge(core: Core, turn: Turn, args: str) -> list[Reply]:
    """/nudge on|off: whether the daily question also says how many more reviews are due."""
    wanted = {"on": 1, "off": 0, "开": 1, "关": 0}.get(args.strip().lower())
    if wanted is None:
        return [Reply(turn.t("nudge_usage", state=turn.t("on" if turn.chat["nudge"] else "off")))]
    await core.store.update("chats", turn.chat["key"], nudge=wanted)
    return [Reply(turn.t("nudge_set", state=turn.t("on" if wanted else "off")))]


async def lang(core: Core, turn: Turn, args: str) -> list[Reply]:
    wanted = args.strip().lower()
    if wanted not in i18n.LANGS:
        return [Reply(turn.t("lang_bad"))]
    if turn.is_group:
        await core.store.update("chats", turn.chat["key"], lang=wanted)
    else:
        await core.store.update("users", turn.user["key"], lang=wanted)
    return [Reply(i18n.t("lang_set", wanted), lang=wanted)]


async def plan(core: Core, turn: Turn, args: str) -> list[Reply]:
    plans, bank = core.bank.plans, core.bank
    if not plans:
        return [Reply(turn.t("no_plans"))]
    wanted = args.strip().lower()
    if wanted in ("off", "none", "stop"):
        await core.store.update("chats", turn.chat["key"], plan=None, plan_started=None)
        return [Reply(turn.t("plan_off"))]
    buttons = tuple(row(Button(p.name(turn.lang), f"plan:{p.id}")) for p in plans.values())
    lines = "\n".join(turn.t("plan_line", title=p.name(turn.lang), id=p.id, weeks=len(p.weeks))
                      for p in plans.values())
    if not wanted:
        current = plans.get(turn.chat["plan"] or "")
        return [Reply(turn.t("plans", current=current.name(turn.lang) if current else turn.t("none"), lines=lines),
                      buttons)]
    chosen = plans.get(wanted)
    if chosen is None:
        return [Reply(turn.t("plan_unknown", value=short(wanted)) + "\n" + lines, buttons)]
    # A plan drives /next, so it replaces a single-topic focus.
    await core.store.update("chats", turn.chat["key"], plan=chosen.id, plan_started=utc_text(turn.now), topic=None)
    topics = turn.t("list_separator").join(bank.topics[s].name(turn.lang) for s in chosen.weeks[0] if s in bank.topics)
    return [Reply(turn.t("plan_set", title=chosen.name(turn.lang), weeks=len(chosen.weeks), topics=topics),
                  next_button(turn))]
