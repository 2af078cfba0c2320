"""The tiny markup replies and the bank are written in: **bold**, `code`, fenced ``` code blocks,
and "- " list lines. Adapters turn it into their platform's format from these segments, so no
adapter parses text. What must stay hidden (a group's reference) is not markup: it is a structural
part of a Reply (see models.Reply.hidden), so nothing written inside it can end it early."""
from __future__ import annotations

import re
from typing import Literal

Style = Literal["plain", "bold", "code", "pre"]
# A fence opens at the start of a line and closes on a line of its own; code spans never cross lines.
_TOKEN = re.compile(r"^```[\w+-]*\n(.*?)\n```[ \t]*$|`([^`\n]+)`|\*\*(.+?)\*\*", re.S | re.M)


def segments(text: str) -> list[tuple[Style, str]]:
    out: list[tuple[Style, str]] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            out.append(("plain", text[position:match.start()]))
        pre, code, bold = match.groups()
        out.append(("pre", pre) if pre is not None else ("code", code) if code is not None else ("bold", bold))
        position = match.end()
    if position < len(text):
        out.append(("plain", text[position:]))
    return out


def plain(text: str) -> str:
    return "".join(part for _, part in segments(text))


def problems(text: str) -> list[str]:
    """Why `text` would not render as its writer meant: markup left over after parsing (an
    unbalanced ** or `, a fence the renderer does not read) or a `||` outside a code block, which
    chat apps and older versions of this bot read as a spoiler (write a norm as ‖x‖)."""
    found = []
    for style, part in segments(text):
        if style == "bold" and ("`" in part or "\n\n" in part):
            found.append("bold text spans a code span or a paragraph")
        if style in ("plain", "code", "bold") and "||" in part:
            found.append("'||' outside a code block (write a norm as ‖x‖, a divergence as KL(p‖q))")
        if style != "plain":
            continue
        if "```" in part:
            found.append("a ``` fence that is not a block on lines of its own")
        elif "`" in part:
            found.append("an unbalanced ` (code span)")
        if "**" in part:
            found.append("an unbalanced ** (bold)")
    return list(dict.fromkeys(found))


def point_line(text: str, mark: bool | None) -> str:
    """A key point as a list line: ✓ covered, ✗ missed, - not graded."""
    return f"{'✓' if mark else '✗' if mark is False else '-'} {text}"


def section_markup(section) -> str:
    """A Section's text and checklist as markup lines (its `hidden` flag is the adapter's business)."""
    lines = [section.text] if section.text else []
    lines += [point_line(p.text, p.mark) for p in section.points]
    return "\n".join(lines)
