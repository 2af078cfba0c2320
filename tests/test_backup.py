"""`quizbot backup DEST`: a consistent copy of a database the bot is writing, and a restore from it."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from bot.backup import BackupError, backup
from bot.storage import SCHEMA_VERSION, Storage

from .conftest import write_bank


def quizbot(cwd, *args, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quizbot.cli", *args], input=input, capture_output=True, text=True,
                          cwd=cwd, timeout=60)


async def test_a_backup_taken_mid_write_holds_what_was_committed_and_nothing_half_done(tmp_path, engine):
    from .conftest import person
    ada = person(engine, "1")
    await ada.say("/topic rag")
    await ada.say("先检索，再生成")
    writer = sqlite3.connect(tmp_path / "quizbot.db", isolation_level=None)   # another process, mid-transaction
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO users (key, name, created_at) VALUES ('test:2', 'half-done', '2026-03-02')")

    done = backup(tmp_path / "quizbot.db", tmp_path / "copy.db")
    writer.execute("COMMIT")

    assert done.path == tmp_path / "copy.db" and done.schema_version == SCHEMA_VERSION and done.bytes > 0
    copy = sqlite3.connect(done.path)
    assert copy.execute("SELECT text FROM answers").fetchall() == [("先检索，再生成",)]
    assert copy.execute("SELECT COUNT(*) FROM users WHERE key = 'test:2'").fetchone()[0] == 0
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"     # one self-contained file
    assert not (tmp_path / "copy.db-wal").exists()
    copy.close()
    reopened = await Storage.open(done.path)                                  # usable as the bot's database
    assert await reopened.version() == SCHEMA_VERSION
    await reopened.close()


def test_a_folder_gets_time_stamped_copies_and_keep_removes_the_oldest(tmp_path):
    sqlite3.connect(tmp_path / "quizbot.db").execute("CREATE TABLE t (x)").connection.commit()
    start = datetime(2026, 3, 2, 3, 30, tzinfo=timezone.utc)
    for night in range(4):
        done = backup(tmp_path / "quizbot.db", f"{tmp_path}/backups/", keep=2, now=start + timedelta(days=night))
    names = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert names == ["quizbot-20260304T033000Z.db", "quizbot-20260305T033000Z.db"]
    assert [p.name for p in done.removed] == ["quizbot-20260303T033000Z.db"]


def test_nothing_is_created_or_overwritten_when_a_backup_cannot_be_made(tmp_path):
    with pytest.raises(BackupError, match="no database at"):
        backup(tmp_path / "missing.db", tmp_path / "copy.db")
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "copy.db").exists()
    sqlite3.connect(tmp_path / "quizbot.db").close()
    with pytest.raises(BackupError, match="is the live database itself"):
        backup(tmp_path / "quizbot.db", tmp_path / "quizbot.db")
    with pytest.raises(BackupError, match="does not exist"):
        backup(tmp_path / "quizbot.db", tmp_path / "no-folder" / "copy.db")
    assert not list(tmp_path.glob(".*partial*"))


def test_back_up_then_restore_through_the_command_line(tmp_path):
    bank = write_bank(tmp_path / "content")
    (tmp_path / "config.toml").write_text(f'[bot]\ncontent_dir = "{bank}"\n', encoding="utf-8")
    quizbot(tmp_path, "run", input="/lang en\n/topic rag\nfirst answer\n3\n")
    done = quizbot(tmp_path, "backup", "backups/", "--keep", "7")
    assert done.returncode == 0 and done.stdout.startswith("backed up quizbot.db to ") and "integrity ok" in done.stdout
    [copy] = (tmp_path / "backups").glob("quizbot-*.db")

    quizbot(tmp_path, "run", input="/topic attention\nsecond answer\n2\n")
    assert "Hard" in quizbot(tmp_path, "run", input="/history\n").stdout

    for suffix in ("", "-wal", "-shm"):                       # the restore of docs/deploy.md
        (tmp_path / f"quizbot.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "quizbot.db").write_bytes(copy.read_bytes())
    history = quizbot(tmp_path, "run", input="/history\n").stdout
    assert "Good" in history and "Hard" not in history       # back to the night of the backup

    missing = quizbot(tmp_path, "backup", "x.db", "--config", str(tmp_path / "other.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "other.toml").write_text('[storage]\npath = "none.db"\n', encoding="utf-8")
    missing = quizbot(tmp_path, "backup", "x.db", "--config", str(tmp_path / "other.toml"))
    assert missing.returncode == 3 and "no database at" in missing.stderr and not (tmp_path / "none.db").exists()
