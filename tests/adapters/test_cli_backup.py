"""`callrouter cdr backup` against a real SQLite store that the engine's adapter keeps writing."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from callrouter.adapters.store_sqlite import CallStore
from callrouter.cli_cdr import main
from callrouter.core.domain import CallOffered, LegStarted

from .scripted_calls import T0, connected_call
from .test_store_sqlite import record

WARM_UP_CALLS = 300  # committed before the backup starts: spread over the -wal and the file
DEADLINE_SECONDS = 60.0


class Writer(threading.Thread):
    """The engine's store adapter, recording calls one committed event at a time until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.committed: list[str] = []  # call ids whose two events have both committed
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        asyncio.run(self._write())

    async def _write(self) -> None:
        async with await CallStore.open(self.path) as store:
            n = 0
            while not self.halt.is_set():
                call_id = f"c{n:06d}"
                at = T0 + n
                try:
                    await store.handle(
                        CallOffered(call_id, at, "barnet", "02079460000", "P1", "Dr A")
                    )
                    await store.handle(
                        LegStarted(call_id, at, f"{call_id}-L1", "m1", "sip:m1@x", "local", "rota")
                    )
                except Exception as error:  # any failure is the test's finding, kept to assert on
                    self.errors.append(error)
                    return
                self.committed.append(call_id)
                n += 1

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(self.committed) < count and not self.errors:
            assert time.monotonic() < deadline, f"writer stuck at {len(self.committed)} calls"
            time.sleep(0.01)
        assert self.errors == []


def backup_command(db: Path, out: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`callrouter cdr backup` as an operator runs it: its own process, its own connection."""
    return subprocess.run(
        [sys.executable, "-m", "callrouter", "cdr", "backup", "--db", str(db), str(out), *extra],
        cwd=cwd,  # no config.yaml here: --db is the only source of the path
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class TestBackupWhileWriting:
    """The copy is a verified snapshot holding every call committed before it began."""

    def test_live_store_copied_whole(self, tmp_path: Path) -> None:
        live = tmp_path / "calls.sqlite3"
        out = tmp_path / "backup.sqlite3"
        writer = Writer(live)
        writer.start()
        try:
            writer.wait_for(WARM_UP_CALLS)
            wal = live.with_name(live.name + "-wal")
            assert wal.stat().st_size > 0  # recent commits sit in the -wal, not in the file
            before = list(writer.committed)
            done = backup_command(live, out, cwd=tmp_path)
            during = len(writer.committed)
        finally:
            writer.halt.set()
            writer.join(DEADLINE_SECONDS)
        assert not writer.is_alive()
        assert writer.errors == []  # the backup never made the engine's writes fail
        assert during > len(before)  # it kept writing while the copy was taken

        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        with read_only(out) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            calls = [row[0] for row in copy.execute("SELECT call_id FROM calls ORDER BY call_id")]
            legs = copy.execute("SELECT count(*) FROM legs").fetchone()[0]
            others = [
                (name, copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
                for (name,) in copy.execute(
                    "SELECT name FROM sqlite_schema WHERE type = 'table'"
                    " AND name NOT IN ('calls', 'legs') AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
                )
            ]
        assert set(before) <= set(calls)  # every call committed before the backup began
        # A snapshot: a prefix of the calls written, each with its leg but maybe the newest.
        assert calls == writer.committed[: len(calls)]
        assert legs in (len(calls), len(calls) - 1)
        tables = ", ".join(
            f"{name} {count}" for name, count in [("calls", len(calls)), ("legs", legs), *others]
        )
        total = len(calls) + legs + sum(count for _, count in others)
        assert done.stdout.strip() == (
            f"backed up {live} to {out}: integrity ok, {total} rows ({tables})"
        )
        assert not out.with_name(out.name + "-wal").exists()  # one self-contained file
        assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


class TestOverwrite:
    """An existing file is kept unless --force; --force replaces it and its stale -wal."""

    def test_refuses_to_overwrite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        live = tmp_path / "calls.sqlite3"
        out = tmp_path / "backup.sqlite3"
        record(live, connected_call())
        out.write_bytes(b"yesterday's backup")
        assert main(["cdr", "backup", "--db", str(live), str(out)]) == 1
        captured = capsys.readouterr()
        assert captured.err == (
            f"callrouter cdr backup: {out} already exists; pass --force to replace it\n"
        )
        assert captured.out == ""
        assert out.read_bytes() == b"yesterday's backup"

    def test_force_replaces_file_and_stale_wal(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        live = tmp_path / "calls.sqlite3"
        out = tmp_path / "backup.sqlite3"
        record(live, connected_call())
        out.write_bytes(b"yesterday's backup")
        stale = out.with_name(out.name + "-wal")
        stale.write_bytes(b"frames of another database")
        assert main(["cdr", "backup", "--db", str(live), str(out), "--force"]) == 0
        assert "integrity ok, 3 rows (calls 1, legs 2, " in capsys.readouterr().out
        assert not stale.exists()
        with read_only(out) as copy:
            assert copy.execute("SELECT call_id FROM calls").fetchall() == [("c-connected",)]

    def test_never_onto_the_live_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        live = tmp_path / "calls.sqlite3"
        record(live, connected_call())
        assert main(["cdr", "backup", "--db", str(live), str(live), "--force"]) == 1
        assert "is the database itself" in capsys.readouterr().err
        with read_only(live) as db:
            assert db.execute("SELECT count(*) FROM calls").fetchone() == (1,)

    def test_missing_or_foreign_source(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "backup.sqlite3"
        assert main(["cdr", "backup", "--db", str(tmp_path / "none.sqlite3"), str(out)]) == 1
        assert "no call-record database at" in capsys.readouterr().err
        assert not (tmp_path / "none.sqlite3").exists()  # not created by the attempt
        text = tmp_path / "notes.txt"
        text.write_text("not a database\n", encoding="utf-8")
        assert main(["cdr", "backup", "--db", str(text), str(out)]) == 1
        assert "file is not a database" in capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing left over


class TestRestore:
    """README's restore: stop, put the copy in place, drop stale -wal/-shm, start."""

    def test_restored_copy_opens_in_the_store(self, tmp_path: Path) -> None:
        live = tmp_path / "calls.sqlite3"
        out = tmp_path / "backup.sqlite3"
        record(live, connected_call())
        assert main(["cdr", "backup", "--db", str(live), str(out)]) == 0
        record(live, [CallOffered("c-later", T0 + 60, "barnet", "02079460000", None, None)])
        for side in ("-wal", "-shm"):
            live.with_name(live.name + side).unlink(missing_ok=True)
        shutil.copyfile(out, live)

        async def reopen() -> int:
            async with await CallStore.open(live) as store:
                return await store.close_interrupted(T0 + 120)

        assert asyncio.run(reopen()) == 0  # the backed-up call had ended: nothing to close
        with read_only(live) as db:
            assert db.execute("SELECT call_id FROM calls").fetchall() == [("c-connected",)]
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
