"""`quizbot backup DEST`: a consistent copy of the live database, taken while the bot runs.

SQLite's online backup API copies the database as one read transaction: in WAL mode that is a
snapshot which never blocks the bot's writes. The copy is written beside its target under a
temporary name, switched to a single self-contained file (no -wal), checked with
`PRAGMA integrity_check` and only then renamed into place, so a half-written backup never looks
like a good one. DEST may be a folder: the copy is then named by the time (quizbot-YYYYMMDDTHHMMSSZ.db)
and `keep` removes all but the newest that many there.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

PREFIX = "quizbot-"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    schema_version: int
    removed: tuple[Path, ...] = ()


def backup(source: str | Path, dest: str | Path, keep: int | None = None,
           now: datetime | None = None) -> BackupResult:
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    folder_given = str(dest).endswith(("/", os.sep))  # Path() would drop the slash
    dest = Path(dest).expanduser()
    folder_given = folder_given or dest.is_dir()
    if folder_given:
        dest.mkdir(parents=True, exist_ok=True)
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        target = dest / f"{PREFIX}{stamp}.db"
    else:
        if keep is not None:
            raise BackupError("--keep needs DEST to be a folder")
        if not dest.parent.is_dir():
            raise BackupError(f"the folder {dest.parent} does not exist")
        target = dest
    target = target.resolve()
    if target == source:
        raise BackupError("DEST is the live database itself")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        version = _copy(source, partial)
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as e:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} to {target} failed: {e}") from e
    removed = _rotate(target.parent, keep) if folder_given and keep else ()
    return BackupResult(target, target.stat().st_size, version, removed)


def _copy(source: Path, partial: Path) -> int:
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        partial.unlink(missing_ok=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode = DELETE")
            verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"the copy fails its integrity check: {verdict}")
            return dst.execute("PRAGMA user_version").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()


def _rotate(folder: Path, keep: int) -> tuple[Path, ...]:
    """Remove all but the newest `keep` backups this command made in `folder` (names sort by time)."""
    made = sorted(p for p in folder.glob(f"{PREFIX}*.db") if p.is_file())
    old = made[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
    return tuple(old)
