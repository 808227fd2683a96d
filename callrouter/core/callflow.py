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

from collections.abc import Callable

from callrouter.core import domain as d
from callrouter.core.directory import CallerDirectory, CallerIdentity
from callrouter.core.events import (
    GP,
    Digit,
    Event,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    Lost,
    MediaTimeout,
    Offered,
    PromptDone,
    Tick,
)
from callrouter.core.flow_after import AfterMixin
from callrouter.core.flow_base import (
    ENDED,
    FAREWELL_LIMIT_SECONDS,
    HUNTING,
    LEG_WHISPER,
    RESULT_CANCELLED,
    SURVEY_SECONDS,
    WHISPER_ALLOWANCE_SECONDS,
    Effect,
    FlowEnv,
    IllegalEvent,
    PlanSource,
    spoken,
)
from callrouter.core.flow_hunt import HuntMixin
from callrouter.core.flow_ivr import IvrMixin
from callrouter.core.hunt import Hunter
from callrouter.core.legs import UNANSWERED, LegPhase
from callrouter.core.reuse import ANSWER, hangup
from callrouter.core.states import State
from callrouter.settings.dialplan import UnknownCallerPolicy

_Any = Callable[..., None]

__all__ = [
    "FAREWELL_LIMIT_SECONDS",
    "SURVEY_SECONDS",
    "WHISPER_ALLOWANCE_SECONDS",
    "CallFlow",
    "Effect",
    "FlowEnv",
    "IllegalEvent",
    "PlanSource",
]

_UNANSWERED = tuple(UNANSWERED)
# States before the specialty is chosen, as a tuple: one identity test instead of four reads.
_BEFORE_CHOICE = (State.GREETING, State.NHS, State.MENU, State.OFFERED)
# Read once a call; bound once for the reason given in flow_base (slow Enum reads on 3.11).
_GREETING, _FAREWELL = State.GREETING, State.FAREWELL
_REJECT = UnknownCallerPolicy.REJECT
_IDENTITIES: dict[tuple[int, str], tuple[CallerDirectory, CallerIdentity]] = {}


def _identify(directory: CallerDirectory, caller: str) -> CallerIdentity:
    """``directory.identify``, remembered: the same practices call again and again."""
    key = (id(directory), caller)
    found = _IDENTITIES.get(key)
    if found is None or found[0] is not directory:
        if len(_IDENTITIES) > 65_536:
            _IDENTITIES.clear()
        found = _IDENTITIES[key] = (directory, directory.identify(caller))
    return found[1]


_LEG_REPORTS = (LegRinging, LegAnswered, LegFailed)


class CallFlow(HuntMixin, AfterMixin):
    """One call. ``repr`` shows state and legs: ``<CallFlow c1 HUNTING L1=ringing>``."""

    _state: State
    _handlers: dict[type, _Any]

    # The state carries its row of the table, so ``handle`` needs no lookup by enum member.
    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, value: State) -> None:
        self._state = value
        self._handlers = _ROWS[id(value)]  # by identity: hashing an Enum member is slow

    # -- the public surface ---------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Effect]:
        kind = type(event)
        handler = self._handlers.get(kind)
        if handler is None:
            raise IllegalEvent(f"{kind.__name__} in state {self._state.name}")
        if kind is not Tick and kind is not Offered:
            leg = event.leg  # type: ignore[union-attr]
            if leg == GP or leg not in self.legs:  # the common case, a known leg, costs one test
                self._check_leg(event)
        out: list[Effect] = []
        self._out = out
        handler(self, event, now)
        return out

    def next_deadline(self) -> float | None:
        soonest: float | None = None
        for t in (
            self.ivr_deadline,
            self._wait_deadline,
            self._call_deadline,
            self._farewell_deadline,
        ):
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        hunter = self._hunter
        if hunter is not None:
            t = hunter.next_deadline()
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        for leg in self.legs.values():
            t = leg.deadline
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        return soonest

    @property
    def ended(self) -> bool:
        return self._state is ENDED

    def _check_leg(self, event: Event) -> None:
        """Events that name a leg must name one of ours (and only reports may not be the GP's)."""
        kind = type(event)
        leg = event.leg  # type: ignore[union-attr]
        if leg == GP:
            if kind in _LEG_REPORTS:
                raise IllegalEvent(f"{kind.__name__} names the GP leg")
            return
        if leg not in self.legs:
            raise IllegalEvent(f"{kind.__name__} for unknown leg {leg!r}")

    # -- OFFERED ----------------------------------------------------------------------------

    def _on_offered(self, event: Offered, now: float) -> None:
        self.caller = _identify(self.env.directories[self.area], event.caller)
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
        self.emit(ANSWER)
        self.emit(d.CallAnswered(self.call_id, now))
        prompts = self.dialplan.prompts
        if not self.env.is_open(self.dialplan, now):
            self.farewell(spoken(prompts.out_of_hours), d.EndReason.OUT_OF_HOURS, now)
        elif not self.caller.known and self.dialplan.unknown_callers is _REJECT:
            self.farewell(spoken(prompts.unknown_caller), d.EndReason.UNKNOWN_CALLER, now)
        else:
            self.state = _GREETING
            self.say_gp(prompts.greeting)

    # -- IVR states (GREETING, NHS, MENU) are in flow_ivr.IvrMixin; it calls back here -----

    def specialty_chosen(self, specialty: str, now: float) -> None:
        self.specialty = specialty
        self.chosen_at = now
        self.ivr_deadline = None
        self.emit(
            d.SpecialtyChosen(self.call_id, now, self.area, specialty, now - self.answered_at)
        )
        env = self.env
        plan = env.plans.plan(self.area, specialty, now)
        if plan.is_empty():  # nobody on the rota now: say so at once rather than hold
            self.farewell(spoken(self.dialplan.prompts.nobody), d.EndReason.NOBODY_ACCEPTED, now)
            return
        policy = plan.policy
        self.state = HUNTING
        self._hunter = Hunter(
            plan, env.strategy_for(policy), env.presence, env.stats, env.free_legs()
        )
        self._wait_deadline = now + policy.max_wait_seconds
        if env.recording_notice is None:
            self.say_gp(self.dialplan.prompts.hunting)
        else:
            self.play_gp(env.recording_notice, spoken(self.dialplan.prompts.hunting))
        self._dial(self._hunter.start(now), now)
        self._maybe_give_up(now)

    # -- HUNTING is in flow_hunt.HuntMixin; BRIDGED, SURVEY and FAREWELL in flow_after ------

    # -- deadlines ------------------------------------------------------------------------------

    def _on_tick(self, event: Tick, now: float) -> None:
        for leg in list(self.legs.values()):
            if leg.deadline is not None and leg.deadline <= now:
                if leg.phase in _UNANSWERED:
                    self._leg_lost(leg, d.LegResult.NO_ANSWER, 487, now)
                elif leg.phase is LEG_WHISPER:
                    self._leg_lost(leg, d.LegResult.NO_CONFIRM, 0, now)
        if self._state is HUNTING and self._hunter is not None:
            deadline = self._hunter.next_deadline()
            if deadline is not None and deadline <= now:
                self._dial(self._hunter.on_timer(now), now)
                self._maybe_give_up(now)
        if (
            self._state is HUNTING
            and self._wait_deadline is not None
            and self._wait_deadline <= now
        ):
            self._give_up(d.EndReason.MAX_WAIT, now)
        if self._call_deadline is not None and self._call_deadline <= now:
            self._call_deadline = None
            self._finish(d.EndReason.MAX_CALL_LENGTH, now)
        if self.ivr_deadline is not None and self.ivr_deadline <= now:
            self.ivr_deadline = None
            if self._state is State.SURVEY:
                self.farewell(spoken(self.dialplan.prompts.goodbye), d.EndReason.COMPLETED, now)
            else:
                self.ivr_timeout(now)
        if self._farewell_deadline is not None and self._farewell_deadline <= now:
            self._finish(self._end_reason, now)

    # -- the end ----------------------------------------------------------------------------------

    def _gp_left(self, now: float) -> None:
        self._gp_gone = True
        state = self._state
        if state in _BEFORE_CHOICE:
            self._finish(d.EndReason.GP_HANGUP_IVR, now)
        elif state is HUNTING:
            self._finish(d.EndReason.GP_HANGUP_HUNT, now)
        elif state is _FAREWELL:
            self._finish(self._end_reason, now)
        else:
            self._finish(d.EndReason.COMPLETED, now)

    def _on_lost(self, event: Lost, now: float) -> None:
        """A worker died: losing the GP ends the call as interrupted; a consultant leg failed."""
        if event.leg == GP:
            self._gp_gone = True  # nothing can be said to a leg that is gone
            self._finish(d.EndReason.INTERRUPTED, now)
        else:
            self._on_leg_failed(LegFailed(event.leg, 500, "lost with its worker"), now)

    def _on_lost_after_end(self, event: Lost, now: float) -> None:
        """The call already ended: a lost leg is only the last report of a leg we ended."""
        if event.leg != GP:
            self.legs[event.leg].phase = LegPhase.DONE

    def _finish(self, reason: d.EndReason, now: float) -> None:
        if self.winner is not None:
            self._close_winner(self.winner, now)
        self._stop_hunt(RESULT_CANCELLED, now)
        if not self._gp_gone:
            self._gp_gone = True
            self.emit(hangup(GP, reason.value))  # shared: one command fewer made per call
        self.ivr_deadline = None
        self._call_deadline = None
        self._farewell_deadline = None
        self.state = ENDED
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


# Losing legs may still report in BRIDGED, SURVEY and FAREWELL.
_LATE: dict[type, _Any] = {
    LegRinging: CallFlow._on_ringing_ignored,
    LegAnswered: CallFlow._on_late_leg_report,
    LegFailed: CallFlow._on_leg_failed,
}

_TABLE: dict[State, dict[type, _Any]] = {
    State.OFFERED: {
        Offered: CallFlow._on_offered,
        HungUp: CallFlow._on_hung_up,
        Lost: CallFlow._on_lost,
    },
    State.GREETING: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.NHS: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.MENU: {
        PromptDone: IvrMixin.on_prompt_done_ivr,
        Digit: IvrMixin.on_digit_ivr,
        HungUp: CallFlow._on_hung_up,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
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
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.BRIDGED: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_ignored,
        PromptDone: CallFlow._on_prompt_done_ignored,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.SURVEY: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_survey,
        PromptDone: CallFlow._on_prompt_done_survey,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.FAREWELL: {
        **_LATE,
        HungUp: CallFlow._on_hung_up,
        Digit: CallFlow._on_digit_ignored,
        PromptDone: CallFlow._on_prompt_done_farewell,
        MediaTimeout: CallFlow._on_media_timeout,
        Lost: CallFlow._on_lost,
        Tick: CallFlow._on_tick,
    },
    State.ENDED: {
        LegFailed: CallFlow._on_late_leg_report,
        LegAnswered: CallFlow._on_late_leg_report,
        HungUp: CallFlow._on_late_leg_report,
        Lost: CallFlow._on_lost_after_end,
    },
}
_ROWS = {id(state): row for state, row in _TABLE.items()}
