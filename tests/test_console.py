"""The console adapter as a person uses it: `quizbot run` in a terminal, typing through stdin."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import write_bank

ROOT = Path(__file__).resolve().parent.parent


def session(cwd: Path, lines: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quizbot.cli", "run", *args], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=cwd, timeout=60)


def test_a_whole_study_session_in_the_terminal(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = session(tmp_path, ["/start", "/topic rag", "先检索相关文档，再把它们拼进提示词生成", "3", "/stats"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[1] 下一题   [2] 选主题" in out                           # buttons become numbered choices
    assert "什么是检索增强生成？" in out and "[1] 看答案   [2] 跳过" in out
    assert "参考答案" in out and "[3] 答对" in out
    assert "已记录：答对" in out                                     # typing 3 pressed 答对
    assert "已作答 1 次" in out and "连续学习 1 天" in out
    assert "**" not in out                                           # markup is rendered, not shown
    assert "图表已保存到 quizbot-chart.png" in out                    # the /stats chart, as a file
    assert (tmp_path / "quizbot-chart.png").read_bytes().startswith(b"\x89PNG")
    db = sqlite3.connect(tmp_path / "quizbot.db")                    # the embedded SQLite file, in the cwd
    assert db.execute("SELECT question_id, rating FROM answers").fetchall() == [("rag-001", 3)]


def test_progress_survives_a_restart(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    session(tmp_path, ["/lang en", "/topic rag", "my answer", "4"])
    done = session(tmp_path, ["/history"])
    assert "Your latest answers" in done.stdout and "Easy" in done.stdout


def test_no_config_starts_the_console_on_the_shipped_bank(tmp_path):
    done = session(tmp_path, ["/help", "/topics"])
    assert done.returncode == 0, done.stderr
    assert "/subscribe" in done.stdout and "全部主题" in done.stdout
    assert (tmp_path / "quizbot.db").exists()


def test_an_unwritable_database_path_is_a_clear_error(tmp_path):
    (tmp_path / "config.toml").write_text('[storage]\npath = "missing-folder/q.db"\n', encoding="utf-8")
    done = session(tmp_path, ["/start"])
    assert done.returncode == 3 and "cannot use the database" in done.stderr and "Traceback" not in done.stderr


def test_the_daily_question_reaches_the_console_and_push_commands_show_it(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    session(tmp_path, ["/subscribe 09:00 Asia/Shanghai"])
    with sqlite3.connect(tmp_path / "quizbot.db") as db:  # as if 09:00 had passed a few minutes ago
        db.execute("UPDATE chats SET next_push_utc = strftime('%Y-%m-%dT%H:%M:00+00:00', 'now', '-5 minutes'), "
                   "push_time = strftime('%H:%M', 'now', '-5 minutes', '+8 hours')")
    dry = subprocess.run([sys.executable, "-m", "quizbot.cli", "push", "--dry-run"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert dry.returncode == 0 and dry.stdout.startswith("console:local") and "attention-001" in dry.stdout
    done = session(tmp_path, ["/stats"])  # the start-up tick catches up on the missed push
    assert "每日一题" in done.stdout and "什么是自注意力？" in done.stdout
    queued = subprocess.run([sys.executable, "-m", "quizbot.cli", "push", "--now", "console:local"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert queued.returncode == 0 and "queued" in queued.stdout


def raw_session(cwd: Path, data: bytes, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "quizbot.cli", "run"], input=data, capture_output=True, cwd=cwd,
                          timeout=60, env={**os.environ, **(env or {})})


def test_a_line_that_is_not_utf8_costs_its_characters_not_the_answer(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = raw_session(tmp_path, "/topic rag\n".encode() + b"\xff\xfe retrieval \xc3\n3\n/history\n")
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(tmp_path / "quizbot.db")
    [(text, rating)] = db.execute("SELECT text, rating FROM answers").fetchall()
    assert "retrieval" in text and "\ufffd" in text and rating == 3    # the next line was the rating, as meant


def test_a_terminal_that_cannot_show_chinese_still_runs_the_session(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = raw_session(tmp_path, "/topic rag\nmy answer\n3\n".encode(), env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert b"[3] ??" in done.stdout                                     # 答对, as the terminal can show it
    assert sqlite3.connect(tmp_path / "quizbot.db").execute("SELECT rating FROM answers").fetchall() == [(3,)]


def test_a_chart_that_cannot_be_saved_costs_the_chart_not_the_session(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    (tmp_path / "quizbot-chart.png").mkdir()                           # not a file: it cannot be written
    done = session(tmp_path, ["/topic rag", "答案", "3", "/stats", "/help"])
    assert done.returncode == 0, done.stderr
    assert "无法保存 quizbot-chart.png" in done.stdout and "已作答 1 次" in done.stdout
    assert "/subscribe" in done.stdout                                  # the next command was still answered


def test_an_empty_input_stops_cleanly_and_says_why(tmp_path):
    folder = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{folder}"\n', encoding="utf-8")
    done = raw_session(tmp_path, b"")  # as in a container started without a token
    assert done.returncode == 0
    err = done.stderr.decode()
    assert "input ended before its first line" in err and "QUIZBOT_TELEGRAM_TOKEN" in err
    assert "Traceback" not in err and "ERROR" not in err                  # jobs under way finish, not crash
