"""The call flow: one GP call from INVITE to the last BYE, as a pure state machine.

``handle(event, now)`` returns effects (commands for the shell and domain events for the sinks);
``next_deadline()`` says when the shell must call ``handle(Tick(), now)``. Rules, in the manner of
h11's state table:

1. The table ``_TABLE`` lists, per state, every event type that may arrive. Anything else raises
   ``IllegalEvent`` and leaves the flow exactly as it was: handlers check before they change.
2. Events that races make legal are in the table and do nothing (a PromptDone for a prompt we
   already stopped, a 487 for a leg we cancelled, a digit while we hunt).
3. Every leg the flow starts is ended by it: on the way out every live leg gets a Hangup, and
   each leg's LegEnded is reported exactly once, when its result is known.
4. Time comes only from ``now``; deadlines are absolute POSIX seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callrouter.core import domain as d
from callrouter.core.commands import Answer, Bridge, Command, Dial, Hangup, Play, Prompt, StopPlay
from callrouter.core.directory import CallerDirectory, CallerIdentity
from callrouter.core.events import (
    GP,
    Digit,
    Event,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    MediaTimeout,
    Offered,
    PromptDone,
    Tick,
)
from callrouter.core.flow_ivr import IvrMixin
from callrouter.core.hunt import Hunter, Presence, Ring
from callrouter.core.learning import MemberStats
from callrouter.core.legs import LIVE, UNANSWERED, Leg, LegPhase, result_for_status
from callrouter.core.plan import HuntPlan
from callrouter.core.states import State
from callrouter.core.strategies import Strategy
from callrouter.settings.dialplan import Dialplan, HuntPolicy, UnknownCallerPolicy

Effect = Command | d.DomainEvent
WHISPER_ALLOWANCE_SECONDS = 20.0  # how long a whisper may play before the confirm timer runs
FAREWELL_LIMIT_SECONDS = 60.0  # a goodbye prompt that never reports done still ends the call
SURVEY_SECONDS = 8.0


class IllegalEvent(Exception):
    """The event cannot happen in this state; the flow is unchanged."""


class PlanSource(Protocol):
    def plan(self, area: str, specialty: str, now: float) -> HuntPlan: ...


@dataclass(frozen=True, slots=True)
class FlowEnv:
    """Everything a flow needs from outside, as pure lookups. Shared by all calls of an engine."""

    specialty_names: Mapping[str, str]
    directories: Mapping[str, CallerDirectory]  # by area
    plans: PlanSource
    presence: Presence
    stats: MemberStats
    strategy_for: Callable[[HuntPolicy], Strategy]
    is_open: Callable[[Dialplan, float], bool]
    free_legs: Callable[[], int]
    max_call_seconds: float


class CallFlow(IvrMixin):
    """One call. ``repr`` shows state and legs: ``<CallFlow c1 HUNTING L1=ringing>``."""

    def __init__(self, call_id: str, dialplan: Dialplan, env: FlowEnv, now: float) -> None:
        super().__init__(dialplan, env.specialty_names)
        self.call_id = call_id
        self.dialplan = dialplan
        self.env = env
        self.state = State.OFFERED
        self.area = dialplan.area
        self.caller = CallerIdentity(None, None, None)
        self.offered_at = now
        self.answered_at = now
        self.chosen_at: float | None = None
        self.connected_at: float | None = None
        self.talk_end_at: float | None = None
        self.specialty: str | None = None
        self.legs: dict[str, Leg] = {}
        self.winner: Leg | None = None
        self._hunter: Hunter | None = None
        self._wait_deadline: float | None = None
        self._call_deadline: float | None = None
        self._farewell_deadline: float | None = None
        self._end_reason = d.EndReason.COMPLETED
        self._gp_gone = False
        self._survey_tries = 0
        self._out: list[Effect] = []

    def __repr__(self) -> str:
        legs = " ".join(f"{n}={leg.phase.value}" for n, leg in self.legs.items())
        return f"<CallFlow {self.call_id} {self.state.name}{' ' + legs if legs else ''}>"

    # -- the public surface ---------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Effect]:
        handler = _TABLE[self.state].get(type(event))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} in state {self.state.name}")
        self._check_leg(event)
        self._out = []
        handler(self, event, now)
        return self._out

    def next_deadline(self) -> float | None:
        times = [
            t
            for t in (
                self.ivr_deadline,
                self._wait_deadline,
                self._call_deadline,
                self._farewell_deadline,
                self._hunter.next_deadline() if self._hunter is not None else None,
            )
            if t is not None
        ]
        times.extend(leg.deadline for leg in self.legs.values() if leg.deadline is not None)
        return min(times) if times else None

    @property
    def ended(self) -> bool:
        return self.state is State.ENDED

    # -- helpers shared with the IVR mixin ------------------------------------------------

    def emit(self, effect: Effect) -> None:
        self._out.append(effect)

    def _call_id(self) -> str:
        return self.call_id

    def play_gp(self, *prompts: Prompt, loop: bool = False) -> None:
        self.gp_playing = not loop
        self._out.append(Play(GP, prompts, loop))

    def farewell(self, prompt: Prompt, reason: d.EndReason, now: float) -> None:
        """Say a last prompt to the GP, then hang up."""
        self._end_reason = reason
        self.ivr_deadline = None
        self.state = State.FAREWELL
        self.play_gp(prompt)
        self._farewell_deadline = now + FAREWELL_LIMIT_SECONDS

    def _check_leg(self, event: Event) -> None:
        leg = getattr(event, "leg", None)
        if leg is None or leg == GP:
            if isinstance(event, LegRinging | LegAnswered | LegFailed):
                raise IllegalEvent(f"{type(event).__name__} names the GP leg")
            return
        if leg not in self.legs:
            raise IllegalEvent(f"{type(event).__name__} for unknown leg {leg!r}")

    # -- OFFERED ----------------------------------------------------------------------------

    def _on_offered(self, event: Offered, now: float) -> None:
        self.caller = self.env.directories[self.area].identify(event.caller)
        self.answered_at = now
        self.emit(
            d.CallOffered(
                self.call_id,
                now,
                self.area,
                event.caller,
                self.caller.practice_name,
                self.caller.clinician,
            )
        )
        self.emit(Answer())
        self.emit(d.CallAnswered(self.call_id, now))
        prompts = self.dialplan.prompts
        if not self.env.is_open(self.dialplan, now):
            self.farewell(prompts.out_of_hours.as_prompt(), d.EndReason.OUT_OF_HOURS, now)
        elif not self.caller.known and self.dialplan.unknown_callers is UnknownCallerPolicy.REJECT:
            self.farewell(prompts.unknown_caller.as_prompt(), d.EndReason.UNKNOWN_CALLER, now)
        else:
            self.state = State.GREETING
            self.play_gp(prompts.greeting.as_prompt())

    # -- IVR states (GREETING, NHS, MENU) are in flow_ivr.IvrMixin; it calls back here -----

    def specialty_chosen(self, specialty: str, now: float) -> None:
        self.specialty = specialty
        self.chosen_at = now
        self.ivr_deadline = None
        self.emit(
            d.SpecialtyChosen(self.call_id, now, self.area, specialty, now - self.answered_at)
        )
        plan = self.env.plans.plan(self.area, specialty, now)
        policy = plan.policy
        self.state = State.HUNTING
        self._hunter = Hunter(
            plan,
            self.env.strategy_for(policy),
            self.env.presence,
            self.env.stats,
            self.env.free_legs(),
        )
        self._wait_deadline = now + policy.max_wait_seconds
        self.play_gp(self.dialplan.prompts.hunting.as_prompt())
        self._dial(self._hunter.start(now), now)
        self._maybe_give_up(now)

    # -- HUNTING ----------------------------------------------------------------------------

    def _dial(self, rings: list[Ring], now: float) -> None:
        for ring in rings:
            name = f"L{len(self.legs) + 1}"
            candidate = ring.candidate
            self.legs[name] = Leg(name, candidate, ring.tier, now, now + ring.ring_seconds)
            display = self.caller.practice_name or "GP advice line"
            self.emit(Dial(name, candidate.member_id, candidate.uri, display))
            self.emit(
                d.LegStarted(
                    self.call_id,
                    now,
                    name,
                    candidate.member_id,
                    candidate.uri,
                    ring.tier,
                    candidate.why,
                )
            )

    def _close_leg(self, leg: Leg, result: d.LegResult, status: int, now: float) -> None:
        """Record a leg's end once; send Hangup when the leg is still up on our side."""
        if leg.phase in LIVE:
            leg.phase = LegPhase.CLOSING
            self.emit(Hangup(leg.name, result.value))
        leg.deadline = None
        leg.result = result
        self.emit(
            d.LegEnded(
                self.call_id,
                now,
                leg.name,
                leg.candidate.member_id,
                leg.tier,
                result,
                status,
                leg.ring_seconds(now),
            )
        )
        answered = leg.answered_at - leg.started_at if leg.answered_at is not None else 0.0
        self.env.stats.record(leg.candidate.member_id, result, answered, now)

    def _leg_lost(self, leg: Leg, result: d.LegResult, status: int, now: float) -> None:
        """A leg of the hunt failed: close it, ring whoever is next, or give up."""
        self._close_leg(leg, result, status, now)
        if self.state is State.HUNTING and self._hunter is not None:
            declined = result is d.LegResult.DECLINED
            self._dial(self._hunter.leg_done(leg.candidate.member_id, declined, now), now)
            self._maybe_give_up(now)

    def _maybe_give_up(self, now: float) -> None:
        if self._hunter is not None and self._hunter.exhausted() and self.state is State.HUNTING:
            self._stop_hunt(d.LegResult.CANCELLED, now)
            self.emit(StopPlay(GP))
            nobody = self.dialplan.prompts.nobody.as_prompt()
            self.farewell(nobody, d.EndReason.NOBODY_ACCEPTED, now)

    def _stop_hunt(self, result: d.LegResult, now: float) -> None:
        for leg in self.legs.values():
            if leg.phase in LIVE and leg is not self.winner:
                self._close_leg(leg, result, 0, now)
        self._wait_deadline = None
        self._hunter = None

    def _on_ringing(self, event: LegRinging, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.DIALING:
            leg.phase = LegPhase.RINGING
            self.emit(d.LegRang(self.call_id, now, leg.name))

    def _on_leg_answered(self, event: LegAnswered, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.CLOSING:
            self.emit(Hangup(leg.name, "answered after cancel"))  # 200 crossed our CANCEL
            return
        if leg.phase not in UNANSWERED or self.state is not State.HUNTING:
            raise IllegalEvent(f"LegAnswered for {leg.name} in phase {leg.phase.value}")
        leg.phase = LegPhase.WHISPER
        leg.answered_at = now
        self.emit(d.LegPickedUp(self.call_id, now, leg.name, leg.candidate.member_id))
        policy = self._policy()
        if not policy.require_accept:
            self._accept(leg, now)
            return
        leg.deadline = now + WHISPER_ALLOWANCE_SECONDS + policy.confirm_seconds
        self.emit(Play(leg.name, self._whisper()))

    def _whisper(self) -> tuple[Prompt, ...]:
        p = self.dialplan.prompts
        practice = (
            Prompt(self.caller.practice_name)
            if self.caller.practice_name
            else p.whisper_unknown_practice.as_prompt()
        )
        assert self.specialty is not None
        name = self.env.specialty_names.get(self.specialty, self.specialty)
        return (
            p.whisper_intro.as_prompt(),
            practice,
            p.whisper_about.as_prompt(),
            Prompt(name),
            p.whisper_keys.as_prompt(),
        )

    def _policy(self) -> HuntPolicy:
        assert self.specialty is not None
        return self.dialplan.specialties[self.specialty]

    def _on_leg_failed(self, event: LegFailed, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.phase in (LegPhase.CLOSING, LegPhase.DONE):
            leg.phase = LegPhase.DONE  # the report of a leg we already ended
            return
        if leg.phase is LegPhase.ACCEPTED:
            leg.phase = LegPhase.DONE
            self._consultant_left(leg, now)
            return
        result = (
            d.LegResult.HUNG_UP
            if leg.phase is LegPhase.WHISPER
            else result_for_status(event.status)
        )
        leg.phase = LegPhase.DONE
        self._leg_lost(leg, result, event.status, now)

    def _on_hung_up(self, event: HungUp, now: float) -> None:
        if event.leg == GP:
            self._gp_left(now)
            return
        leg = self.legs[event.leg]
        if leg.phase in (LegPhase.CLOSING, LegPhase.DONE):
            leg.phase = LegPhase.DONE
            return
        if leg.phase is LegPhase.ACCEPTED:
            leg.phase = LegPhase.DONE
            self._consultant_left(leg, now)
            return
        result = d.LegResult.HUNG_UP if leg.phase is LegPhase.WHISPER else d.LegResult.ERROR
        leg.phase = LegPhase.DONE
        self._leg_lost(leg, result, 0, now)

    def _on_media_timeout(self, event: MediaTimeout, now: float) -> None:
        if event.leg == GP:
            self._gp_gone = True
            self.emit(Hangup(GP, "media timeout"))
            self._finish(d.EndReason.MEDIA_TIMEOUT, now)
            return
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.ACCEPTED:
            self.emit(Hangup(leg.name, "media timeout"))
            leg.phase = LegPhase.CLOSING
            self._consultant_left(leg, now)
        elif leg.phase in LIVE:
            self._leg_lost(leg, d.LegResult.ERROR, 0, now)

    def _on_digit_hunting(self, event: Digit, now: float) -> None:
        if event.leg == GP:
            return  # the GP is on hold: keys do nothing
        leg = self.legs[event.leg]
        if leg.phase is not LegPhase.WHISPER:
            return  # keys during ringing or the conversation are not ours
        if event.digit == "1":
            self._accept(leg, now)
        elif event.digit == "2":
            self._leg_lost(leg, d.LegResult.DECLINED, 0, now)
        else:
            self.emit(Play(leg.name, (self.dialplan.prompts.whisper_keys.as_prompt(),)))

    def _on_prompt_done_hunting(self, event: PromptDone, now: float) -> None:
        if event.leg == GP:
            if self.gp_playing:
                self.gp_playing = False
                self.play_gp(self.dialplan.prompts.hold.as_prompt(), loop=True)
            return
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.WHISPER:
            leg.deadline = now + self._policy().confirm_seconds

    def _accept(self, leg: Leg, now: float) -> None:
        assert self.chosen_at is not None
        assert self.specialty is not None
        leg.phase = LegPhase.ACCEPTED
        leg.deadline = None
        self.winner = leg
        self._stop_hunt(d.LegResult.CANCELLED, now)
        self.state = State.BRIDGED
        self.connected_at = now
        self.emit(StopPlay(GP))
        self.gp_playing = False
        self.emit(Bridge(GP, leg.name))
        self.emit(
            d.Connected(
                self.call_id,
                now,
                self.area,
                self.specialty,
                leg.name,
                leg.candidate.member_id,
                leg.tier,
                now - self.chosen_at,
            )
        )
        self._call_deadline = now + self.env.max_call_seconds

    # -- BRIDGED and SURVEY -------------------------------------------------------------------

    def _consultant_left(self, leg: Leg, now: float) -> None:
        """The consultant hung up first: the GP hears the outcome question."""
        self._close_winner(leg, now)
        self.state = State.SURVEY
        self._survey_tries = 0
        self._ask_survey(now, first=True)

    def _close_winner(self, leg: Leg, now: float) -> None:
        if self.talk_end_at is None:
            self.talk_end_at = now
            self._call_deadline = None
            self._close_leg(leg, d.LegResult.ACCEPTED, 200, now)

    def _ask_survey(self, now: float, *, first: bool) -> None:
        p = self.dialplan.prompts
        if first:
            self.play_gp(p.consultant_gone.as_prompt(), p.survey.as_prompt())
        else:
            self.play_gp(p.invalid.as_prompt(), p.survey.as_prompt())
        self.ivr_deadline = None

    def _on_digit_survey(self, event: Digit, now: float) -> None:
        if event.leg != GP:
            return
        if self.gp_playing:
            self.emit(StopPlay(GP))
            self.gp_playing = False
        if event.digit in "12":
            assert self.specialty is not None
            self.emit(
                d.OutcomeRecorded(self.call_id, now, self.area, self.specialty, event.digit == "1")
            )
            self.farewell(self.dialplan.prompts.thanks.as_prompt(), d.EndReason.COMPLETED, now)
            return
        self._survey_tries += 1
        if self._survey_tries >= self.dialplan.ivr.max_attempts:
            self.farewell(self.dialplan.prompts.goodbye.as_prompt(), d.EndReason.COMPLETED, now)
        else:
            self._ask_survey(now, first=False)

    def _on_prompt_done_survey(self, event: PromptDone, now: float) -> None:
        if event.leg == GP and self.gp_playing:
            self.gp_playing = False
            self.ivr_deadline = now + SURVEY_SECONDS

    def _on_digit_ignored(self, event: Digit, now: float) -> None:
        """Keys in the conversation or during a goodbye are not for us."""

    def _on_prompt_done_ignored(self, event: PromptDone, now: float) -> None:
        """A prompt ending that no longer matters (stopped, or on a leg already gone)."""

    def _on_prompt_done_farewell(self, event: PromptDone, now: float) -> None:
        if event.leg == GP and self.gp_playing:
            self.gp_playing = False
            self._finish(self._end_reason, now)

    # -- deadlines ------------------------------------------------------------------------------

    def _on_tick(self, event: Tick, now: float) -> None:
        for leg in list(self.legs.values()):
            if leg.deadline is not None and leg.deadline <= now:
                if leg.phase in UNANSWERED:
                    self._leg_lost(leg, d.LegResult.NO_ANSWER, 487, now)
                elif leg.phase is LegPhase.WHISPER:
                    self._leg_lost(leg, d.LegResult.NO_CONFIRM, 0, now)
        if self.state is State.HUNTING and self._hunter is not None:
            deadline = self._hunter.next_deadline()
            if deadline is not None and deadline <= now:
                self._dial(self._hunter.on_timer(now), now)
                self._maybe_give_up(now)
        if (
            self.state is State.HUNTING
            and self._wait_deadline is not None
            and self._wait_deadline <= now
        ):
            self._stop_hunt(d.LegResult.CANCELLED, now)
            self.emit(StopPlay(GP))
            self.farewell(self.dialplan.prompts.nobody.as_prompt(), d.EndReason.MAX_WAIT, now)
        if self._call_deadline is not None and self._call_deadline <= now:
            self._call_deadline = None
            self._end_call(d.EndReason.MAX_CALL_LENGTH, now)
        if self.ivr_deadline is not None and self.ivr_deadline <= now:
            self.ivr_deadline = None
            if self.state is State.SURVEY:
                self.farewell(self.dialplan.prompts.goodbye.as_prompt(), d.EndReason.COMPLETED, now)
            else:
                self.ivr_timeout(now)
        if self._farewell_deadline is not None and self._farewell_deadline <= now:
            self._finish(self._end_reason, now)

    # -- the end ----------------------------------------------------------------------------------

    def _gp_left(self, now: float) -> None:
        self._gp_gone = True
        if self.state in (State.GREETING, State.NHS, State.MENU, State.OFFERED):
            self._finish(d.EndReason.GP_HANGUP_IVR, now)
        elif self.state is State.HUNTING:
            self._finish(d.EndReason.GP_HANGUP_HUNT, now)
        elif self.state is State.FAREWELL:
            self._finish(self._end_reason, now)
        else:
            self._finish(d.EndReason.COMPLETED, now)

    def _end_call(self, reason: d.EndReason, now: float) -> None:
        if self.winner is not None:
            self._close_winner(self.winner, now)
        self._finish(reason, now)

    def _finish(self, reason: d.EndReason, now: float) -> None:
        if self.winner is not None:
            self._close_winner(self.winner, now)
        self._stop_hunt(d.LegResult.CANCELLED, now)
        if not self._gp_gone:
            self._gp_gone = True
            self.emit(Hangup(GP, reason.value))
        self.ivr_deadline = None
        self._call_deadline = None
        self._farewell_deadline = None
        self.state = State.ENDED
        talk = 0.0
        if self.connected_at is not None:
            talk = (self.talk_end_at or now) - self.connected_at
        self.emit(
            d.CallEnded(
                self.call_id,
                now,
                self.area,
                self.specialty,
                reason,
                self.connected_at is not None,
                talk,
            )
        )

    def _on_late_leg_report(self, event: LegFailed | HungUp | LegAnswered, now: float) -> None:
        """After the end, only the shell's reports of legs we already ended may arrive."""
        if event.leg == GP:
            return
        leg = self.legs[event.leg]
        if leg.phase not in (LegPhase.CLOSING, LegPhase.DONE):
            raise IllegalEvent(f"{type(event).__name__} for live leg {leg.name} after the end")
        if isinstance(event, LegAnswered) and leg.phase is LegPhase.CLOSING:
            self.emit(Hangup(leg.name, "answered after cancel"))
            return
        leg.phase = LegPhase.DONE

    def _on_leg_event_after_bridge(self, event: Event, now: float) -> None:
        """Losing legs may still report in BRIDGED, SURVEY and FAREWELL."""
        if isinstance(event, LegRinging):
            return
        if isinstance(event, LegAnswered):
            self._on_late_leg_report(event, now)
        elif isinstance(event, LegFailed):
            self._on_leg_failed(event, now)
        elif isinstance(event, HungUp):
            self._on_hung_up(event, now)


_Handler = Callable[[CallFlow, Event], None]
_Any = Callable[..., None]

_LATE = {
    LegRinging: CallFlow._on_leg_event_after_bridge,
    LegAnswered: CallFlow._on_leg_event_after_bridge,
    LegFailed: CallFlow._on_leg_event_after_bridge,
}

_TABLE: dict[State, dict[type, _Any]] = {
    State.OFFERED: {Offered: CallFlow._on_offered, HungUp: CallFlow._on_hung_up},
    State.GREETING: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.NHS: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.MENU: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.HUNTING: {
        LegRinging: CallFlow._on_ringing,
        LegAnswered: CallFlow._on_leg_answered,
        LegFailed: CallFlow._on_leg_failed,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_hunting,
        PromptDone: CallFlow._on_prompt_done_hunting,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.BRIDGED: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_ignored,
        PromptDone: CallFlow._on_prompt_done_ignored,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.SURVEY: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_survey,
        PromptDone: CallFlow._on_prompt_done_survey,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.FAREWELL: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_ignored,
        PromptDone: CallFlow._on_prompt_done_farewell,
        MediaTimeout: CallFlow._on_media_timeout,
        Tick: CallFlow._on_tick,
    },
    State.ENDED: {
        LegFailed: CallFlow._on_late_leg_report,
        LegAnswered: CallFlow._on_late_leg_report,
        HungUp: CallFlow._on_late_leg_report,
    },
}
