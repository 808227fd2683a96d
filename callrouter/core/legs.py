"""Consultant legs of one call, and the book that owns them.

The book names legs ``L1``, ``L2``… in the order they are rung and reports each leg's end
(``LegEnded``, and the member's statistics) exactly once: closing a leg twice raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from callrouter.core import domain as d
from callrouter.core.commands import Command, Hangup
from callrouter.core.env import IllegalEvent
from callrouter.core.events import (
    GP,
    Event,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    Lost,
    Offered,
    Tick,
)
from callrouter.core.plan import Candidate


class LegPhase(Enum):
    DIALING = "dialing"  # INVITE sent
    RINGING = "ringing"  # 180/183 seen
    WHISPER = "whisper"  # answered; whisper playing or awaiting the accept key
    ACCEPTED = "accepted"  # the winner, bridged to the GP
    CLOSING = "closing"  # we asked the shell to end it; its report is still to come
    DONE = "done"  # the shell has reported the end

    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    @property
    def live(self) -> bool:
        """Up on our side: not yet asked to end, nor reported ended."""
        return self in _LIVE

    @property
    def unanswered(self) -> bool:
        return self in _UNANSWERED

    @property
    def ended(self) -> bool:
        return self in _ENDED


_LIVE = frozenset({LegPhase.DIALING, LegPhase.RINGING, LegPhase.WHISPER, LegPhase.ACCEPTED})
_UNANSWERED = frozenset({LegPhase.DIALING, LegPhase.RINGING})
_ENDED = frozenset({LegPhase.CLOSING, LegPhase.DONE})


@dataclass(slots=True)
class Leg:
    name: str
    candidate: Candidate
    tier: str
    started_at: float
    phase: LegPhase = LegPhase.DIALING
    answered_at: float | None = None
    reported: bool = False  # its LegEnded has been emitted

    @property
    def member(self) -> str:
        return self.candidate.member_id

    def ring_seconds(self, now: float) -> float:
        end = self.answered_at if self.answered_at is not None else now
        return end - self.started_at


class LegClosedTwiceError(RuntimeError):
    """A leg's end was to be reported a second time: a bug in the flow."""


class LegBook:
    """The legs of one call, by name, in the order they were rung."""

    __slots__ = ("_legs", "call_id")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self._legs: dict[str, Leg] = {}

    def __repr__(self) -> str:
        return " ".join(f"{name}={leg.phase.value}" for name, leg in self._legs.items())

    def __contains__(self, name: str) -> bool:
        return name in self._legs

    def __getitem__(self, name: str) -> Leg:
        return self._legs[name]

    def __iter__(self) -> Iterator[Leg]:
        return iter(list(self._legs.values()))  # a copy: closing may run during the walk

    def check(self, event: Event) -> None:
        """An event that names a leg must name one of ours; a leg report never names the GP."""
        if isinstance(event, Tick | Offered):
            return
        if event.leg == GP and isinstance(event, LegRinging | LegAnswered | LegFailed):
            raise IllegalEvent(f"{type(event).__name__} names the GP leg")
        if event.leg != GP and event.leg not in self._legs:
            raise IllegalEvent(f"{type(event).__name__} for unknown leg {event.leg!r}")

    def late_report(self, event: LegFailed | HungUp | LegAnswered | Lost) -> list[Command]:
        """The shell's last word on a leg the flow already ended; a live leg cannot send one."""
        if event.leg == GP:
            return []
        leg = self._legs[event.leg]
        if not leg.phase.ended:
            raise IllegalEvent(f"{type(event).__name__} for live leg {leg.name} after the end")
        if isinstance(event, LegAnswered) and leg.phase is LegPhase.CLOSING:
            return [Hangup(leg.name, "answered after cancel")]  # 200 crossed our CANCEL
        leg.phase = LegPhase.DONE
        return []

    def open(self, candidate: Candidate, tier: str, now: float) -> Leg:
        name = f"L{len(self._legs) + 1}"
        leg = self._legs[name] = Leg(name, candidate, tier, now)
        return leg

    def close(
        self, leg: Leg, result: d.LegResult, status: int, now: float
    ) -> list[Command | d.DomainEvent]:
        """Report ``leg``'s end once; a Hangup first when the leg is still up on our side."""
        if leg.reported:
            raise LegClosedTwiceError(f"{leg.name} of {self.call_id} closed twice")
        leg.reported = True
        out: list[Command | d.DomainEvent] = []
        if leg.phase.live:
            leg.phase = LegPhase.CLOSING
            out.append(Hangup(leg.name, result.value))
        out.append(
            d.LegEnded(
                self.call_id,
                now,
                leg.name,
                leg.member,
                leg.tier,
                result,
                status,
                leg.ring_seconds(now),
            )
        )
        return out  # learning hears the LegEnded in the shell, like presence


def result_for_status(status: int) -> d.LegResult:
    """Map a SIP final status on an unanswered leg to a bounded result."""
    if status in (486, 600):
        return d.LegResult.BUSY
    if status in (404, 410, 480, 484):
        return d.LegResult.UNAVAILABLE
    if status in (408, 487):
        return d.LegResult.NO_ANSWER
    if 400 <= status < 500 or status == 603:
        return d.LegResult.REJECTED
    return d.LegResult.ERROR
