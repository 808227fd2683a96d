"""England bank holidays and the line's opening hours at an instant."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from callrouter.oncall.calendar import bank_holiday_name, is_bank_holiday, is_open
from callrouter.settings.dialplan import ServiceHours
from tests.rota.helpers import LONDON, london, utc

WEEKDAYS = ServiceHours.model_validate(
    {"windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "08:00", "close": "18:30"}]}
)


class TestBankHolidays:
    """England only, substitute days included."""

    @pytest.mark.parametrize(
        "day",
        ["2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31",
         "2026-12-25", "2026-12-28"],
    )
    def test_england_2026(self, day: str) -> None:
        assert is_bank_holiday(date.fromisoformat(day))

    @pytest.mark.parametrize(
        "day",
        ["2026-01-02", "2026-03-17", "2026-07-13", "2026-08-03", "2026-11-30", "2026-05-05"],
    )
    def test_other_nations_and_ordinary_days(self, day: str) -> None:
        assert not is_bank_holiday(date.fromisoformat(day))

    def test_names(self) -> None:
        assert bank_holiday_name(date(2026, 12, 25)) == "Christmas Day"
        assert bank_holiday_name(date(2026, 5, 5)) is None

    def test_other_years(self) -> None:
        assert is_bank_holiday(date(2027, 5, 3))  # early May 2027
        assert is_bank_holiday(date(2030, 12, 25))


class TestIsOpen:
    """Open inside a window on its day, never on a bank holiday when so configured."""

    def test_window_edges(self) -> None:
        assert not is_open(WEEKDAYS, london("2026-03-02 07:59"))
        assert is_open(WEEKDAYS, london("2026-03-02 08:00"))
        assert is_open(WEEKDAYS, london("2026-03-02 18:29"))
        assert not is_open(WEEKDAYS, london("2026-03-02 18:30"))
        assert not is_open(WEEKDAYS, london("2026-03-07 12:00"))  # Saturday

    def test_bank_holiday_closed_unless_told_otherwise(self) -> None:
        assert not is_open(WEEKDAYS, london("2026-05-04 10:00"))
        hours = WEEKDAYS.model_copy(update={"closed_on_bank_holidays": False})
        assert is_open(hours, london("2026-05-04 10:00"))

    def test_no_windows_is_always_open(self) -> None:
        assert is_open(ServiceHours(), london("2026-12-25 03:00"))

    def test_read_on_the_configured_clock(self) -> None:
        # 07:30 UTC on a BST Monday is 08:30 in London: open there, not on the UTC clock.
        at = utc("2026-03-30 07:30")
        assert is_open(WEEKDAYS, at, LONDON)
        assert is_open(WEEKDAYS, at.astimezone(LONDON))
        assert not is_open(WEEKDAYS, at)

    def test_naive_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            is_open(WEEKDAYS, datetime(2026, 3, 2, 9))
