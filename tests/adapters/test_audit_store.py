"""The audit trail in a real SQLite file: append-only (the triggers fire), spooled like the call
records, exported as CSV and JSON by ``callrouter audit export``."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from callrouter.adapters.store_audit import (
    AuditNoted,
    CoverAdded,
    CoverRemoved,
    NoAuditError,
    export_audit,
)
from callrouter.adapters.store_schema import MIGRATIONS
from callrouter.adapters.store_spool import SpoolEntry, decode, encode
from callrouter.adapters.store_sqlite import CallStore
from callrouter.audit import AuditTrail
from callrouter.cli import main as cli_main
from callrouter.core.availability import Mark

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def cover_r1() -> CoverAdded:
    """One live override, r-1: dr-b covers cardiology overnight."""
    return CoverAdded(
        T0,
        "r-1",
        "t",
        "cardiology",
        "dr-b",
        None,
        None,
        "2026-05-28T20:00:00",
        "2026-05-29T08:00:00",
        T0 + 3600,
        "app",
        "cr/c",
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_some(db: Path) -> None:
    """Three audit rows an hour apart, through the trail as the engine writes them."""

    async def go() -> None:
        clock = Clock(T0)
        async with await CallStore.open(db) as store:
            trail = AuditTrail(store, clock)
            trail.availability("cr/availability/dr-a", "dr-a", Mark(False, T0 + 600, "dr-a"))
            await trail.drain()
            clock.now = T0 + 3600
            trail.config_reload("/etc/callrouter/config.yaml", None)
            await trail.drain()
            clock.now = T0 + 7200
            trail.config_reload("/etc/callrouter/config.yaml", "dialplans/x.yaml:3:1: bad key")
            await trail.drain()
            assert trail.failed == 0

    asyncio.run(go())


def connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


class TestAppendOnly:
    """No one edits the trail: UPDATE and DELETE fail in the database itself."""

    def test_update_and_delete_are_refused(self, tmp_path: Path) -> None:
        db = tmp_path / "records.sqlite3"
        write_some(db)
        with contextlib.closing(connect(db)) as conn:
            with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
                conn.execute("UPDATE audit SET actor = 'someone else'")
            with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
                conn.execute("DELETE FROM audit WHERE seq = 1")
            assert conn.execute("SELECT COUNT(*), MIN(actor) FROM audit").fetchone() == (3, "dr-a")
            conn.execute(  # appending still works
                "INSERT INTO audit (at, kind, source, outcome, detail)"
                " VALUES (1, 'x', 'y', 'ok', '{}')"
            )
            assert conn.execute("SELECT COUNT(*) FROM audit").fetchone() == (4,)

    def test_live_overrides_cannot_be_deleted(self, tmp_path: Path) -> None:
        db = tmp_path / "records.sqlite3"

        async def add() -> None:
            async with await CallStore.open(db) as store:
                await store.note(cover_r1())
                await store.note(CoverRemoved(T0 + 1, "r-1", "ops", "r-2", "cr/c"))

        asyncio.run(add())
        with contextlib.closing(connect(db)) as conn:
            with pytest.raises(sqlite3.IntegrityError, match="do not delete"):
                conn.execute("DELETE FROM live_overrides")
            with pytest.raises(sqlite3.IntegrityError, match="only by being removed, once"):
                conn.execute("UPDATE live_overrides SET removed_at = 5, removed_by = 'again'")
            with pytest.raises(sqlite3.IntegrityError, match="only by being removed, once"):
                conn.execute("UPDATE live_overrides SET member_id = 'dr-x'")
            kinds = conn.execute("SELECT kind, subject, actor FROM audit ORDER BY seq").fetchall()
            assert kinds == [("override_add", "r-1", "app"), ("override_remove", "r-1", "ops")]
            assert conn.execute("SELECT removed_at FROM live_overrides").fetchone() == (T0 + 1,)

    def test_a_live_override_in_force_cannot_be_edited(self, tmp_path: Path) -> None:
        db = tmp_path / "records.sqlite3"

        async def add() -> None:
            async with await CallStore.open(db) as store:
                await store.note(cover_r1())

        asyncio.run(add())
        with contextlib.closing(connect(db)) as conn:
            for change in ("to_local = '2027-01-01T00:00:00'", "reason = 'edited'"):
                with pytest.raises(sqlite3.IntegrityError, match="only by being removed"):
                    conn.execute(f"UPDATE live_overrides SET {change}")
            assert conn.execute("SELECT to_local, reason FROM live_overrides").fetchone() == (
                "2026-05-29T08:00:00",
                None,
            )

    def test_schema_v4_is_the_audit(self) -> None:
        assert "CREATE TRIGGER audit_no_update" in MIGRATIONS[3]
        assert "CREATE TABLE live_overrides" in MIGRATIONS[3]


class TestSpooled:
    """Audit records take the spool's path: a line that reads back as the same record."""

    @pytest.mark.parametrize(
        "record",
        [
            AuditNoted(T0, "availability", "cr/a/x", None, "x", "ok", '{"available":false}'),
            CoverAdded(T0, "r-1", "t", "c", "m", "n", "leave", "a", "b", T0, None, "cr/c"),
            CoverRemoved(T0, "r-1", None, "r-2", "cr/c"),
        ],
    )
    def test_round_trip(self, record: AuditNoted | CoverAdded | CoverRemoved) -> None:
        line = encode(SpoolEntry("epoch", 7, record))
        assert decode(line.rstrip(b"\n")).record == record


class TestExport:
    """``callrouter audit export`` writes every row, oldest first, in the range asked for."""

    def test_json(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        db = tmp_path / "records.sqlite3"
        write_some(db)
        capsys.readouterr()
        assert cli_main(["audit", "export", "--db", str(db), "--format", "json"]) == 0
        captured = capsys.readouterr()
        rows = json.loads(captured.out)
        assert "exported 3 audit rows" in captured.err
        assert [r["kind"] for r in rows] == ["availability", "config_reload", "config_reload"]
        assert [r["outcome"] for r in rows] == ["ok", "ok", "rejected"]
        assert rows[0]["detail"] == {"available": False, "until": T0 + 600}
        assert rows[0]["at_local"] == "2026-05-28T21:26:40.000+01:00"
        assert rows[2]["source"] == "SIGHUP"
        assert rows[2]["detail"]["error"] == "dialplans/x.yaml:3:1: bad key"

    def test_csv_with_a_range(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        db = tmp_path / "records.sqlite3"
        write_some(db)
        capsys.readouterr()
        argv = ["audit", "export", "--db", str(db), "--since", "2026-05-28T22:00:00+01:00"]
        assert cli_main([*argv, "--until", "2026-05-28T23:26:40+01:00"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert len(rows) == 1  # the reload at T0+3600; T0+7200 is the (exclusive) end
        assert rows[0]["kind"] == "config_reload"
        assert rows[0]["outcome"] == "ok"
        assert json.loads(rows[0]["detail"]) == {"config": "/etc/callrouter/config.yaml"}

    def test_a_database_before_v4_is_explained(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "old.sqlite3"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.executescript(MIGRATIONS[0])
        capsys.readouterr()
        assert cli_main(["audit", "export", "--db", str(db)]) == 1
        captured = capsys.readouterr()
        assert "predates the audit (schema v4)" in captured.err
        assert captured.out == ""

    def test_no_database(self, tmp_path: Path) -> None:
        out = io.StringIO()
        with pytest.raises(NoAuditError, match="no call-record database"):
            export_audit(tmp_path / "none.sqlite3", None, None, "csv", out)
        assert out.getvalue() == ""
