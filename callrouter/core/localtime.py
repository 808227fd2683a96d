"""Local wall-clock times and the instants they name, across daylight-saving changes.

Rotas are written in wall-clock time ("hand off at 08:00"). Comparing wall-clock times directly
goes wrong twice a year: in autumn 01:00-02:00 happens twice (so a boundary there would switch
on, off and on again) and in spring 01:00-02:00 never happens. So every boundary is turned into
one instant with a single rule, and instants are compared:

    a wall-clock boundary B is the first instant at which the local clock reads B or later.

For an ordinary time that is the time itself; in the repeated autumn hour it is the first
occurrence; in the spring gap it is the end of the gap (01:30 -> 02:00 BST). The loader refuses
boundaries inside a gap (see ``settings.rota.dst_gap_problems``), so the last case is only a
well-defined fallback.

Pure: no clock reads, and no caches (a caller that asks the same question often may keep the
answer itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_SECOND = timedelta(seconds=1)


def wall(at: datetime, tz: tzinfo) -> datetime:
    """The naive wall-clock reading of aware instant ``at`` in ``tz``."""
    if at.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    return at.astimezone(tz).replace(tzinfo=None)


def _reads(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def instant(local: datetime, tz: tzinfo) -> datetime:
    """The first instant at which the clock in ``tz`` reads ``local`` or later (see module doc),
    in UTC: an aware time inside the repeated autumn hour never compares *equal* to one in
    another zone (PEP 495), so instants are kept in UTC."""
    early = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(early, late), max(early, late)
    if _reads(lo, tz) == local:
        return lo
    if _reads(hi, tz) == local:
        return hi
    # In a gap: the clock jumps from before `local` to after it somewhere in (lo, hi].
    lo = lo.replace(microsecond=0)
    while hi - lo > _SECOND:
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if _reads(mid, tz) >= local:
            hi = mid
        else:
            lo = mid
    return hi


def at_wall(day: date, clock: time, tz: tzinfo) -> datetime:
    """``instant`` of ``clock`` on ``day``."""
    return instant(datetime.combine(day, clock), tz)


def is_gap(local: datetime, tz: tzinfo) -> bool:
    """True when the wall-clock time ``local`` never happens in ``tz`` (skipped by DST)."""
    return all(
        _reads(local.replace(tzinfo=tz, fold=fold).astimezone(UTC), tz) != local for fold in (0, 1)
    )


@dataclass(frozen=True, slots=True)
class Gap:
    """Wall-clock times [start, end) that are skipped when the clocks go forward."""

    start: datetime
    end: datetime

    def contains(self, local: datetime) -> bool:
        return self.start <= local < self.end

    def days(self) -> tuple[date, ...]:
        """The local dates the gap touches (one, unless it straddles midnight)."""
        first, last = self.start.date(), (self.end - _SECOND).date()
        return (first,) if first == last else (first, last)


def _offset(at: datetime, tz: tzinfo) -> timedelta:
    offset = at.astimezone(tz).utcoffset()
    return offset if offset is not None else timedelta(0)


def gaps(tz: tzinfo, year: int) -> tuple[Gap, ...]:
    """Every DST gap in ``tz`` during ``year``, found by comparing each day's UTC offset."""
    result: list[Gap] = []
    noon = datetime(year, 1, 1, 12, tzinfo=UTC)
    previous = _offset(noon - timedelta(days=1), tz)
    while noon.year == year:
        current = _offset(noon, tz)
        if current > previous:
            lo, hi = noon - timedelta(days=1), noon
            while hi - lo > _SECOND:  # binary search for the change to the second
                mid = (lo + (hi - lo) / 2).replace(microsecond=0)
                if _offset(mid, tz) == current:
                    hi = mid
                else:
                    lo = mid
            utc_wall = hi.replace(tzinfo=None)
            result.append(Gap(utc_wall + previous, utc_wall + current))
        previous = current
        noon += timedelta(days=1)
    return tuple(result)
