"""The simulated side of one call: its line, its legs, its draws and who is busy.

Plain slotted objects for the world's hot loop (world.py); nothing here knows the call flow's
rules, only what the world needs to play the GP and the consultants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callrouter.core.callflow import CallFlow
from callrouter.core.events import Digit, Event, Offered
from callrouter.core.line import Line
from callrouter.core.plan import HuntPlan
from callrouter.sim.draws import BehaviourChunk
from callrouter.sim.scenario import Behaviour


@dataclass(frozen=True, slots=True)
class LineRuntime:
    """One line, ready for the hot loop: events made once, members by slot."""

    area: str
    specialty: str
    line: Line
    offered: Offered
    keys: tuple[Digit, ...]
    slots: dict[str, int]
    behaviour: tuple[Behaviour, ...]


class PerLeg(dict[str, Event]):
    """One reusable event per leg name, made on first use."""

    def __init__(self, make: Callable[[str], Event]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, leg: str) -> Event:
        event = self[leg] = self._make(leg)
        return event


class SimLeg:
    __slots__ = ("accepts", "alive", "member", "name")

    def __init__(self, name: str, member: str, accepts: bool) -> None:
        self.name = name
        self.member = member
        self.accepts = accepts
        self.alive = True


class SimCall:
    __slots__ = (
        "base",
        "chunk",
        "first_tier",
        "flow",
        "hour",
        "index",
        "legs",
        "line",
        "patience_at",
        "plan",
        "rung",
        "talk_end_at",
        "tick_at",
    )

    def __init__(
        self, index: int, flow: CallFlow, line: LineRuntime, chunk: BehaviourChunk, base: int
    ) -> None:
        self.index = index
        self.flow = flow
        self.line = line
        self.chunk = chunk
        self.base = base  # this call's offset in the chunk's member draws
        self.legs: dict[str, SimLeg] = {}
        self.rung: set[str] = set()
        self.plan: HuntPlan | None = None
        self.first_tier: str | None = None
        self.tick_at: float | None = None
        self.patience_at: float | None = None  # when the GP hangs up if still waiting
        self.talk_end_at = 0.0  # when the bridged talk ends (0: not bridged)
        self.hour = 0  # the local hour the call came in: the consultants' habits of that hour


class Busy:
    """Presence: a member with a live leg (ringing, whisper or talking) anywhere is busy."""

    __slots__ = ("legs",)

    def __init__(self) -> None:
        self.legs: dict[str, int] = {}

    def is_available(self, member_id: str) -> bool:
        return not self.legs.get(member_id)
