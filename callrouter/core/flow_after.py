"""After the accept: the conversation (BRIDGED), the outcome question (SURVEY), the goodbye
(FAREWELL), and the late reports of losing legs that may still arrive meanwhile or after the end.

A mixin so the call flow's table (callflow.py) can name these handlers.
"""

from __future__ import annotations

from callrouter.core import domain as d
from callrouter.core.events import (
    GP,
    Digit,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    PromptDone,
)
from callrouter.core.flow_base import ENDED_PHASES, SURVEY_SECONDS, FlowBase, IllegalEvent, spoken
from callrouter.core.legs import Leg, LegPhase
from callrouter.core.reuse import STOP_GP, hangup
from callrouter.core.states import State


class AfterMixin(FlowBase):
    """BRIDGED, SURVEY and FAREWELL handlers."""

    def _consultant_left(self, leg: Leg, now: float) -> None:
        """The consultant hung up first: the GP hears the outcome question."""
        self._close_winner(leg, now)
        self.state = State.SURVEY
        self._survey_tries = 0
        self._ask_survey(now, first=True)

    def _ask_survey(self, now: float, *, first: bool) -> None:
        p = self.dialplan.prompts
        lead = p.consultant_gone if first else p.invalid
        self.play_gp(spoken(lead), spoken(p.survey))
        self.ivr_deadline = None

    def _on_digit_survey(self, event: Digit, now: float) -> None:
        if event.leg != GP:
            return
        if self.gp_playing:
            self.emit(STOP_GP)
            self.gp_playing = False
        prompts = self.dialplan.prompts
        if event.digit in "12":
            assert self.specialty is not None
            self.emit(
                d.OutcomeRecorded(self.call_id, now, self.area, self.specialty, event.digit == "1")
            )
            self.farewell(spoken(prompts.thanks), d.EndReason.COMPLETED, now)
            return
        self._survey_tries += 1
        if self._survey_tries >= self.dialplan.ivr.max_attempts:
            self.farewell(spoken(prompts.goodbye), d.EndReason.COMPLETED, now)
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

    def _on_late_leg_report(self, event: LegFailed | HungUp | LegAnswered, now: float) -> None:
        """After the end, only the shell's reports of legs we already ended may arrive."""
        if event.leg == GP:
            return
        leg = self.legs[event.leg]
        if leg.phase not in ENDED_PHASES:
            raise IllegalEvent(f"{type(event).__name__} for live leg {leg.name} after the end")
        if isinstance(event, LegAnswered) and leg.phase is LegPhase.CLOSING:
            self.emit(hangup(leg.name, "answered after cancel"))
            return
        leg.phase = LegPhase.DONE

    def _on_ringing_ignored(self, event: LegRinging, now: float) -> None:
        """A losing leg's 180 after the winner accepted: nothing to do."""
