"""One learner across platforms: /link gives a one-time code in one private chat, /link CODE in a
private chat on another platform joins the two identities into one history; /unlink splits them
again from then on. Never from a group: a code shown there is a code everybody saw."""
from __future__ import annotations

import secrets
from datetime import timedelta

from .models import Reply
from .storage import utc_text
from .turn import Core, Turn

CODE_MINUTES = 10
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from one screen, typed on another
CODE_LENGTH = 8                                     # 32^8 ≈ 10^12 codes
FAILURES_PER_HOUR = 5                               # wrong codes a person may try before a pause


async def link(core: Core, turn: Turn, args: str) -> list[Reply]:
    if turn.is_group:
        return [Reply(turn.t("link_private_only"))]
    code = "".join(args.split()).upper()
    if not code:
        return [Reply(turn.t("link_code", code=await _new_code(core, turn), minutes=CODE_MINUTES))]
    me = turn.msg.user.key
    since = utc_text(turn.now - timedelta(hours=1))
    failures = await core.store.one("SELECT COUNT(*) AS n FROM link_failures WHERE user_key = ? AND at >= ?", me, since)
    if failures["n"] >= FAILURES_PER_HOUR:
        return [Reply(turn.t("link_too_many"))]
    found = await core.store.one("SELECT user_key, expires_at FROM link_codes WHERE code = ?", code)
    if found is None or found["expires_at"] < utc_text(turn.now):
        await core.store.write("INSERT INTO link_failures (user_key, at) VALUES (?, ?)", me, utc_text(turn.now))
        return [Reply(turn.t("link_bad_code"))]
    await core.store.write("DELETE FROM link_codes WHERE code = ?", code)  # single use
    learner = await _learner(core, found["user_key"])
    if learner == turn.user["key"]:
        return [Reply(turn.t("link_same"))]
    if found["user_key"].partition(":")[0] == turn.msg.user.platform:
        return [Reply(turn.t("link_other_platform"))]
    merged = await core.store.merge_learners(keep=learner, absorb=turn.user["key"], identity=me, now=turn.now)
    return [Reply(turn.t("link_done", answers=merged))]


async def unlink(core: Core, turn: Turn, args: str = "") -> list[Reply]:
    if turn.is_group:
        return [Reply(turn.t("link_private_only"))]
    me = turn.msg.user.key
    linked = await core.store.all("SELECT user_key FROM links WHERE learner_key = ? OR user_key = ?",
                                  turn.user["key"], me)
    if not linked:
        return [Reply(turn.t("unlink_none"))]
    # This identity studies on its own from now on; the history joined so far stays with the learner.
    if turn.user["key"] != me:
        await core.store.write("DELETE FROM links WHERE user_key = ?", me)
        await core.store.update("chats", turn.chat["key"], user_key=me)
    else:  # the learner's own identity: every identity joined to it goes its own way
        for row in linked:
            other = row["user_key"]  # its private chats are on its own platform (links are cross-platform)
            await core.store.write("UPDATE chats SET user_key = ? WHERE user_key = ? AND platform = ? AND is_group = 0",
                                   other, me, other.partition(":")[0])
        await core.store.write("DELETE FROM links WHERE learner_key = ?", me)
    return [Reply(turn.t("unlink_done"))]


async def _new_code(core: Core, turn: Turn) -> str:
    await core.store.write("DELETE FROM link_codes WHERE user_key = ? OR expires_at < ?", turn.user["key"],
                           utc_text(turn.now))
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    await core.store.write("INSERT INTO link_codes (code, user_key, expires_at) VALUES (?, ?, ?)", code,
                           turn.user["key"], utc_text(turn.now + timedelta(minutes=CODE_MINUTES)))
    return code


async def _learner(core: Core, user_key: str) -> str:
    row = await core.store.one("SELECT learner_key FROM links WHERE user_key = ?", user_key)
    return row["learner_key"] if row else user_key
