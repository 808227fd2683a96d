"""Call records in real SQLite files: schema, every field, restart, export, purge."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from callrouter.adapters.store_export import FIELDS
from callrouter.adapters.store_schema import SCHEMA_VERSION, SchemaTooNewError
from callrouter.adapters.store_sqlite import CallStore
from callrouter.core.domain import (
    CallOffered,
    DomainEvent,
    LegStarted,
    RecordingFinished,
    RecordingState,
    SpecialtyChosen,
)

from .scripted_calls import T0, abandoned_in_hunt, connected_call, ivr_hangup


async def _record(path: Path, events: Iterable[DomainEvent]) -> None:
    async with await CallStore.open(path) as store:
        for event in events:
            await store.handle(event)


def record(path: Path, events: Iterable[DomainEvent]) -> None:
    asyncio.run(_record(path, events))


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read with a second, plain sqlite3 connection: what another process would see."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, params)]


class TestSchema:
    """Opening a file sets the durability pragmas and migrates by user_version."""

    def test_empty_v0_file_is_migrated(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        sqlite3.connect(path).close()  # a v0 file: exists, user_version 0, no tables
        assert rows(path, "PRAGMA user_version")[0]["user_version"] == 0
        record(path, [])
        assert rows(path, "PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
        tables = {r["name"]: r["sql"] for r in rows(path, "SELECT name, sql FROM sqlite_master")}
        assert "STRICT" in tables["calls"]
        assert "STRICT" in tables["legs"]

    def test_reopening_keeps_data_and_version(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, connected_call()[:3])
        record(path, connected_call()[3:4])
        assert rows(path, "PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
        assert rows(path, "SELECT specialty FROM calls") == [{"specialty": "cardiology"}]

    def test_wal_and_foreign_keys(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [])
        assert rows(path, "PRAGMA journal_mode")[0]["journal_mode"] == "wal"

        async def orphan_leg() -> None:
            async with await CallStore.open(path) as store:
                await store.handle(LegStarted("nobody", T0, "L1", "m", "sip:m@x", "local", "rota"))

        with pytest.raises(sqlite3.IntegrityError):
            asyncio.run(orphan_leg())

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(SchemaTooNewError):
            record(path, [])

    def test_strict_tables_reject_wrong_types(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [])
        with sqlite3.connect(path) as db, pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO calls (call_id, area, caller_masked, offered_at)"
                " VALUES ('x', 'a', '***', 'not a time')"
            )


class TestEveryFieldLands:
    """A scripted call's events fill every column of its call and leg rows."""

    def test_connected_call_row(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, connected_call())
        (call,) = rows(path, "SELECT * FROM calls")
        assert call == {
            "call_id": "c-connected",
            "area": "north",
            "specialty": "cardiology",
            "caller_masked": "********123",
            "practice": "Y00001",
            "clinician": "Dr Example",
            "nhs_number": "9434765919",
            "offered_at": T0,
            "answered_at": T0 + 1,
            "specialty_at": T0 + 20,
            "connected_at": T0 + 54,
            "ended_at": T0 + 325,
            "outcome": "connected",
            "end_reason": "completed",
            "survey_avoided_referral": 1,
            "member_id": "m-ncn-7",
            "tier": "ncn",
            "ivr_seconds": 19.0,
            "connect_seconds": 34.0,
            "talk_seconds": 260.0,
            # settled later, by the recordings archive (test_recording_lands_on_its_call)
            "recording_state": None,
            "recording_path": None,
            "recording_seconds": None,
            "recording_detail": None,
        }

    def test_recording_lands_on_its_call(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        sealed = "/var/lib/callrouter/recordings/2026/05/c-connected.wav.sealed"
        stored = RecordingFinished(
            "c-connected", T0 + 326, RecordingState.STORED, sealed, 259.6, ""
        )
        record(path, [*connected_call(), stored])
        (call,) = rows(path, "SELECT recording_state, recording_path, recording_seconds,"
                       " recording_detail FROM calls")  # fmt: skip
        assert call == {
            "recording_state": "stored",
            "recording_path": sealed,
            "recording_seconds": 259.6,
            "recording_detail": None,
        }

    def test_connected_call_legs(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, connected_call())
        legs = rows(path, "SELECT * FROM legs ORDER BY leg")
        assert legs == [
            {
                "call_id": "c-connected",
                "leg": "L1",
                "member_id": "m-local-1",
                "uri": "sip:local1@127.0.0.1",
                "tier": "local",
                "why": "rota",
                "started_at": T0 + 20,
                "ringing_at": T0 + 21,  # the first ring, not the later 183
                "answered_at": T0 + 28,
                "accepted": 0,
                "ended_at": T0 + 35,
                "sip_status": 200,
                "result": "declined",
                "ring_seconds": 7.0,
            },
            {
                "call_id": "c-connected",
                "leg": "L2",
                "member_id": "m-ncn-7",
                "uri": "sip:ncn7@127.0.0.1",
                "tier": "ncn",
                "why": "escalate",
                "started_at": T0 + 35,
                "ringing_at": T0 + 36,
                "answered_at": T0 + 50,
                "accepted": 1,
                # No LegEnded came for the bridged leg: it closes with the call.
                "ended_at": T0 + 325,
                "sip_status": None,
                "result": "accepted",
                "ring_seconds": None,
            },
        ]

    def test_abandoned_and_ivr_outcomes(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [*abandoned_in_hunt(), *ivr_hangup()])
        got = rows(
            path,
            "SELECT call_id, specialty, outcome, end_reason, talk_seconds, caller_masked"
            " FROM calls ORDER BY offered_at",
        )
        assert got == [
            {
                "call_id": "c-abandoned",
                "specialty": "dermatology",
                "outcome": "abandoned",
                "end_reason": "gp_hangup_hunt",
                "talk_seconds": None,
                "caller_masked": "**********890",
            },
            {
                "call_id": "c-ivr",
                "specialty": None,
                "outcome": "abandoned",
                "end_reason": "gp_hangup_ivr",
                "talk_seconds": None,
                "caller_masked": "********001",
            },
        ]
        (leg,) = rows(path, "SELECT result, accepted, sip_status FROM legs")
        assert leg == {"result": "cancelled", "accepted": None, "sip_status": 487}

    def test_each_event_is_committed_before_handle_returns(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"

        async def scenario() -> list[list[dict[str, Any]]]:
            seen = []
            async with await CallStore.open(path) as store:
                for event in connected_call()[:4]:
                    await store.handle(event)
                    seen.append(rows(path, "SELECT nhs_number, specialty FROM calls"))
            return seen

        seen = asyncio.run(scenario())
        assert seen[0] == [{"nhs_number": None, "specialty": None}]
        assert seen[2] == [{"nhs_number": "9434765919", "specialty": None}]
        assert seen[3] == [{"nhs_number": "9434765919", "specialty": "cardiology"}]

    def test_concurrent_calls_share_one_store(self, tmp_path: Path) -> None:
        """Many call tasks writing at once: transactions must not interleave."""
        path = tmp_path / "calls.db"

        async def scenario() -> None:
            async with await CallStore.open(path) as store:

                async def one_call(n: int) -> None:
                    for event in connected_call(f"c{n}", T0 + n):
                        await store.handle(event)

                async with asyncio.TaskGroup() as group:
                    for n in range(20):
                        group.create_task(one_call(n))

        asyncio.run(scenario())
        assert rows(path, "SELECT COUNT(*) AS n, SUM(outcome = 'connected') AS ok FROM calls") == [
            {"n": 20, "ok": 20}
        ]
        assert rows(path, "SELECT COUNT(*) AS n FROM legs WHERE ended_at IS NOT NULL") == [
            {"n": 40}
        ]

    def test_cancelled_caller_still_commits(self, tmp_path: Path) -> None:
        """Engine shutdown cancels call tasks: a write already begun must still land."""
        path = tmp_path / "calls.db"

        async def scenario() -> None:
            async with await CallStore.open(path) as store:
                writes = [asyncio.create_task(store.handle(e)) for e in connected_call()]
                await asyncio.sleep(0)  # every write has started
                for write in writes:
                    write.cancel()
                results = await asyncio.gather(*writes, return_exceptions=True)
                assert all(isinstance(r, asyncio.CancelledError) for r in results)

        asyncio.run(scenario())
        (call,) = rows(path, "SELECT outcome, talk_seconds FROM calls")
        assert call == {"outcome": "connected", "talk_seconds": 260.0}
        assert rows(path, "SELECT COUNT(*) AS n FROM legs") == [{"n": 2}]


class TestCloseInterrupted:
    """Start-up closes calls a crash left open and leaves finished ones alone."""

    def test_open_call_becomes_interrupted(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        half = connected_call("c-half", T0 + 1000)[:11]  # L2 ringing, nobody accepted yet
        record(path, [*abandoned_in_hunt(), *half])

        async def restart() -> int:
            async with await CallStore.open(path) as store:
                return await store.close_interrupted(T0 + 5000)

        assert asyncio.run(restart()) == 1
        by_id = {r["call_id"]: r for r in rows(path, "SELECT * FROM calls")}
        assert by_id["c-half"]["end_reason"] == "interrupted"
        assert by_id["c-half"]["outcome"] == "interrupted"
        assert by_id["c-half"]["ended_at"] == T0 + 5000
        assert by_id["c-abandoned"]["end_reason"] == "gp_hangup_hunt"
        assert by_id["c-abandoned"]["ended_at"] == T0 + 640
        legs = rows(path, "SELECT leg, ended_at, result FROM legs WHERE call_id = 'c-half'")
        assert sorted(legs, key=lambda r: r["leg"]) == [
            {"leg": "L1", "ended_at": T0 + 1035, "result": "declined"},
            {"leg": "L2", "ended_at": T0 + 5000, "result": None},
        ]
        assert asyncio.run(restart()) == 0  # nothing left open the second time

    def test_interrupted_after_connection_keeps_connected_outcome(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, connected_call()[:13])  # connected, then the engine died

        async def restart() -> int:
            async with await CallStore.open(path) as store:
                return await store.close_interrupted(T0 + 900)

        assert asyncio.run(restart()) == 1
        (call,) = rows(path, "SELECT outcome, end_reason, talk_seconds FROM calls")
        assert call == {"outcome": "connected", "end_reason": "interrupted", "talk_seconds": None}


class TestExport:
    """Export writes one row per call, spreadsheet-ready CSV or JSON."""

    def _export(self, path: Path, fmt: str, since: float | None = None, **kw: Any) -> str:
        async def run() -> str:
            out = io.StringIO(newline="")
            async with await CallStore.open(path) as store:
                await store.export(since, kw.get("until"), fmt, out)  # type: ignore[arg-type]
            return out.getvalue()

        return asyncio.run(run())

    def test_csv_round_trips_with_dictreader(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [*connected_call(), *abandoned_in_hunt(), *ivr_hangup()])
        text = self._export(path, "csv")
        assert text.startswith(",".join(FIELDS) + "\r\n")
        parsed = list(csv.DictReader(io.StringIO(text, newline="")))
        assert [r["call_id"] for r in parsed] == ["c-connected", "c-abandoned", "c-ivr"]
        first = parsed[0]
        # 10:00 UTC on 1 June is 11:00 BST.
        assert first["offered_at_local"] == "2024-06-01T11:00:00.000+01:00"
        assert float(first["offered_at"]) == T0
        assert first["outcome"] == "connected"
        assert first["caller_masked"] == "********123"
        assert first["legs_started"] == "2"
        assert float(first["connect_seconds"]) == 34.0
        assert parsed[2]["connected_at_local"] == ""
        assert parsed[2]["legs_started"] == "0"

    def test_winter_times_are_gmt(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        winter = 1_704_106_800.0  # 2024-01-01 11:00 UTC
        record(path, ivr_hangup("c-winter", winter))
        (row,) = json.loads(self._export(path, "json"))
        assert row["offered_at_local"] == "2024-01-01T11:00:00.000+00:00"

    def test_json_and_time_window(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [*connected_call(), *abandoned_in_hunt(), *ivr_hangup()])
        data = json.loads(self._export(path, "json", since=T0 + 1, until=T0 + 1200))
        assert [r["call_id"] for r in data] == ["c-abandoned"]  # until is exclusive
        assert data[0]["end_reason"] == "gp_hangup_hunt"
        assert list(data[0]) == list(FIELDS)
        assert json.loads(self._export(path, "json", since=T0 + 10_000)) == []

    def test_unknown_format_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        record(path, [])
        with pytest.raises(ValueError, match="xml"):
            self._export(path, "xml")


class TestPurge:
    """Purge deletes ended calls before a cut-off, with their legs, and nothing else."""

    def test_purge(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        old_open: list[DomainEvent] = [
            CallOffered("c-old-open", T0 - 50, "north", "07700900999", None, None),
            SpecialtyChosen("c-old-open", T0 - 40, "north", "renal", 10.0),
        ]
        record(path, [*connected_call(), *abandoned_in_hunt(), *old_open])

        async def purge(before: float) -> int:
            async with await CallStore.open(path) as store:
                return await store.purge(before)

        assert asyncio.run(purge(T0 + 1)) == 1  # only the ended call before the cut-off
        left = [r["call_id"] for r in rows(path, "SELECT call_id FROM calls ORDER BY call_id")]
        assert left == ["c-abandoned", "c-old-open"]
        assert rows(path, "SELECT DISTINCT call_id FROM legs") == [{"call_id": "c-abandoned"}]
        assert asyncio.run(purge(T0 + 1)) == 0
