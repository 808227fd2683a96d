"""``callrouter cdr backup OUT``: a consistent copy of the live call-record database.

Copying the file with ``cp`` while the engine runs loses rows: in WAL mode the newest commits
live in ``-wal`` until a checkpoint, and a copy taken mid-write can be torn. This uses SQLite's
online backup API instead: the whole copy is taken in one step under one read transaction, so it
is a snapshot of every transaction committed when it began, and the engine keeps writing
meanwhile (WAL readers never block the writer).

The copy is written beside ``OUT`` under a temporary name, checked with ``PRAGMA
integrity_check``, switched to rollback-journal mode (one self-contained file, no ``-wal`` to
carry along) and only then renamed to ``OUT``. An existing ``OUT`` is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

EXIT_OK = 0
EXIT_FAILED = 1
BUSY_TIMEOUT_SECONDS = 10.0
SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite may keep beside a database file


class BackupError(Exception):
    """The backup was not made (or not kept); the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What was copied: rows per table, in the order SQLite lists the tables."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def add_backup_command(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    add_db: Callable[[argparse.ArgumentParser], None],
) -> None:
    backup = actions.add_parser(
        "backup",
        help="copy the database safely while the engine writes (SQLite online backup)",
        description="Write a consistent, verified copy of the call-record database to OUT, "
        "even while the engine is running. Restore: see README.md, 'Backup and restore'.",
    )
    add_db(backup)
    backup.add_argument("out", type=Path, metavar="OUT", help="the copy to write")
    backup.add_argument(
        "--force", action="store_true", help="replace OUT (and any -wal/-shm beside it)"
    )


def run_backup(args: argparse.Namespace, stdout: TextIO, stderr: TextIO | None = None) -> int:
    """Carry out ``cdr backup``; print what was copied; return the exit status."""
    err = sys.stderr if stderr is None else stderr
    source: Path = args.db
    target: Path = args.out
    try:
        report = backup(source, target, force=args.force)
    except BackupError as error:
        print(f"callrouter cdr backup: {error}", file=err)
        return EXIT_FAILED
    tables = ", ".join(f"{name} {count}" for name, count in report.rows.items())
    print(
        f"backed up {source} to {target}: integrity ok, {report.total} rows ({tables})",
        file=stdout,
    )
    return EXIT_OK


def backup(source: Path, target: Path, *, force: bool = False) -> BackupReport:
    """Copy ``source`` to ``target`` with the online backup API, verified; see the module doc."""
    if not source.is_file():
        raise BackupError(f"no call-record database at {source}")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself; name another file")
    if (target.exists() or target.is_symlink()) and not force:
        raise BackupError(f"{target} already exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent} to write {target.name} into")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    _remove_database(partial)
    try:
        report = _copy_and_check(source, partial)
        if force:
            _remove_database(target, keep_main=True)  # a stale -wal must not meet the new file
        os.replace(partial, target)
        _sync_directory(target.parent)
    except (sqlite3.Error, OSError) as error:
        raise BackupError(f"{source} → {target}: {error}") from error
    finally:
        _remove_database(partial)
    return report


def _copy_and_check(source: Path, partial: Path) -> BackupReport:
    # mode=rw: never create an empty database where the live one should be.
    uri = f"file:{quote(str(source.resolve()))}?mode=rw"
    with (
        contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as live,
        contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as copy,
    ):
        live.backup(copy)  # pages=-1: one step, one read transaction, a consistent snapshot
        problems = [str(row[0]) for row in copy.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"the copy failed integrity_check: {'; '.join(problems[:3])}")
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        tables = [
            str(row[0])
            for row in copy.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        rows = {name: _count(copy, name) for name in tables}
    return BackupReport(rows=rows)


def _count(db: sqlite3.Connection, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    (count,) = db.execute(f"SELECT count(*) FROM {quoted}").fetchone()  # a name, quoted above
    return int(count)


def _remove_database(path: Path, *, keep_main: bool = False) -> None:
    """Delete ``path`` and the files SQLite keeps beside it (``keep_main``: only those)."""
    names = [path.name + suffix for suffix in SIDE_FILES]
    if not keep_main:
        names.append(path.name)
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            path.with_name(name).unlink()


def _sync_directory(directory: Path) -> None:
    """Make the rename durable, as the copy's own commit already made its content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
