"""Replies → Feishu interactive cards (card JSON 1.0), and back-references for in-place updates.

Every reply is a card, so every message the bot sends can later be patched (a group's answer
board) and carries its buttons as card actions whose `value` is {"data": <button data>}: only
what the bot needs back. Facts about the chat and the presser come from the event itself.

Markup (bot.markup.segments): bold → **x**, code → `x`, code blocks → fenced blocks, plain text
escaped for lark_md. Sections follow the text, a checklist as ✓/✗ lines.
Hidden sections: Feishu has no spoiler syntax. One becomes a collapsed `collapsible_panel` titled
by the section ("看答案 / Show answer"): expanding it is local to the person who taps it, so one
member opening the reference answer on a group's shared board does not reveal it to the others
(a card update on press would change the shared card for everybody, and a toast is too short for
an answer). Clients older than Feishu 7.9 show an "upgrade to view" placeholder instead.
"""
from __future__ import annotations

import re

from bot.i18n import t
from bot.markup import section_markup, segments
from bot.models import Reply

_ESCAPES = {"*": "&#42;", "~": "&#126;", "<": "&#60;", ">": "&#62;", "[": "&#91;", "]": "&#93;", "`": "&#96;"}
_ESCAPE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
FENCE = "`" * 3


def escape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m[0]], text)


def _markdown(style: str, text: str) -> str:
    if style == "bold":
        return f"**{escape(text)}**"
    if style == "code":
        return "`" + text.replace("`", "'") + "`"
    if style == "pre":
        return f"\n{FENCE}\n" + text.replace(FENCE, "'''") + f"\n{FENCE}\n"
    return escape(text)


def lark_md(text: str) -> str:
    return "".join(_markdown(style, part) for style, part in segments(text)).strip("\n")


def guess_lang(text: str) -> str:
    """The language of a reply's visible text: the card's own labels follow it."""
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if cjk * 3 >= latin else "en"


def _div(content: str) -> dict:
    return {"tag": "div", "text": {"tag": "lark_md", "content": content}}


def _panel(content: str, title: str) -> dict:
    return {"tag": "collapsible_panel", "expanded": False,
            "header": {"title": {"tag": "plain_text", "content": title}},
            "border": {"color": "grey", "corner_radius": "5px"},
            "elements": [_div(content)]}


def render(reply: Reply, chosen: str | None = None, image_key: str | None = None) -> dict:
    """The card for a reply. `chosen`: the label of the button pressed on it (a private chat's
    card after a press): its buttons are dropped and "✓ label" is appended. `image_key`: the
    uploaded `Reply.image`, shown above the text."""
    text = reply.text
    header = None
    first, _, rest = text.partition("\n")
    parts = segments(first)
    if len(parts) == 1 and parts[0][0] == "bold" and (rest.strip() or reply.sections):
        header = {"title": {"tag": "plain_text", "content": parts[0][1]}, "template": "blue"}
        text = rest
    lang = reply.lang or guess_lang(reply.visible_text)
    elements: list[dict] = []
    if image_key:
        elements.append({"tag": "img", "img_key": image_key, "alt": {"tag": "plain_text", "content": ""}})
    if lark_md(text).strip():
        elements.append(_div(lark_md(text)))
    for section in reply.sections:
        content = lark_md(section_markup(section))
        if content.strip():
            elements.append(_panel(content, section.title or t("reveal_label", lang)) if section.hidden
                            else _div(content))
    if chosen is not None:
        elements.append(_div(f"✓ **{escape(chosen)}**"))
    else:
        for row in reply.buttons:
            if row:
                elements.append({"tag": "action", "actions": [
                    {"tag": "button", "text": {"tag": "plain_text", "content": b.label},
                     "type": "primary" if (i == 0 and row is reply.buttons[0]) else "default",
                     "value": {"data": b.data}} for i, b in enumerate(row)]})
    if not elements:
        elements.append(_div(escape(reply.text) or " "))
    card: dict = {"config": {"wide_screen_mode": True, "update_multi": True}, "elements": elements}
    if header:
        card["header"] = header
    return card


def label_of(reply: Reply, data: str) -> str | None:
    for row in reply.buttons:
        for button in row:
            if button.data == data:
                return button.label
    return None
