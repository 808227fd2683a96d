"""A hand-advanced clock for the engine (a fake of our own ``Clock`` port): nothing waits for
real time; ``advance()`` moves both times and runs the timers that came due, in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class FakeTimer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, wall: float = 1_000.0, monotonic: float = 50.0) -> None:
        self.wall_now = wall
        self.monotonic_now = monotonic
        self.timers: list[FakeTimer] = []

    def __repr__(self) -> str:
        return f"<FakeClock wall={self.wall_now} monotonic={self.monotonic_now} armed={self.armed}>"

    @property
    def now(self) -> float:
        """Wall time (what records say); setting it moves both times by the same step."""
        return self.wall_now

    @now.setter
    def now(self, value: float) -> None:
        self.advance(value - self.wall_now)

    @property
    def armed(self) -> list[float]:
        return sorted(t.when for t in self.timers if not t.cancelled)

    def wall(self) -> float:
        return self.wall_now

    def monotonic(self) -> float:
        return self.monotonic_now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    def step_wall(self, seconds: float) -> None:
        """The wall clock is stepped (NTP, an operator): monotonic time does not move."""
        self.wall_now += seconds
        self.fire()

    def advance(self, seconds: float) -> None:
        self.wall_now += seconds
        self.monotonic_now += seconds
        self.fire()

    def fire(self) -> None:
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= self.monotonic_now]
            if not due:
                break
            first = min(due, key=lambda t: t.when)
            self.timers.remove(first)
            first.callback()
        self.timers = [t for t in self.timers if not t.cancelled]
