"""The ports the engine is written against (each a small Protocol we own), its limits, and the
clock: wall time for what is recorded and for rotas, monotonic time for every deadline.

Tests hand the engine fakes of these ports, never patches of a library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.settings.dialplan import Dialplan
from callrouter.sip import protocol as p


class SipPort(Protocol):
    """What the engine needs of the worker pool (callrouter.sip.pool.WorkerPool)."""

    def send(self, command: p.Command, *, near: str | None = None) -> None: ...

    def free_for(self, gp_leg: str) -> int:
        """Consultant legs the GP's call may place now (its own reservation included)."""
        ...

    def reserve(self, gp_leg: str) -> bool:
        """Keep a slot for the GP's first consultant leg; False if its worker has none."""
        ...

    async def next_event(self, timeout: float | None = None) -> p.Event: ...


class PromptFiles(Protocol):
    """Prompt → WAV path, for prompts made ahead (the cache builds them at start-up)."""

    def path_for(self, prompt: c.Prompt) -> str: ...


class EventSink(Protocol):
    async def handle(self, event: d.DomainEvent) -> None: ...


class RefusalCounter(Protocol):
    """Counts every refused call (callrouter.adapters.metrics.Metrics): bounded reasons."""

    def call_refused(self, reason: str, status: int) -> None: ...


class DialplanLookup(Protocol):
    def dialplan_for(self, called: str) -> Dialplan | None: ...


class RecordingPort(Protocol):
    """Where bridged calls are recorded (recordings.RecordingArchive)."""

    def plain_path(self, call_id: str) -> str: ...

    def finished(self, recorded: p.Recorded) -> None: ...


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Two times, never mixed: ``wall()`` (POSIX seconds) anchors what is recorded and what the
    rotas and hours read; ``monotonic()`` measures every wait, so a stepped wall clock moves no
    deadline. ``call_at`` runs ``callback`` once ``monotonic()`` reaches ``when``."""

    def wall(self) -> float: ...

    def monotonic(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's clock (monotonic) and the system's wall clock."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_at(when, callback)


@dataclass(frozen=True, slots=True)
class EngineLimits:
    max_concurrent_calls: int
    trunk_allows: Callable[[str], bool]
    retry_after_seconds: int = 30
