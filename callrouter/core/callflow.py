"""The call flow: one GP call from INVITE to the last BYE, as a pure state machine.

``handle(event, now)`` returns effects (commands for the shell, domain events for the sinks);
``next_deadline()`` says when the shell must call ``handle(Tick(), now)``. The rules:

1. ``DISPATCH`` (at the end of this file) lists, per state, every event type that may arrive and
   the one method that handles it. Anything else raises ``IllegalEvent`` and leaves the flow as
   it was: handlers check before they change anything.
2. The state changes only through ``_go``, and only along ``TRANSITIONS`` below; any other
   change raises ``IllegalTransition`` with the state untouched. Each change disarms the digit
   timer (it belongs to the state that armed it).
3. Events that races make legal are in the table and do nothing (a PromptDone for a prompt we
   already stopped, a 487 for a leg we cancelled, a digit while we hunt).
4. Every leg the flow starts is ended by it: on the way out every live leg gets a Hangup, and the
   leg book reports each leg's end exactly once, when its result is known.
5. Time comes only from ``now``; deadlines are absolute seconds on the shell's clock.

The parts, each answering with data: ``IvrSession`` (ivr_session.py) turns the GP's keys into
outcomes; ``Hunt`` (hunting.py) rings whom the ``Hunter`` picks and turns the consultants' legs
into outcomes; ``LegBook`` (legs.py) owns the legs; ``Timers`` (timers.py) the deadlines. The
line's prompts, menu and policies come compiled (line.py, from ``settings/compile.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from callrouter.core import domain as d
from callrouter.core import events as ev
from callrouter.core import ivr_session as iv
from callrouter.core.commands import Answer, Hangup, Play, Prompt, StopPlay
from callrouter.core.directory import UNKNOWN, CallerIdentity
from callrouter.core.env import Effect, FlowEnv, IllegalEvent, IllegalTransition, PlanSource
from callrouter.core.events import GP
from callrouter.core.hunting import Accept, Hunt, HuntOutcome, HuntOver, LegEvent
from callrouter.core.ivr_session import IvrOutcome, IvrSession
from callrouter.core.legs import Leg, LegBook, LegPhase, result_for_status
from callrouter.core.line import Line
from callrouter.core.timers import Timers

__all__ = ["CallFlow", "Effect", "FlowEnv", "IllegalEvent", "IllegalTransition", "PlanSource"]

FAREWELL_LIMIT_SECONDS = 60.0  # a goodbye prompt that never reports done still ends the call


class State(Enum):
    OFFERED = "offered"  # INVITE in, not yet answered
    GREETING = "greeting"
    NHS = "nhs"  # keying the patient's NHS number
    MENU = "menu"  # choosing the specialty
    HUNTING = "hunting"  # ringing consultants; the GP holds
    BRIDGED = "bridged"  # GP and consultant talk
    SURVEY = "survey"  # the consultant left: the GP answers the outcome question
    FAREWELL = "farewell"  # a last prompt to the GP, then hang up
    ENDED = "ended"

    __hash__ = object.__hash__  # members are singletons: hash by identity, in C


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.OFFERED: frozenset({S.GREETING, S.FAREWELL, S.ENDED}),  # closed or unknown: farewell
    S.GREETING: frozenset({S.NHS, S.MENU, S.ENDED}),
    S.NHS: frozenset({S.MENU, S.FAREWELL, S.ENDED}),
    S.MENU: frozenset({S.HUNTING, S.FAREWELL, S.ENDED}),  # nobody on the rota: farewell
    S.HUNTING: frozenset({S.BRIDGED, S.FAREWELL, S.ENDED}),
    S.BRIDGED: frozenset({S.SURVEY, S.ENDED}),
    S.SURVEY: frozenset({S.FAREWELL, S.ENDED}),
    S.FAREWELL: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}

# Why the call ends when the GP hangs up, by state (in FAREWELL: the reason already given).
_GP_LEFT = dict.fromkeys((S.OFFERED, S.GREETING, S.NHS, S.MENU), d.EndReason.GP_HANGUP_IVR)
_GP_LEFT |= {S.HUNTING: d.EndReason.GP_HANGUP_HUNT}
_GP_LEFT |= {S.BRIDGED: d.EndReason.COMPLETED, S.SURVEY: d.EndReason.COMPLETED}
LateReport = ev.LegFailed | ev.HungUp | ev.LegAnswered | ev.Lost
_TO_HUNT = (ev.LegRinging, ev.LegAnswered, ev.Digit, ev.PromptDone)  # in HUNTING
_LEG_ENDS = (ev.LegFailed, ev.LegAnswered, ev.HungUp, ev.Lost)  # what may come after the end


class CallFlow:
    """One call. ``repr`` shows state and legs: ``<CallFlow c1 HUNTING L1=ringing>``."""

    def __init__(self, call_id: str, line: Line, env: FlowEnv, now: float) -> None:
        self.call_id = call_id
        self.line = line
        self.env = env
        self.state = State.OFFERED
        self.legs = LegBook(call_id)
        self.timers = Timers()  # "digit" (IVR, survey), "call" (talk) and "farewell"
        self.ivr = IvrSession(line)
        self.hunt: Hunt | None = None  # while HUNTING
        self.caller: CallerIdentity = UNKNOWN
        self.specialty: str | None = None
        self.winner: Leg | None = None
        self.answered_at = now
        self.connected_at: float | None = None
        self.talk_end_at: float | None = None
        self.end_reason = d.EndReason.COMPLETED  # said in FAREWELL, reported at the end
        self.gp_prompt = False  # a one-shot prompt plays to the GP: its PromptDone will come
        self.gp_gone = False  # the GP's leg is down: nothing more is sent to it
        self._out: list[Effect] = []

    def __repr__(self) -> str:
        legs = repr(self.legs)
        return f"<CallFlow {self.call_id} {self.state.name}{' ' + legs if legs else ''}>"

    # -- the public surface -----------------------------------------------------------------

    def handle(self, event: ev.Event, now: float) -> list[Effect]:
        handler = DISPATCH[self.state].get(type(event))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} in state {self.state.name}")
        self.legs.check(event)
        out: list[Effect] = []
        self._out = out
        handler(self, event, now)
        return out

    def next_deadline(self) -> float | None:
        soonest = self.timers.soonest()
        hunt = None if self.hunt is None else self.hunt.next_deadline()
        return soonest if hunt is None or (soonest is not None and soonest <= hunt) else hunt

    @property
    def ended(self) -> bool:
        return self.state is State.ENDED

    def _go(self, to: State) -> None:
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.name} -> {to.name}")
        self.state = to
        self.timers.clear("digit")

    def _play_gp(self, *prompts: Prompt, loop: bool = False) -> None:
        self.gp_prompt = not loop
        self._out.append(Play(GP, prompts, loop))

    def _barge_in(self) -> None:
        if self.gp_prompt:
            self.gp_prompt = False
            self._out.append(StopPlay(GP))

    def _farewell(self, prompt: Prompt, reason: d.EndReason, now: float) -> None:
        """Say a last prompt to the GP, then hang up."""
        self.end_reason = reason
        self._go(State.FAREWELL)
        self._play_gp(prompt)
        self.timers.set("farewell", now + FAREWELL_LIMIT_SECONDS)

    def _ignore(self, event: ev.Event, now: float) -> None: ...  # made legal by a race (rule 3)

    # -- OFFERED ------------------------------------------------------------------------------

    def _on_offered(self, event: ev.Offered, now: float) -> None:
        line, cid = self.line, self.call_id
        who = self.caller = line.callers.identify(event.caller)
        self.answered_at = now
        offered = d.CallOffered(cid, now, line.area, event.caller, who.practice_name, who.clinician)
        self._out += (offered, Answer(), d.CallAnswered(cid, now))
        if not self.env.is_open(line.area, now):
            self._farewell(line.prompts.out_of_hours, d.EndReason.OUT_OF_HOURS, now)
        elif not who.known and line.reject_unknown:
            self._farewell(line.prompts.unknown_caller, d.EndReason.UNKNOWN_CALLER, now)
        else:
            self._go(State.GREETING)
            self._play_gp(line.prompts.greeting)

    # -- GREETING, NHS, MENU: the GP's keys go to the IVR session ------------------------------

    def _greeting_done(self, event: ev.PromptDone, now: float) -> None:
        if event.leg == GP and self.gp_prompt:
            self._play_gp(*self._after_greeting().prompts)

    def _greeting_key(self, event: ev.Digit, now: float) -> None:
        self._barge_in()
        self._after_greeting()  # not said: the GP knows what to key
        DISPATCH[self.state][ev.Digit](self, event, now)  # the key counts in the step it opens

    def _after_greeting(self) -> iv.Say:
        self.gp_prompt = False
        if self.ivr.asks_nhs:
            self._go(State.NHS)
            return self.ivr.start_nhs()
        self._go(State.MENU)
        return self.ivr.start_menu()

    def _ivr_prompt_done(self, event: ev.PromptDone, now: float) -> None:
        if event.leg == GP and self.gp_prompt:
            self.gp_prompt = False
            self.timers.set("digit", now + self.ivr.first_wait)

    def _nhs_key(self, event: ev.Digit, now: float) -> None:
        self._keyed(self.ivr.nhs_digit(event.digit), now)

    def _menu_key(self, event: ev.Digit, now: float) -> None:
        self._keyed(self.ivr.menu_digit(event.digit), now)  # None: a late '#', dropped

    def _keyed(self, outcome: IvrOutcome | None, now: float) -> None:
        if outcome is not None:
            self._barge_in()  # a key stops the prompt
            self._ivr_outcome(outcome, now)

    def _ivr_outcome(self, outcome: IvrOutcome, now: float) -> None:
        match outcome:
            case iv.Say(prompts):
                self.timers.clear("digit")
                self._play_gp(*prompts)
            case iv.Wait(seconds):
                self.timers.set("digit", now + seconds)
            case iv.NhsDone(number):
                if number is not None:
                    self._out.append(d.NhsNumberCaptured(self.call_id, now, number))
                self._go(State.MENU)
                self._play_gp(*self.ivr.start_menu(after_nhs=True).prompts)
            case iv.Picked(specialty):
                self._specialty_chosen(specialty, now)
            case iv.Rated(helped):
                assert self.specialty is not None
                area = self.line.area
                self._out.append(d.OutcomeRecorded(self.call_id, now, area, self.specialty, helped))
                self._farewell(self.line.prompts.thanks, d.EndReason.COMPLETED, now)
            case iv.GiveUp(prompt, reason):
                self._farewell(prompt, reason, now)

    def _specialty_chosen(self, specialty: str, now: float) -> None:
        line, env = self.line, self.env
        self.specialty = specialty
        waited = now - self.answered_at
        self._out.append(d.SpecialtyChosen(self.call_id, now, line.area, specialty, waited))
        plan = env.plans.plan(line.area, specialty, now)
        if plan.is_empty():  # nobody on the rota now: say so at once rather than hold
            self._farewell(line.prompts.nobody, d.EndReason.NOBODY_ACCEPTED, now)
            return
        self._go(State.HUNTING)
        hunt = self.hunt = Hunt(line, plan, env, self.legs, caller=self.caller, now=now)
        self._play_gp(*line.prompts.hunting)
        self._hunted(hunt.start(now, self._out), now)

    # -- HUNTING: the consultants' legs go to the hunt ------------------------------------------

    def _hunted(self, outcome: HuntOutcome, now: float) -> None:
        match outcome:
            case Accept(leg):  # bridge the winner; the other legs are cancelled
                assert self.hunt is not None
                self.hunt.connect(leg, now, self._out)
                self.hunt, self.winner, self.connected_at = None, leg, now
                self._go(State.BRIDGED)
                self.gp_prompt = False
                self.timers.set("call", now + self.env.max_call_seconds)
            case HuntOver(reason):  # cancel every leg, apologise to the GP, then hang up
                self._stop_hunt(now)
                self._out.append(StopPlay(GP))
                self._farewell(self.line.prompts.nobody, reason, now)

    def _stop_hunt(self, now: float) -> None:
        if self.hunt is not None:
            self.hunt.stop(self.winner, now, self._out)
            self.hunt = None

    def _lost(self, leg: Leg, result: d.LegResult, status: int, now: float) -> None:
        assert self.hunt is not None  # outside the hunt the winner is the only live leg
        self._hunted(self.hunt.lost(leg, result, status, now, self._out), now)

    def _to_hunt(self, event: LegEvent, now: float) -> None:
        """What a consultant's leg reports goes to the hunt; the GP only holds."""
        if event.leg != GP:
            assert self.hunt is not None
            self._hunted(self.hunt.report(event, self.legs[event.leg], now, self._out), now)
        elif isinstance(event, ev.PromptDone) and self.gp_prompt:
            self._play_gp(self.line.prompts.hold, loop=True)  # "hunting" said: music till then

    def _on_leg_failed(self, event: ev.LegFailed, now: float) -> None:
        self._leg_over(self.legs[event.leg], result_for_status(event.status), event.status, now)

    def _on_hung_up(self, event: ev.HungUp, now: float) -> None:
        if event.leg == GP:
            self.gp_gone = True
            self._finish(_GP_LEFT.get(self.state, self.end_reason), now)
        else:
            self._leg_over(self.legs[event.leg], d.LegResult.ERROR, 0, now)

    def _leg_over(self, leg: Leg, if_unanswered: d.LegResult, status: int, now: float) -> None:
        """The far side ended ``leg``: a report of one we ended, the winner leaving, or a loss."""
        phase, leg.phase = leg.phase, LegPhase.DONE
        if phase is LegPhase.ACCEPTED:
            self._consultant_left(leg, now)
        elif not phase.ended:  # else the report of a leg we already ended
            result = d.LegResult.HUNG_UP if phase is LegPhase.WHISPER else if_unanswered
            self._lost(leg, result, status, now)

    def _on_media_timeout(self, event: ev.MediaTimeout, now: float) -> None:
        if event.leg == GP:
            self.gp_gone = True
            self._out.append(Hangup(GP, "media timeout"))
            self._finish(d.EndReason.MEDIA_TIMEOUT, now)
            return
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.ACCEPTED:
            self._out.append(Hangup(leg.name, "media timeout"))
            leg.phase = LegPhase.CLOSING
            self._consultant_left(leg, now)
        elif leg.phase.live:
            self._lost(leg, d.LegResult.ERROR, 0, now)

    # -- BRIDGED, SURVEY, FAREWELL --------------------------------------------------------------

    def _close_winner(self, leg: Leg, now: float) -> None:
        if self.talk_end_at is None:
            self.talk_end_at = now
            self.timers.clear("call")
            self._out += self.legs.close(leg, d.LegResult.ACCEPTED, 200, now)

    def _consultant_left(self, leg: Leg, now: float) -> None:
        """The consultant hung up first: the GP hears the outcome question."""
        self._close_winner(leg, now)
        self._go(State.SURVEY)
        self._play_gp(*self.ivr.start_survey().prompts)

    def _survey_key(self, event: ev.Digit, now: float) -> None:
        if event.leg == GP:
            self._keyed(self.ivr.survey_digit(event.digit), now)

    def _farewell_done(self, event: ev.PromptDone, now: float) -> None:
        if event.leg == GP and self.gp_prompt:
            self.gp_prompt = False
            self._finish(self.end_reason, now)

    def _late_report(self, event: LateReport, now: float) -> None:
        """After the hunt, only reports of legs we already ended may arrive."""
        self._out += self.legs.late_report(event)

    # -- any state: deadlines, lost legs, the end -----------------------------------------------

    def _on_tick(self, event: ev.Tick, now: float) -> None:
        if self.hunt is not None:
            self._hunted(self.hunt.tick(now, self._out), now)
        if self.timers.due("call", now):
            self._finish(d.EndReason.MAX_CALL_LENGTH, now)
        if self.timers.due("digit", now):
            self._ivr_outcome(DIGIT_TIMEOUT[self.state](self.ivr), now)
        if self.timers.due("farewell", now):
            self._finish(self.end_reason, now)

    def _on_lost(self, event: ev.Lost, now: float) -> None:
        """A worker died: losing the GP ends the call as lost; a consultant leg failed."""
        if event.leg == GP:
            self.gp_gone = True  # nothing can be said to a leg that is gone
            self._finish(d.EndReason.LOST, now)
        else:
            self._on_leg_failed(ev.LegFailed(event.leg, 500, "lost with its worker"), now)

    def _finish(self, reason: d.EndReason, now: float) -> None:
        if self.winner is not None:
            self._close_winner(self.winner, now)
        self._stop_hunt(now)
        if not self.gp_gone:
            self.gp_gone = True
            self._out.append(Hangup(GP, reason.value))
        self._go(State.ENDED)
        self.timers.clear_all()
        start, end = self.connected_at, self.talk_end_at or now
        talk = 0.0 if start is None else end - start
        area, specialty = self.line.area, self.specialty
        ended = d.CallEnded(self.call_id, now, area, specialty, reason, start is not None, talk)
        self._out.append(ended)


F = CallFlow
_Row = dict[type, Callable[..., None]]
_ANY_TIME: _Row = {
    ev.HungUp: F._on_hung_up,
    ev.MediaTimeout: F._on_media_timeout,
    ev.Lost: F._on_lost,
    ev.Tick: F._on_tick,
}
_LATE: _Row = {  # losing legs may still report after the hunt
    ev.LegRinging: F._ignore,
    ev.LegAnswered: F._late_report,
    ev.LegFailed: F._on_leg_failed,
}
DISPATCH: dict[State, _Row] = {
    S.OFFERED: {ev.Offered: F._on_offered, ev.HungUp: F._on_hung_up, ev.Lost: F._on_lost},
    S.GREETING: {**_ANY_TIME, ev.PromptDone: F._greeting_done, ev.Digit: F._greeting_key},
    S.NHS: {**_ANY_TIME, ev.PromptDone: F._ivr_prompt_done, ev.Digit: F._nhs_key},
    S.MENU: {**_ANY_TIME, ev.PromptDone: F._ivr_prompt_done, ev.Digit: F._menu_key},
    S.HUNTING: {**_ANY_TIME, **dict.fromkeys(_TO_HUNT, F._to_hunt), ev.LegFailed: F._on_leg_failed},
    S.BRIDGED: {**_ANY_TIME, **_LATE, ev.Digit: F._ignore, ev.PromptDone: F._ignore},
    S.SURVEY: {**_ANY_TIME, **_LATE, ev.Digit: F._survey_key, ev.PromptDone: F._ivr_prompt_done},
    S.FAREWELL: {**_ANY_TIME, **_LATE, ev.Digit: F._ignore, ev.PromptDone: F._farewell_done},
    S.ENDED: dict.fromkeys(_LEG_ENDS, F._late_report),
}
# Where the digit timer leads, in the states that arm it: the IVR session's answer to silence.
DIGIT_TIMEOUT: dict[State, Callable[[IvrSession], IvrOutcome]] = {
    S.NHS: IvrSession.nhs_timeout,
    S.MENU: IvrSession.menu_timeout,
    S.SURVEY: IvrSession.survey_timeout,
}
