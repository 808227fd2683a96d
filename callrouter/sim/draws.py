"""Random draws, made in bulk and keyed by call, so every strategy meets the same world.

Arrivals are drawn once per run. Behaviour is drawn per call and per member of the call's line
(does this member answer this call, after how long, do they accept, how long will the talk last),
in chunks of calls whose generator is seeded by ``(seed, chunk)``: the draw for call 12,345 and
member 3 is the same whichever strategy asks, in whatever order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from callrouter.sim.scenario import Line

CHUNK = 4096  # calls per behaviour chunk
_ARRIVALS = 0  # stream ids inside the seed, so arrival and behaviour draws never overlap
_BEHAVIOUR = 1


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Calls in time order: when each arrives and which line it is for."""

    times: list[float]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.times)


def service_days(start: date, days: int) -> list[date]:
    """``days`` weekdays from ``start`` on (weekends skipped)."""
    found: list[date] = []
    day = start
    while len(found) < days:
        if day.weekday() < 5:
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
) -> Arrivals:
    """Poisson arrivals per line inside each day's hours (wall clock in ``zone``)."""
    rng = np.random.Generator(np.random.PCG64([seed, _ARRIVALS]))
    times: list[np.ndarray] = []
    which: list[np.ndarray] = []
    rates = np.array([line.rate for line in lines], dtype=float)
    for day in days:
        start = datetime(day.year, day.month, day.day, *opens, tzinfo=zone).timestamp()
        end = datetime(day.year, day.month, day.day, *closes, tzinfo=zone).timestamp()
        counts = rng.poisson(rates * (end - start) / 3600.0)
        total = int(counts.sum())
        times.append(rng.uniform(start, end, total))
        which.append(np.repeat(np.arange(len(lines)), counts))
    all_times = np.concatenate(times) if times else np.empty(0)
    all_lines = np.concatenate(which) if which else np.empty(0, dtype=int)
    order = np.argsort(all_times, kind="stable")
    return Arrivals(all_times[order].tolist(), all_lines[order].tolist())


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
    )
