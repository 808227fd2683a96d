"""England bank holidays and the advice line's opening hours at an instant.

Bank holidays come from the ``holidays`` library for GB with ``subdiv="ENG"`` (plain ``UK()``
mixes in Scottish and Northern Irish days). Where a holiday falls on a weekend the library lists
both the day itself and the substitute weekday ("Boxing Day (observed)"); both count here.

Pure: the holidays table is computed, not fetched, so caching it per year is safe.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

import holidays

from callrouter.core.localtime import at_wall, wall
from callrouter.settings.dialplan import WEEKDAYS, ServiceHours

_BY_YEAR: dict[int, dict[date, str]] = {}


def _year(year: int) -> dict[date, str]:
    table = _BY_YEAR.get(year)
    if table is None:
        source = holidays.country_holidays("GB", subdiv="ENG", years=year)
        table = {day: str(name) for day, name in source.items()}
        _BY_YEAR[year] = table
    return table


def bank_holiday_name(day: date) -> str | None:
    """The name of the England bank holiday on ``day``, or None."""
    return _year(day.year).get(day)


def is_bank_holiday(day: date) -> bool:
    """True when ``day`` is a bank holiday in England."""
    return day in _year(day.year)


def is_open(hours: ServiceHours, at: datetime, tz: tzinfo | None = None) -> bool:
    """Whether the line is open at instant ``at``, read on the clock of ``tz`` (the configured
    zone; default ``at``'s own zone).

    No windows means always open, bank holidays included: a line with no hours configured never
    turns callers away. With windows, a window counts on its day only, and not at all on a bank
    holiday when ``closed_on_bank_holidays``.
    """
    if at.tzinfo is None:
        raise ValueError("is_open needs a timezone-aware instant")
    if not hours.windows:
        return True
    zone = tz if tz is not None else at.tzinfo
    today = wall(at, zone).date()
    if hours.closed_on_bank_holidays and is_bank_holiday(today):
        return False
    weekday = WEEKDAYS[today.weekday()]
    return any(
        weekday in window.days
        and at_wall(today, window.open, zone) <= at < at_wall(today, window.close, zone)
        for window in hours.windows
    )
