"""ICS layers: calendars read once at load into shifts; resolution then uses only those."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from callrouter.oncall.rota import explain, on_call
from callrouter.settings.ics import IcsError, read_calendar, read_calendars
from callrouter.settings.rota import Rotas
from tests.rota.helpers import LONDON, WEEKDAY_DAYS, ids, london, rota_file, team, utc, whys

REPO = Path(__file__).resolve().parents[2]
UNTIL = london("2027-01-01 00:00")


def calendar(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e}END:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def event(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in lines)


CLINIC = event(
    "UID:clinic",
    "DTSTART;TZID=Europe/London:20260106T090000",
    "DTEND;TZID=Europe/London:20260106T130000",
    "RRULE:FREQ=WEEKLY;BYDAY=TU",
    "SUMMARY:cat",
)


def write(tmp_path: Path, text: str, name: str = "cover.ics") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def loaded(tmp_path: Path, ics_text: str, layers: str | None = None) -> Rotas:
    """A team whose first layer is the calendar, then the weekday rotation; read as the loader
    does, with a fixed 'today'."""
    write(tmp_path, ics_text)
    layers = layers or ("    - {name: clinic, ics: cover.ics}\n" + WEEKDAY_DAYS)
    parsed, problems = read_calendars(
        rota_file(team(layers)), tmp_path, LONDON, today=date(2026, 1, 1)
    )
    assert problems == []
    return Rotas.merge([parsed])


class TestReadCalendar:
    """Events become shifts: recurring ones expanded, members from SUMMARY or the property."""

    def test_weekly_recurrence_keeps_local_time_across_dst(self, tmp_path: Path) -> None:
        source = read_calendar(write(tmp_path, calendar(CLINIC)), LONDON, UNTIL)
        assert source.shifts is not None
        starts = {s.start.astimezone(LONDON).strftime("%H:%M") for s in source.shifts}
        assert starts == {"09:00"}
        march_31 = [s for s in source.shifts if s.start.date() == date(2026, 3, 31)]
        assert march_31[0].start == utc("2026-03-31 08:00")  # 09:00 BST
        assert source.longest == timedelta(hours=4)
        assert source.covers_until == UNTIL
        assert len(source.shifts) == 52  # every Tuesday of 2026

    def test_member_property_beats_summary(self, tmp_path: Path) -> None:
        text = calendar(
            event(
                "UID:x",
                "DTSTART:20260310T140000",
                "DURATION:PT2H",
                "SUMMARY:Extra clinic",
                "X-CALLROUTER-MEMBER:bob",
            )
        )
        (shift,) = read_calendar(write(tmp_path, text), LONDON, UNTIL).shifts or ()
        assert shift.member == "bob"
        assert shift.label == "Extra clinic"
        # A floating time is London wall-clock time.
        assert shift.start == london("2026-03-10 14:00")
        assert shift.end == london("2026-03-10 16:00")

    def test_all_day_event_runs_midnight_to_midnight(self, tmp_path: Path) -> None:
        text = calendar(event("UID:d", "DTSTART;VALUE=DATE:20260329", "SUMMARY:dan"))
        (shift,) = read_calendar(write(tmp_path, text), LONDON, UNTIL).shifts or ()
        assert shift.start == utc("2026-03-29 00:00")
        assert shift.end == utc("2026-03-29 23:00")  # midnight BST: a 23-hour day

    def test_cancelled_events_are_left_out(self, tmp_path: Path) -> None:
        text = calendar(
            event("UID:c", "DTSTART:20260310T140000Z", "DTEND:20260310T150000Z",
                  "SUMMARY:dan", "STATUS:CANCELLED")
        )
        assert read_calendar(write(tmp_path, text), LONDON, UNTIL).shifts == ()

    @pytest.mark.parametrize(
        ("text", "words"),
        [
            ("not a calendar", "not a valid calendar"),
            (calendar(event("UID:n", "DTSTART:20260310T140000Z", "DTEND:20260310T150000Z")),
             "names no member"),
            (calendar(event("UID:e", "DTSTART:20260310T140000Z", "DTEND:20260310T130000Z",
                            "SUMMARY:dan")), "ends before it starts"),
            (calendar(event("UID:o", "DTSTART:20260310T140000Z", "SUMMARY:dan")),
             "no DTEND or DURATION"),
        ],
    )
    def test_bad_calendars(self, tmp_path: Path, text: str, words: str) -> None:
        with pytest.raises(IcsError, match=words):
            read_calendar(write(tmp_path, text), LONDON, UNTIL)

    def test_missing_file_is_a_problem_at_the_layer(self, tmp_path: Path) -> None:
        parsed = rota_file(team("    - {name: clinic, ics: nowhere.ics}\n"))
        _, problems = read_calendars(parsed, tmp_path, LONDON, today=date(2026, 1, 1))
        ((loc, message),) = problems
        assert loc == ("teams", 0, "layers", 0, "ics")
        assert "calendar not found" in message

    def test_horizon_bounds_endless_recurrence(self, tmp_path: Path) -> None:
        write(tmp_path, calendar(CLINIC))
        parsed = rota_file(team("    - {name: clinic, ics: cover.ics}\n"))
        read, _ = read_calendars(
            parsed, tmp_path, LONDON, today=date(2026, 1, 1), horizon=timedelta(days=60)
        )
        source = read.teams[0].layers[0].ics
        assert source is not None
        assert source.shifts is not None
        assert len(source.shifts) == 8  # Tuesdays 6 Jan .. 24 Feb, before 2 March
        assert source.covers_until == london("2026-03-02 00:00")


class TestIcsResolution:
    """A calendar layer puts its members on call exactly for their events."""

    def test_event_edges(self, tmp_path: Path) -> None:
        r = loaded(tmp_path, calendar(CLINIC))
        # Tuesday 31 March (BST), week 12: 12 % 3 = 0 -> ann, bob, cat.
        assert ids(on_call(r, "t", london("2026-03-31 08:59"))) == ["ann", "bob", "cat"]
        found = on_call(r, "t", london("2026-03-31 09:00"))
        assert ids(found) == ["cat", "ann", "bob"]
        assert found[0].why == "layer clinic (ics cover.ics)"
        assert whys(found)[1] == "layer weekday-days (primary)"
        assert ids(on_call(r, "t", london("2026-03-31 12:59")))[0] == "cat"
        assert ids(on_call(r, "t", london("2026-03-31 13:00"))) == ["ann", "bob", "cat"]

    def test_overlapping_events_all_count_in_start_order(self, tmp_path: Path) -> None:
        long_one = event("UID:l", "DTSTART:20260330T000000", "DTEND:20260404T000000",
                         "SUMMARY:eve")
        r = loaded(tmp_path, calendar(CLINIC, long_one))
        assert ids(on_call(r, "t", london("2026-03-31 10:00")))[:2] == ["eve", "cat"]
        assert ids(on_call(r, "t", london("2026-04-03 23:59")))[0] == "eve"
        assert "eve" not in ids(on_call(r, "t", london("2026-04-04 00:00")))

    def test_beyond_the_horizon_is_said(self, tmp_path: Path) -> None:
        r = loaded(tmp_path, calendar(CLINIC))
        state = explain(r, "t", london("2028-03-07 10:00")).layers[0]
        assert not state.applies
        assert state.note == "calendar expanded only until 2028-01-02"

    def test_shipped_calendar_reads(self) -> None:
        path = REPO / "rotas" / "barnet-dermatology-clinic.ics"
        source = read_calendar(path, LONDON, UNTIL)
        members = {shift.member for shift in source.shifts or ()}
        assert members == {"m-derm-barnet-3", "m-derm-barnet-2"}
        extra = [s for s in source.shifts or () if s.member == "m-derm-barnet-2"]
        assert [s.start for s in extra] == [datetime(2026, 3, 10, 14, tzinfo=LONDON)]


class TestIcsReferences:
    """A calendar naming someone who is not a member is caught at load, at the ``ics`` key."""

    def test_unknown_member_in_an_event(self, tmp_path: Path) -> None:
        from callrouter.settings.rota_checks import reference_problems  # noqa: PLC0415

        stranger = event("UID:z", "DTSTART:20260310T140000Z", "DTEND:20260310T150000Z",
                         "SUMMARY:Dr Zed")
        r = loaded(tmp_path, calendar(CLINIC, stranger))
        (problem,) = reference_problems(r)
        assert problem.loc == ("layers", 0, "ics")
        assert problem.message == (
            "cover.ics: event 'Dr Zed' on 2026-03-10 14:00 names 'Dr Zed', which is no member's id"
        )
