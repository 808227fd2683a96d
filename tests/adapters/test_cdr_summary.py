"""``callrouter cdr summary``: the referral-avoided share per area and specialty, from real
records (written by the store from scripted domain events) in a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from callrouter.cli_cdr import main
from callrouter.core.domain import DomainEvent, OutcomeRecorded

from .scripted_calls import T0, abandoned_in_hunt, connected_call, ivr_hangup
from .test_store_sqlite import record


def answered(call_id: str, t0: float, *, avoided: bool | None) -> list[DomainEvent]:
    """A connected cardiology call whose GP said avoided / needed / nothing (None)."""
    events: list[DomainEvent] = []
    for event in connected_call(call_id, t0):
        if isinstance(event, OutcomeRecorded):
            if avoided is None:
                continue
            event = OutcomeRecorded(call_id, event.at, event.area, event.specialty, avoided)  # noqa: PLW2901 - the altered copy
        events.append(event)
    return events


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    record(
        path,
        [
            *answered("c1", T0, avoided=True),
            *answered("c2", T0 + 60, avoided=True),
            *answered("c3", T0 + 120, avoided=False),
            *answered("c4", T0 + 180, avoided=None),
            *abandoned_in_hunt(t0=T0 + 600),
            *ivr_hangup(t0=T0 + 1200),
        ],
    )
    return path


def summary(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["cdr", "summary", "--db", str(db), "--format", "json", *extra]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


class TestSummary:
    """What a commissioner reads: counts and shares, each share over what it should divide."""

    def test_by_area_and_specialty(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        rows = summary(db, capsys)
        assert [(r["area"], r["specialty"]) for r in rows] == [
            ("north", "cardiology"),
            ("north", "dermatology"),
            ("south", "(none)"),
            ("all", "all"),
        ]
        cardiology, dermatology, south, total = rows
        assert cardiology == {
            "area": "north",
            "specialty": "cardiology",
            "calls": 4,
            "chose_specialty": 4,
            "connected": 4,
            "ftcr": 1.0,
            "survey_answered": 3,
            "referral_avoided": 2,
            "referral_needed": 1,
            "avoided_share": 0.6667,  # of the answers given, not of the calls
            "answered_share": 0.75,
        }
        assert dermatology["ftcr"] == 0.0
        assert dermatology["avoided_share"] is None  # nothing to divide by: not 0
        assert south["ftcr"] is None
        assert (total["calls"], total["connected"], total["ftcr"]) == (6, 4, 0.8)
        assert total["avoided_share"] == 0.6667

    def test_by_area_in_a_window(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        rows = summary(db, capsys, "--by", "area", "--until", "2024-06-01T11:02:30")
        assert [(r["area"], r["specialty"]) for r in rows] == [("north", "all"), ("all", "all")]
        assert rows[0]["calls"] == 3  # c1, c2, c3 (c4 was offered at 11:03)
        assert rows[0]["avoided_share"] == 0.6667

    def test_csv_for_a_spreadsheet(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        capsys.readouterr()
        assert main(["cdr", "summary", "--db", str(db), "--by", "specialty"]) == 0
        parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [r["specialty"] for r in parsed] == ["(none)", "cardiology", "dermatology", "all"]
        assert parsed[1]["avoided_share"] == "0.6667"
        assert parsed[2]["avoided_share"] == ""

    def test_missing_database(self, tmp_path: Path) -> None:
        assert main(["cdr", "summary", "--db", str(tmp_path / "absent.db")]) == 1
        assert not (tmp_path / "absent.db").exists()
