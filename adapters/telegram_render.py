"""Replies → Telegram HTML: escaped text, styles as tags, hidden sections as spoilers, long
texts cut into messages at line breaks, buttons as an inline keyboard."""
from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.markup import section_markup, segments
from bot.models import Reply

MAX_MESSAGE = 4096          # characters of visible text (after HTML parsing), counted in UTF-16 units
MAX_CAPTION = 1024
_TAGS = {"bold": ("<b>", "</b>"), "code": ("<code>", "</code>"), "pre": ("<pre>", "</pre>"), "plain": ("", "")}


def units(text: str) -> int:
    """Telegram measures text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _spans(text: str, limit: int) -> list[tuple[int, int]]:
    """Cut points of the visible text into pieces of at most `limit` units: at a line break where
    possible, else at a space, else anywhere. The break character itself is dropped."""
    if units(text) <= limit:
        return [(0, len(text))] if text else []
    spans, start, n = [], 0, len(text)
    while start < n:
        end, used = start, 0
        while end < n and used + units(text[end]) <= limit:
            used += units(text[end])
            end += 1
        resume = end
        if end < n:
            cut = text.rfind("\n", start, end + 1)
            if cut <= start:
                cut = text.rfind(" ", start, end + 1)
            if cut > start:
                end, resume = cut, cut + 1
        spans.append((start, end))
        start = resume
    return spans


def _runs(reply: Reply) -> list[tuple[str, str, bool]]:
    """A reply as (style, text, hidden) runs: its text, then each section (a hidden one after its
    title, which stays visible)."""
    runs: list[tuple[str, str, bool]] = []

    def add(text: str, hidden: bool = False) -> None:
        runs.extend((style, part, hidden) for style, part in segments(text) if part)

    add(reply.text)
    for section in reply.sections:
        body = section_markup(section)
        if not body:
            continue
        if runs:
            runs.append(("plain", "\n\n", False))
        if section.hidden and section.title:
            runs += [("bold", section.title, False), ("plain", "\n", False)]
        add(body, section.hidden)
    return runs


def render(reply: Reply | str, limit: int = MAX_MESSAGE) -> list[str]:
    """A reply → Telegram HTML messages. Every piece of text is escaped; hidden sections become one
    spoiler each (anything inside renders normally); a long text becomes several messages cut at
    line breaks, each with its own complete tags (a style or spoiler that runs over a cut is closed
    before it and opened again after it)."""
    runs = _runs(Reply(reply) if isinstance(reply, str) else reply)
    visible = "".join(part for _, part, _ in runs)
    chunks = []
    for start, end in _spans(visible, limit):
        out, position, hidden = [], 0, False
        for style, part, secret in runs:
            lo, hi = max(start, position), min(end, position + len(part))
            if lo < hi:
                if secret != hidden:
                    out.append("<tg-spoiler>" if secret else "</tg-spoiler>")
                    hidden = secret
                opening, closing = _TAGS[style]
                out.append(opening + html.escape(part[lo - position:hi - position], quote=False) + closing)
            position += len(part)
        if hidden:
            out.append("</tg-spoiler>")
        if visible[start:end].strip():
            chunks.append("".join(out))
    return chunks


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                                 for row in reply.buttons if row])
