"""Random draws, made in bulk and keyed by call, so every strategy meets the same world.

Arrivals are drawn once per run. Behaviour is drawn per call and per member of the call's line
(does this member answer this call, after how long, do they accept, how long will the talk last),
in chunks of calls whose generator is seeded by ``(seed, chunk)``: the draw for call 12,345 and
member 3 is the same whichever strategy asks, in whatever order.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from callrouter.sim.scenario import Line
from callrouter.sim.workload import ArrivalProfile, Away

CHUNK = 4096  # calls per behaviour chunk
_ARRIVALS = 0  # stream ids inside the seed, so arrival and behaviour draws never overlap
_BEHAVIOUR = 1
_AWAY = 2


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Calls in time order: when each arrives, which line it is for, and its local hour."""

    times: list[float]
    lines: list[int]
    hours: list[int]

    def __len__(self) -> int:
        return len(self.times)


def service_days(start: date, days: int, *, weekends: bool = False) -> list[date]:
    """``days`` service days from ``start`` on (weekends skipped unless ``weekends``)."""
    found: list[date] = []
    day = start
    while len(found) < days:
        if weekends or day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


def draw_arrivals(
    seed: int,
    lines: tuple[Line, ...],
    days: list[date],
    *,
    opens: tuple[int, int],
    closes: tuple[int, int],
    zone: ZoneInfo,
    profile: ArrivalProfile | None = None,
) -> Arrivals:
    """Poisson arrivals per line inside each day's hours (wall clock in ``zone``), the rate of
    each clock hour scaled by the profile's hour and weekday factors."""
    rng = np.random.Generator(np.random.PCG64([seed, _ARRIVALS]))
    times: list[np.ndarray] = []
    which: list[np.ndarray] = []
    hours: list[np.ndarray] = []
    rates = np.array([line.rate for line in lines], dtype=float)
    for day in days:
        for hour in range(opens[0], closes[0] + 1):
            begin = max((hour, 0), opens)
            end = min((hour + 1, 0), closes)
            if end <= begin:
                continue
            start = _at(day, begin, zone)
            stop = _at(day, end, zone)  # closes is at most 23:59, so end is a real time
            factor = 1.0 if profile is None else profile.rate_factor(day.weekday(), hour)
            counts = rng.poisson(rates * factor * (stop - start) / 3600.0)
            total = int(counts.sum())
            times.append(rng.uniform(start, stop, total))
            which.append(np.repeat(np.arange(len(lines)), counts))
            hours.append(np.full(total, hour, dtype=int))
    all_times = np.concatenate(times) if times else np.empty(0)
    all_lines = np.concatenate(which) if which else np.empty(0, dtype=int)
    all_hours = np.concatenate(hours) if hours else np.empty(0, dtype=int)
    order = np.argsort(all_times, kind="stable")
    return Arrivals(all_times[order].tolist(), all_lines[order].tolist(), all_hours[order].tolist())


def _at(day: date, hm: tuple[int, int], zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, *hm, tzinfo=zone).timestamp()


@dataclass(frozen=True, slots=True)
class AwaySpells:
    """One member's availability sessions: sorted, non-overlapping ``[start, end)`` spells."""

    starts: list[float]
    ends: list[float]

    def away_at(self, now: float) -> bool:
        i = bisect.bisect_right(self.starts, now) - 1
        return i >= 0 and now < self.ends[i]

    def back_at(self, now: float) -> float:
        """When the member is next present at or after ``now``."""
        i = bisect.bisect_right(self.starts, now) - 1
        return self.ends[i] if i >= 0 and now < self.ends[i] else now


def draw_away(
    seed: int,
    member: str,
    away: Away,
    days: list[date],
    *,
    opens: tuple[int, int],
    closes: tuple[int, int],
    zone: ZoneInfo,
) -> AwaySpells:
    """The member's spells away, day by day. The generator is keyed by the member id, so a
    member keeps the same spells whoever else is on the team."""
    if away.per_day <= 0:
        return AwaySpells([], [])
    rng = np.random.Generator(np.random.PCG64([seed, _AWAY, zlib.crc32(member.encode())]))
    spells: list[tuple[float, float]] = []
    for day in days:
        start = _at(day, opens, zone)
        end = _at(day, closes, zone)
        count = int(rng.poisson(away.per_day))
        begins = rng.uniform(start, end, count)
        minutes = np.exp(away.minutes.mu + away.minutes.sigma * rng.standard_normal(count))
        spells.extend(zip(begins.tolist(), (begins + minutes * 60.0).tolist(), strict=True))
    spells.sort()
    starts: list[float] = []
    ends: list[float] = []
    for begin, finish in spells:  # merge overlapping spells
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], finish)
        else:
            starts.append(begin)
            ends.append(finish)
    return AwaySpells(starts, ends)


@dataclass(slots=True)
class BehaviourChunk:
    """Draws for calls ``first .. first+CHUNK-1``; member slot ``j`` of call ``i`` is at
    ``(i - first) * width + j``."""

    first: int
    width: int
    answer_u: list[float]
    delay_z: list[float]
    accept_u: list[float]
    length_z: list[float]
    patience_z: list[float]


def behaviour_chunk(seed: int, chunk: int, width: int) -> BehaviourChunk:
    rng = np.random.Generator(np.random.PCG64([seed, _BEHAVIOUR, chunk]))
    size = CHUNK * width
    return BehaviourChunk(
        chunk * CHUNK,
        width,
        rng.random(size).tolist(),
        rng.standard_normal(size).tolist(),
        rng.random(size).tolist(),
        rng.standard_normal(CHUNK).tolist(),
        rng.standard_normal(CHUNK).tolist(),
    )
