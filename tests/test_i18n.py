"""Every string exists in both languages with the same placeholders, and every command is in the menu."""
from __future__ import annotations

import string

from bot.engine import COMMANDS
from bot.i18n import COMMAND_MENU, LANGS, MESSAGES


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_both_languages_with_the_same_placeholders():
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGS), key
        if key != "date":  # "3月2日" and "Mar 2" need different parts of a date
            assert placeholders(texts["zh"]) == placeholders(texts["en"]), key


def test_the_command_menu_lists_every_engine_command_in_both_languages():
    for lang in LANGS:
        assert {name for name, _ in COMMAND_MENU[lang]} == set(COMMANDS), lang
