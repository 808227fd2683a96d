"""What one call has reported so far, kept by the shell from the call's own domain events, so
that a call whose task fails can still be brought to its end: every leg it started gets its
LegEnded (which frees the consultant in presence and closes the leg's record) and the call gets
its CallEnded (which closes the call's record), each exactly once.

Pure bookkeeping: no I/O, and ``now`` comes from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callrouter.core import domain as d


@dataclass(slots=True)
class _OpenLeg:
    member_id: str
    tier: str
    started_at: float
    picked_up_at: float | None = None


@dataclass(slots=True)
class CallLedger:
    call_id: str
    area: str | None = None  # set by CallOffered: before it nothing was recorded
    specialty: str | None = None
    connected_leg: str | None = None
    connected_at: float | None = None
    ended: bool = False
    legs: dict[str, _OpenLeg] = field(default_factory=dict)

    @property
    def open_legs(self) -> tuple[str, ...]:
        return tuple(self.legs)

    def observe(self, fact: d.DomainEvent) -> None:
        match fact:
            case d.CallOffered(area=area):
                self.area = area
            case d.SpecialtyChosen(specialty=specialty):
                self.specialty = specialty
            case d.LegStarted(leg=leg, member_id=member, tier=tier, at=at):
                self.legs[leg] = _OpenLeg(member, tier, at)
            case d.LegPickedUp(leg=leg, at=at) if leg in self.legs:
                self.legs[leg].picked_up_at = at
            case d.LegEnded(leg=leg):
                self.legs.pop(leg, None)
            case d.Connected(leg=leg, at=at):
                self.connected_leg, self.connected_at = leg, at
            case d.CallEnded():
                self.ended = True
            case _:
                pass

    def closing(self, now: float) -> list[d.DomainEvent]:
        """The facts that end the call as interrupted: a LegEnded for each leg still open (the
        bridged one accepted, the others cancelled: none is the consultant's doing), then the
        CallEnded. Observes them too, so asking twice gives nothing the second time."""
        facts: list[d.DomainEvent] = []
        for name, leg in self.legs.items():
            accepted = name == self.connected_leg
            end = leg.picked_up_at if leg.picked_up_at is not None else now
            facts.append(
                d.LegEnded(
                    self.call_id,
                    now,
                    name,
                    leg.member_id,
                    leg.tier,
                    d.LegResult.ACCEPTED if accepted else d.LegResult.CANCELLED,
                    200 if accepted else 0,
                    end - leg.started_at,
                )
            )
        if self.area is not None and not self.ended:
            talk = 0.0 if self.connected_at is None else now - self.connected_at
            facts.append(
                d.CallEnded(
                    self.call_id,
                    now,
                    self.area,
                    self.specialty,
                    d.EndReason.INTERRUPTED,
                    self.connected_at is not None,
                    max(talk, 0.0),
                )
            )
        for fact in facts:
            self.observe(fact)
        return facts
