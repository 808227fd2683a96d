"""`callrouter cdr export|purge` against real database files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import time
from pathlib import Path

import pytest

from callrouter.cli_cdr import add_cdr_commands, main, parse_when

from .scripted_calls import T0, abandoned_in_hunt, connected_call, ivr_hangup
from .test_store_sqlite import record


class TestParseWhen:
    """--since/--until take ISO dates; without an offset they mean London time."""

    def test_summer_date_time_is_bst(self) -> None:
        assert parse_when("2024-06-01T11:00:00") == T0

    def test_explicit_offset_wins(self) -> None:
        assert parse_when("2024-06-01T10:00:00+00:00") == T0

    def test_date_only_is_london_midnight(self) -> None:
        assert parse_when("2024-01-01") == 1_704_067_200.0

    def test_garbage_is_an_argument_error(self) -> None:
        with pytest.raises(argparse.ArgumentTypeError):
            parse_when("yesterday")


class TestExportCommand:
    """cdr export writes a file a spreadsheet (or DictReader) can read."""

    def test_csv_to_file(self, tmp_path: Path) -> None:
        db = tmp_path / "calls.db"
        out = tmp_path / "calls.csv"
        record(db, [*connected_call(), *abandoned_in_hunt(), *ivr_hangup()])
        status = main(
            ["cdr", "export", "--db", str(db), "--output", str(out), "--since", "2024-06-01"]
        )
        assert status == 0
        raw = out.read_bytes()
        assert raw.count(b"\r\n") == 4  # header + 3 calls, spreadsheet line ends
        with out.open(encoding="utf-8", newline="") as file:
            parsed = list(csv.DictReader(file))
        assert [r["call_id"] for r in parsed] == ["c-connected", "c-abandoned", "c-ivr"]

    def test_json_window_to_stdout(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "calls.db"
        record(db, [*connected_call(), *abandoned_in_hunt(), *ivr_hangup()])
        status = main(
            [
                "cdr", "export", "--db", str(db), "--format", "json",
                "--since", "2024-06-01T11:05:00", "--until", "2024-06-01T11:15:00",
            ]
        )  # fmt: skip
        assert status == 0
        captured = capsys.readouterr()
        assert [r["call_id"] for r in json.loads(captured.out)] == ["c-abandoned"]
        assert "exported 1 calls" in captured.err

    def test_missing_database_is_an_error_not_a_new_file(self, tmp_path: Path) -> None:
        db = tmp_path / "absent.db"
        assert main(["cdr", "export", "--db", str(db)]) == 1
        assert not db.exists()


class TestPurgeCommand:
    """cdr purge removes ended calls older than the retention."""

    def test_purge_keeps_recent_calls(self, tmp_path: Path) -> None:
        db = tmp_path / "calls.db"
        recent = time.time() - 3600
        record(db, [*connected_call(), *ivr_hangup("c-recent", recent)])
        out = io.StringIO()
        parser = argparse.ArgumentParser()
        add_cdr_commands(parser.add_subparsers(dest="command"), default_db=db)
        args = parser.parse_args(["cdr", "purge", "--older-than-days", "30"])
        assert args.func(args, out) == 0
        assert out.getvalue() == "purged 1 calls\n"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT call_id FROM calls").fetchall() == [("c-recent",)]

    def test_defaults_come_from_the_caller(self, tmp_path: Path) -> None:
        parser = argparse.ArgumentParser()
        add_cdr_commands(
            parser.add_subparsers(dest="command"),
            default_db=tmp_path / "x.db",
            default_retention_days=400,
        )
        args = parser.parse_args(["cdr", "purge"])
        assert args.db == tmp_path / "x.db"
        assert args.older_than_days == 400

    def test_db_required_without_default(self) -> None:
        parser = argparse.ArgumentParser()
        add_cdr_commands(parser.add_subparsers(dest="command"))
        with pytest.raises(SystemExit):
            parser.parse_args(["cdr", "export"])

    def test_zero_days_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SystemExit):
            main(["cdr", "purge", "--db", str(tmp_path / "x.db"), "--older-than-days", "0"])
