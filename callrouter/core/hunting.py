"""The hunt of one call: the Hunter's picks become legs, and the consultants' reports and keys
become effects plus, when one decides the hunt, an outcome for the flow.

``Hunt`` owns the Hunter and the legs' timers (ring time, then the confirm time once a leg picks
up); the legs themselves live in the flow's ``LegBook``, which outlives the hunt for late
reports. Each method appends its effects to the ``out`` it is given and returns:

- ``Accept(leg)``: ``leg``'s consultant takes the call (pressed 1, or no accept is required);
- ``HuntOver(reason)``: nobody is left to ring and no leg is in flight, or the GP's longest
  wait ran out;
- ``None``: the hunt goes on.

The flow ends the hunt with ``connect`` (the winner bridged, the other legs cancelled) or
``stop`` (every live leg cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.core import domain as d
from callrouter.core.commands import Bridge, Dial, Hangup, Play, StopPlay
from callrouter.core.directory import CallerIdentity
from callrouter.core.env import Effect, FlowEnv, IllegalEvent
from callrouter.core.events import GP, Digit, LegAnswered, LegRinging, PromptDone
from callrouter.core.hunt import Hunter, Ring
from callrouter.core.legs import Leg, LegBook, LegPhase
from callrouter.core.line import Line
from callrouter.core.plan import HuntPlan
from callrouter.core.timers import Timers

WHISPER_ALLOWANCE_SECONDS = 20.0  # how long a whisper may play before the confirm timer runs


@dataclass(frozen=True, slots=True)
class Accept:
    leg: Leg


@dataclass(frozen=True, slots=True)
class HuntOver:
    reason: d.EndReason


HuntOutcome = Accept | HuntOver | None
LegEvent = LegRinging | LegAnswered | Digit | PromptDone


class Hunt:
    """HUNTING's part of one call (see the module docstring)."""

    __slots__ = (
        "_call_id",
        "_chosen_at",
        "_display",
        "_hunter",
        "_legs",
        "_line",
        "_policy",
        "_specialty",
        "_timers",
        "_whisper",
    )

    def __init__(
        self,
        line: Line,
        plan: HuntPlan,
        env: FlowEnv,
        legs: LegBook,
        *,
        caller: CallerIdentity,
        now: float,
    ) -> None:
        self._call_id = legs.call_id
        self._line = line
        self._specialty = specialty = plan.specialty
        self._chosen_at = now
        self._policy = line.policies[specialty]
        practice = caller.practice_name
        strategy = env.strategy_for(plan.policy)
        self._hunter = Hunter(plan, strategy, env.presence, env.stats, env.free_legs())
        self._legs = legs
        self._timers = Timers()  # each leg's by its name, and the GP's longest "wait"
        self._timers.set("wait", now + plan.policy.max_wait_seconds)
        self._display = practice or "GP advice line"
        self._whisper = line.whisper.for_call(practice, specialty)

    def __repr__(self) -> str:
        return f"<Hunt {self._hunter!r} {self._timers!r}>"

    def next_deadline(self) -> float | None:
        soonest = self._timers.soonest()
        hunter = self._hunter.next_deadline()
        return soonest if hunter is None or (soonest is not None and soonest <= hunter) else hunter

    def start(self, now: float, out: list[Effect]) -> HuntOutcome:
        return self._ring(self._hunter.start(now), now, out)

    def _ring(self, rings: list[Ring], now: float, out: list[Effect]) -> HuntOutcome:
        """Ring whom the hunter says; over when it has nobody left."""
        for ring in rings:
            who = ring.candidate
            leg = self._legs.open(who, ring.tier, now)
            self._timers.set(leg.name, now + ring.ring_seconds)
            out.append(Dial(leg.name, who.member_id, who.uri, self._display))
            out.append(
                d.LegStarted(
                    self._call_id, now, leg.name, who.member_id, who.uri, ring.tier, who.why
                )
            )
        return HuntOver(d.EndReason.NOBODY_ACCEPTED) if self._hunter.exhausted() else None

    def lost(
        self, leg: Leg, result: d.LegResult, status: int, now: float, out: list[Effect]
    ) -> HuntOutcome:
        """A leg failed (or was declined, or rang out): close it and ring whoever is next."""
        self._timers.clear(leg.name)
        out += self._legs.close(leg, result, status, now)
        declined, rang_out = result is d.LegResult.DECLINED, result is d.LegResult.NO_ANSWER
        return self._ring(
            self._hunter.leg_done(leg.member, declined, now, rang_out=rang_out), now, out
        )

    def stop(self, winner: Leg | None, now: float, out: list[Effect]) -> None:
        """End the hunt: cancel every live leg but ``winner``."""
        for leg in self._legs:
            if leg.phase.live and leg is not winner:
                out += self._legs.close(leg, d.LegResult.CANCELLED, 0, now)
        self._timers.clear_all()

    # -- what the consultants' legs report ---------------------------------------------------

    def report(self, event: LegEvent, leg: Leg, now: float, out: list[Effect]) -> HuntOutcome:
        """A consultant's leg reports ringing, an answer, a key, or the whisper's end."""
        match event:
            case LegRinging():
                self._ringing(leg, now, out)
            case LegAnswered():
                return self._answered(leg, now, out)
            case Digit(digit=digit):
                return self._key(leg, digit, now, out)
            case PromptDone():
                self._whisper_done(leg, now)
        return None

    def _ringing(self, leg: Leg, now: float, out: list[Effect]) -> None:
        if leg.phase is LegPhase.DIALING:
            leg.phase = LegPhase.RINGING
            out.append(d.LegRang(self._call_id, now, leg.name))

    def _answered(self, leg: Leg, now: float, out: list[Effect]) -> HuntOutcome:
        if leg.phase is LegPhase.CLOSING:
            out.append(Hangup(leg.name, "answered after cancel"))  # 200 crossed our CANCEL
            return None
        if not leg.phase.unanswered:
            raise IllegalEvent(f"LegAnswered for {leg.name} in phase {leg.phase.value}")
        leg.phase = LegPhase.WHISPER
        leg.answered_at = now
        out.append(d.LegPickedUp(self._call_id, now, leg.name, leg.member))
        self._hunter.leg_answered(leg.member)
        if not self._policy.require_accept:
            return Accept(leg)
        confirm = self._policy.confirm_seconds
        self._timers.set(leg.name, now + WHISPER_ALLOWANCE_SECONDS + confirm)
        out.append(Play(leg.name, self._whisper))
        return None

    def _whisper_done(self, leg: Leg, now: float) -> None:
        if leg.phase is LegPhase.WHISPER:
            self._timers.set(leg.name, now + self._policy.confirm_seconds)

    def _key(self, leg: Leg, digit: str, now: float, out: list[Effect]) -> HuntOutcome:
        if leg.phase is not LegPhase.WHISPER:
            return None  # keys during ringing are not ours
        if digit == "1":
            return Accept(leg)
        if digit == "2":
            return self.lost(leg, d.LegResult.DECLINED, 0, now, out)
        out.append(Play(leg.name, (self._line.whisper.keys,)))
        return None

    def connect(self, leg: Leg, now: float, out: list[Effect]) -> None:
        """``leg`` won: cancel the others and bridge it to the GP (the hunt is over)."""
        leg.phase = LegPhase.ACCEPTED
        self.stop(leg, now, out)
        out.append(StopPlay(GP))
        if self._policy.require_accept:
            out.append(StopPlay(leg.name))  # the whisper may still be playing: 1 barges in
        out.append(Bridge(GP, leg.name))
        waited = now - self._chosen_at
        area, specialty = self._line.area, self._specialty
        out.append(
            d.Connected(self._call_id, now, area, specialty, leg.name, leg.member, leg.tier, waited)
        )

    def tick(self, now: float, out: list[Effect]) -> HuntOutcome:
        """Legs whose ring or confirm time ran out, then the hunter's own timer."""
        for leg in self._legs:
            if self._timers.due(leg.name, now):
                outcome = None
                if leg.phase.unanswered:
                    outcome = self.lost(leg, d.LegResult.NO_ANSWER, 487, now, out)
                elif leg.phase is LegPhase.WHISPER:
                    outcome = self.lost(leg, d.LegResult.NO_CONFIRM, 0, now, out)
                if outcome is not None:
                    return outcome
        due = self._hunter.next_deadline()
        if due is not None and due <= now:
            outcome = self._ring(self._hunter.on_timer(now), now, out)
            if outcome is not None:
                return outcome
        return HuntOver(d.EndReason.MAX_WAIT) if self._timers.due("wait", now) else None
