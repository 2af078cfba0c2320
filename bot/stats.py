"""Study statistics: day streaks in the user's time zone, and the /stats picture: mastery by topic
beside a calendar of study days.

The picture speaks the reader's language when it can: Chinese labels need a font with CJK glyphs,
which matplotlib does not ship, so one is looked for on the machine at run time (`cjk_font`:
QUIZBOT_CHART_FONT, well-known CJK families matplotlib knows, then fontconfig). Without one, a
Chinese reader's chart is drawn in English with the topics' ASCII slugs, never as empty boxes.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence

from . import i18n
from .models import Topic
from .timeutil import local_date

log = logging.getLogger(__name__)
CALENDAR_WEEKS = 12
FONT_ENV = "QUIZBOT_CHART_FONT"  # a font file to draw Chinese with, for machines where none is found
CJK_SAMPLE = "各主题掌握情况近周学习日历题数已答检索增强生成注意力机制微调推理"
# Families that draw Simplified Chinese, best first; matplotlib lists them under these names.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Sarasa Gothic SC",
                "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei",
                "SimHei", "Heiti SC", "Droid Sans Fallback", "Noto Sans CJK JP", "Noto Sans CJK TC", "AR PL UMing CN")
LABEL_CHARS = 26      # longer topic names are shortened on the chart
CALENDAR_LEVELS = ((0, "#ebedf0", "0"), (1, "#9be9a8", "1"), (2, "#40c463", "2–3"), (4, "#30a14e", "4–6"),
                   (7, "#216e39", "7+"))  # (answers from, colour, legend)


def streak(times: list[datetime], now: datetime, tz: str) -> int:
    """Days in a row with at least one answer, ending today (or yesterday, if today has none yet)."""
    days = {local_date(moment, tz) for moment in times}
    day = local_date(now, tz)
    if day not in days:
        day -= timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


def day_counts(times: Iterable[datetime], tz: str) -> Counter:
    """Answers per local day."""
    return Counter(local_date(moment, tz) for moment in times)


def calendar_grid(counts: Counter, today: date, weeks: int = CALENDAR_WEEKS) -> tuple[list[date], list[list[int | None]]]:
    """The last `weeks` weeks, Monday to Sunday: (each column's Monday, rows[weekday][week] =
    answers that day, None after today)."""
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    mondays = [first + timedelta(weeks=w) for w in range(weeks)]
    rows = [[counts.get(monday + timedelta(days=d), 0) if monday + timedelta(days=d) <= today else None
             for monday in mondays] for d in range(7)]
    return mondays, rows


# --- fonts ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A font file on this machine that draws Chinese, or None."""
    candidates = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []
    try:
        from matplotlib import font_manager
        known = {entry.name: entry.fname for entry in font_manager.fontManager.ttflist}
        candidates += [known[name] for name in CJK_FAMILIES if name in known]
    except Exception as e:  # a broken font cache must not cost the chart
        log.warning("chart: cannot list matplotlib's fonts: %s", e)
    candidates += _fontconfig_cjk()  # fonts installed after matplotlib built its font cache
    for path in dict.fromkeys(candidates):
        if covers(path, CJK_SAMPLE):
            log.info("chart: drawing Chinese with %s", path)
            return path
    log.info("chart: no font with Chinese glyphs found (set %s to a font file): Chinese charts use English and slugs",
             FONT_ENV)
    return None


def _fontconfig_cjk() -> list[str]:
    if not shutil.which("fc-list"):
        return []
    try:
        found = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    paths = sorted({line.split(":")[0].strip() for line in found.stdout.splitlines() if line.strip()})
    return [p for p in paths if p.lower().endswith((".ttf", ".otf", ".ttc"))]


@functools.lru_cache(maxsize=32)
def _charmap(path: str) -> frozenset[int]:
    try:
        from matplotlib import ft2font
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except Exception:  # missing, unreadable, or not a font
        return frozenset()


def covers(path: str | None, text: str) -> bool:
    """Whether the font file has a glyph for every character of `text` (spaces aside)."""
    if not path:
        return False
    glyphs = _charmap(path)
    return all(ord(c) in glyphs for c in text if not c.isspace())


@functools.lru_cache(maxsize=1)
def _default_font() -> str | None:
    try:
        from matplotlib import font_manager
        return font_manager.findfont("DejaVu Sans", fallback_to_default=True)
    except Exception:
        return None


def drawable(text: str, font: str | None) -> bool:
    """Whether the chart can draw `text`: each character with the CJK font or matplotlib's own."""
    if text.isascii():
        return True
    default = _default_font()
    return all(covers(font, c) or covers(default, c) for c in text if not c.isspace())


@functools.lru_cache(maxsize=4)
def _registered(path: str) -> str | None:
    """The family name of a font file, registered with matplotlib once (per process)."""
    try:
        from matplotlib.font_manager import FontProperties, fontManager
        fontManager.addfont(path)
        return FontProperties(fname=path).get_name()
    except Exception as e:
        log.warning("chart: cannot use the font %s: %s", path, e)
        return None


# --- the picture ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChartPlan:
    """What the picture says, decided before drawing: its language and every label."""

    lang: str
    labels: tuple[str, ...]
    texts: dict[str, str]
    weekdays: tuple[str, ...]
    months: tuple[str, ...]


def chart_plan(topics: Sequence[Topic], lang: str, font: str | None) -> ChartPlan:
    """The reader's language when the fonts can draw it; else English words with the topics'
    ASCII slugs. Each topic goes by its name in the reader's language, or by its slug where that
    name cannot be drawn."""
    def words(key: str, speak: str) -> str:
        return i18n.t(key, speak, weeks=CALENDAR_WEEKS, answers="{answers}")  # answers: filled in when drawn
    keys = ("chart_title", "chart_questions", "chart_answered", "chart_mastered", "chart_calendar",
            "chart_weekdays", "chart_months")
    speak = lang if all(drawable(words(k, lang), font) for k in keys) else "en"
    labels = []
    for topic in topics:
        name = _shorten(topic.name(speak))
        labels.append(name if speak == lang and drawable(name, font) else topic.slug)
    return ChartPlan(speak, tuple(labels), {k: words(k, speak) for k in keys[:5]},
                     tuple(words("chart_weekdays", speak).split()), tuple(words("chart_months", speak).split()))


def _shorten(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1].rstrip() + "…"


def mastery_chart(rows: Sequence[tuple[Topic, int, int, int]], days: Counter, today: date, lang: str,
                  font: str | None) -> bytes:
    """The /stats picture as PNG: a horizontal bar per topic (questions, answered, mastered) and,
    beside it, a calendar of the last weeks' study days. `rows` are (topic, answered, mastered,
    total) in the bank's order; `days` counts answers per local day; `font` draws Chinese (or None)."""
    from matplotlib.figure import Figure  # imported on first use: it costs ~1 s and ~40 MB
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    plan = chart_plan([topic for topic, *_ in rows], lang, font)
    family = ([_registered(font)] if font and _registered(font) else []) + ["DejaVu Sans"]

    def text(size: float) -> FontProperties:
        return FontProperties(family=family, size=size)

    bars = list(reversed(rows))  # matplotlib draws bottom-up; keep the bank's order top-down
    labels = list(reversed(plan.labels))
    height = max(0.32 * len(bars) + 1.6, 3.4)
    figure = Figure(figsize=(11, height), dpi=110)
    grid = figure.add_gridspec(1, 2, width_ratios=(3, 2), wspace=0.08)
    axes = figure.add_subplot(grid[0, 0])
    positions = range(len(bars))
    axes.barh(positions, [total for *_, total in bars], color="#e5e7eb", label=plan.texts["chart_questions"])
    axes.barh(positions, [answered for _, answered, _, _ in bars], color="#60a5fa", label=plan.texts["chart_answered"])
    axes.barh(positions, [mastered for _, _, mastered, _ in bars], color="#16a34a", label=plan.texts["chart_mastered"])
    axes.set_yticks(list(positions), labels, fontproperties=text(8))
    axes.tick_params(axis="x", labelsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # question counts
    axes.set_ylim(-0.6, len(bars) - 0.4)
    axes.set_title(plan.texts["chart_title"], fontproperties=text(10), pad=20)
    axes.legend(prop=text(7), loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False,
                handlelength=1, handleheight=1)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    _calendar(figure.add_subplot(grid[0, 1]), days, today, plan, text, Patch)
    figure.subplots_adjust(left=0.2, right=0.97, top=1 - 0.75 / height, bottom=0.45 / height)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _calendar(axes, days: Counter, today: date, plan: ChartPlan, text, Patch) -> None:
    """GitHub-style squares: a column per week, Monday on top, darker for more answers."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    mondays, rows = calendar_grid(days, today)
    cells = [[float("nan") if count is None else count for count in row] for row in rows]
    colours = ListedColormap([colour for _, colour, _ in CALENDAR_LEVELS]).with_extremes(bad="#ffffff")  # after today
    bounds = [start for start, _, _ in CALENDAR_LEVELS] + [10 ** 6]
    axes.pcolormesh(cells, cmap=colours, norm=BoundaryNorm(bounds, colours.N), edgecolors="white", linewidth=2)
    axes.set_aspect("equal")
    axes.set_anchor("N")
    axes.invert_yaxis()
    axes.set_yticks([0.5, 2.5, 4.5], [plan.weekdays[0], plan.weekdays[2], plan.weekdays[4]], fontproperties=text(7))
    ticks, names, month = [], [], None
    for column, monday in enumerate(mondays):
        if monday.month != month:
            month = monday.month
            ticks.append(column + 0.5)
            names.append(plan.months[month - 1])
    axes.set_xticks(ticks, names, fontproperties=text(7))
    axes.xaxis.tick_top()
    axes.tick_params(length=0)
    for side in axes.spines.values():
        side.set_visible(False)
    axes.set_title(plan.texts["chart_calendar"].format(answers=sum(c for row in rows for c in row if c)),
                   fontproperties=text(10), pad=20)
    axes.legend(handles=[Patch(color=colour, label=label) for _, colour, label in CALENDAR_LEVELS], prop=text(7),
                loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(CALENDAR_LEVELS), frameon=False,
                handlelength=1, handleheight=1, columnspacing=1)
