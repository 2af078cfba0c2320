"""The /stats picture: mastery bars in the reader's language when a font can draw it (English words
and ASCII slugs otherwise), beside a calendar of study days. Every test here passes the same way
whether or not this machine has a font with Chinese glyphs."""
from __future__ import annotations

import struct
import warnings
from collections import Counter
from datetime import date, datetime, timezone

import pytest

from bot import stats
from bot.content import load_bank
from bot.models import Topic

from .conftest import person, write_bank

TODAY = date(2026, 3, 4)  # a Wednesday
FAKE_CJK = "/nowhere/fake-cjk.ttf"


@pytest.fixture
def bank(tmp_path):
    return load_bank(write_bank(tmp_path / "content"))


@pytest.fixture
def fake_cjk_font(monkeypatch):
    """A font path the chart believes draws everything (its glyphs are never rendered here)."""
    real = stats._charmap
    monkeypatch.setattr(stats, "_charmap", lambda path: frozenset(range(0x20, 0x30000)) if path == FAKE_CJK else real(path))
    return FAKE_CJK


def rows(bank):
    return [(topic, 2, 1, len(topic.questions)) for topic in bank.topics.values()]


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def test_study_days_are_counted_in_the_learners_time_zone():
    late = datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc)  # 01:30 on 2 March in Shanghai
    assert stats.day_counts([late, late], "Asia/Shanghai") == Counter({date(2026, 3, 2): 2})
    assert stats.day_counts([late], "Europe/London") == Counter({date(2026, 3, 1): 1})


def test_the_calendar_is_twelve_weeks_of_monday_to_sunday_ending_today():
    counts = Counter({date(2026, 3, 2): 3, TODAY: 1, date(2025, 12, 15): 5, date(2025, 12, 14): 9})
    mondays, grid = stats.calendar_grid(counts, TODAY)
    assert len(mondays) == 12 and mondays[-1] == date(2026, 3, 2) and mondays[0] == date(2025, 12, 15)
    assert all(monday.weekday() == 0 for monday in mondays)
    assert len(grid) == 7 and all(len(row) == 12 for row in grid)
    assert grid[0][-1] == 3 and grid[2][-1] == 1 and grid[1][-1] == 0   # Monday, Wednesday, Tuesday
    assert grid[3][-1] is None and grid[6][-1] is None                 # after today: no square
    assert grid[0][0] == 5 and sum(c or 0 for row in grid for c in row) == 9  # 14 December is before it


def test_without_a_chinese_font_a_chinese_reader_gets_english_words_and_slugs(bank):
    plan = stats.chart_plan(list(bank.topics.values()), "zh", None)
    assert plan.lang == "en" and plan.labels == ("attention", "rag", "rlhf")
    assert plan.texts["chart_title"] == "Mastery by topic" and plan.weekdays[0] == "Mon"
    assert all(label.isascii() for label in plan.labels + tuple(plan.texts.values()))


def test_with_a_chinese_font_a_chinese_reader_gets_chinese(bank, fake_cjk_font):
    plan = stats.chart_plan(list(bank.topics.values()), "zh", fake_cjk_font)
    assert plan.lang == "zh" and plan.labels == ("注意力机制", "检索增强生成", "人类反馈强化学习")
    assert plan.texts["chart_title"] == "各主题掌握情况" and plan.months[2] == "3月" and plan.weekdays[0] == "周一"


def test_an_english_reader_gets_english_names_shortened_to_fit(bank):
    plan = stats.chart_plan(list(bank.topics.values()), "en", None)
    assert plan.lang == "en" and plan.labels[:2] == ("Attention Mechanisms", "Retrieval-Augmented Generation"[:25] + "…")
    assert len(plan.labels[2]) == stats.LABEL_CHARS


def test_a_name_no_font_can_draw_falls_back_to_its_slug():
    plan = stats.chart_plan([Topic("rag", "检索", "Поиск и генерация")], "en", None)
    assert plan.labels == ("Поиск и генерация",)                      # matplotlib's own font has Cyrillic
    assert stats.chart_plan([Topic("rag", "检索", "检索 RAG")], "en", None).labels == ("rag",)


def test_the_font_found_on_this_machine_draws_chinese_or_there_is_none():
    stats.cjk_font.cache_clear()
    try:
        font = stats.cjk_font()
        assert font is None or stats.covers(font, stats.CJK_SAMPLE)
    finally:
        stats.cjk_font.cache_clear()


def test_a_configured_font_that_cannot_draw_chinese_is_passed_over(monkeypatch):
    from matplotlib import font_manager
    latin = font_manager.findfont("DejaVu Sans")
    monkeypatch.setenv(stats.FONT_ENV, latin)
    stats.cjk_font.cache_clear()
    try:
        assert stats.cjk_font() != latin
    finally:
        stats.cjk_font.cache_clear()


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("font", ["none", "found"])
def test_the_picture_draws_without_a_missing_glyph(bank, lang, font):
    chosen = stats.cjk_font() if font == "found" else None
    days = Counter({TODAY: 2, date(2026, 2, 20): 7, date(2026, 1, 5): 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = stats.mastery_chart(rows(bank), days, TODAY, lang, chosen)
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]
    width, height = png_size(png)
    assert width == 1210 and 300 < height < 1200 and len(png) > 10_000


def test_a_big_bank_gets_a_taller_picture():
    many = [(Topic(f"t{i}", f"主题{i}", f"Topic {i}"), i, i // 2, 30) for i in range(30)]
    small, _ = png_size(stats.mastery_chart(many[:3], Counter(), TODAY, "zh", None))
    _, tall = png_size(stats.mastery_chart(many, Counter(), TODAY, "zh", None))
    assert small == 1210 and tall > 1000


async def test_stats_replies_with_the_picture(engine):
    p = person(engine)
    await p.say("/topic rag")
    [reference] = await p.say("先检索")
    await p.press([b.data for row in reference.buttons for b in row][2])
    [reply] = await p.say("/stats")
    assert "已作答 1 次" in reply.text and png_size(reply.image)[0] == 1210
