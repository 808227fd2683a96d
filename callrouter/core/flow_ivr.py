"""The IVR half of the call flow: greeting, NHS-number capture and the specialty menu.

A mixin so the call flow's table can name these handlers; it owns the digit buffers, attempts and
the IVR deadline, and calls back into the flow (``specialty_chosen``, ``farewell``) when done.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING

from callrouter.core import domain as d
from callrouter.core import ivr
from callrouter.core.commands import Prompt, StopPlay
from callrouter.core.events import GP, Digit, PromptDone
from callrouter.core.states import State
from callrouter.settings.dialplan import Dialplan, Menu, NhsNumberCapture

if TYPE_CHECKING:
    from callrouter.core.callflow import Effect


class _Stage(Enum):
    GREETING = "greeting"
    NHS = "nhs"
    MENU = "menu"


class IvrMixin:
    """Digit collection with barge-in, timeouts and bounded retries."""

    state: State

    def __init__(self, dialplan: Dialplan, specialty_names: Mapping[str, str]) -> None:
        self.ivr_deadline: float | None = None
        self.gp_playing = False
        self._ivr_plan = dialplan
        self._names = specialty_names
        self._stage = _Stage.GREETING
        self._attempts = 0
        self._menu = ivr.MenuEntry(dialplan.menu)
        self._nhs = ivr.NhsEntry(dialplan.nhs_number is not NhsNumberCapture.REQUIRED)

    # Provided by CallFlow.
    def emit(self, effect: Effect) -> None:
        raise NotImplementedError

    def play_gp(self, *prompts: Prompt, loop: bool = False) -> None:
        raise NotImplementedError

    def farewell(self, prompt: Prompt, reason: d.EndReason, now: float) -> None:
        raise NotImplementedError

    def specialty_chosen(self, specialty: str, now: float) -> None:
        raise NotImplementedError

    def _set_state(self, stage: _Stage) -> None:
        self._stage = stage
        self.state = {_Stage.NHS: State.NHS, _Stage.MENU: State.MENU}.get(stage, State.GREETING)

    # -- entering a stage -----------------------------------------------------------------

    def _enter_nhs(self, now: float, *, speak: bool = True) -> None:
        self._set_state(_Stage.NHS)
        self._attempts = 0
        if speak:
            self.play_gp(self._ivr_plan.prompts.nhs_number.as_prompt())

    def _enter_menu(self, now: float, *, speak: bool = True) -> None:
        self._set_state(_Stage.MENU)
        self._attempts = 0
        if speak:
            self._speak_menu(self._menu.menu)

    def _speak_menu(self, menu: Menu, *lead: Prompt) -> None:
        self.ivr_deadline = None
        self.play_gp(*lead, *ivr.menu_prompts(menu, self._names))

    def _after_greeting(self, now: float, *, speak: bool) -> None:
        if self._ivr_plan.nhs_number is NhsNumberCapture.OFF:
            self._enter_menu(now, speak=speak)
        else:
            self._enter_nhs(now, speak=speak)

    # -- handlers named in the flow's table ------------------------------------------------

    def on_prompt_done_ivr(self, event: PromptDone, now: float) -> None:
        if event.leg != GP or not self.gp_playing:
            return  # a stopped prompt's late report
        self.gp_playing = False
        if self._stage is _Stage.GREETING:
            self._after_greeting(now, speak=True)
            return
        self.ivr_deadline = now + self._ivr_plan.ivr.first_digit_seconds

    def on_digit_ivr(self, event: Digit, now: float) -> None:
        if event.leg != GP:
            return
        if self.gp_playing:
            self.emit(StopPlay(GP))  # barge-in: a key stops the prompt
            self.gp_playing = False
        if self._stage is _Stage.GREETING:
            self._after_greeting(now, speak=False)
        if self._stage is _Stage.NHS:
            self._nhs_result(self._nhs.feed(event.digit), now)
        else:
            self._menu_result(self._menu.feed(event.digit), now)

    def ivr_timeout(self, now: float) -> None:
        if self._stage is _Stage.NHS:
            if self._nhs.buffer:
                self._nhs_result(self._nhs.resolve(), now)
            else:
                self._retry(self._ivr_plan.prompts.no_input.as_prompt(), now)
        elif self._stage is _Stage.MENU:
            if self._menu.buffer:
                self._menu_result(self._menu.resolve(), now)
            else:
                self._retry(self._ivr_plan.prompts.no_input.as_prompt(), now)

    # -- results ----------------------------------------------------------------------------

    def _nhs_result(self, result: ivr.NhsResult, now: float) -> None:
        if isinstance(result, ivr.Pending):
            self.ivr_deadline = now + self._ivr_plan.ivr.inter_digit_seconds
        elif isinstance(result, ivr.NhsComplete):
            self.emit(d.NhsNumberCaptured(self._call_id(), now, result.number))
            self._enter_menu(now)
        elif isinstance(result, ivr.NhsSkipped):
            self._enter_menu(now)
        else:
            self._retry(self._ivr_plan.prompts.nhs_invalid.as_prompt(), now)

    def _menu_result(self, result: ivr.MenuResult, now: float) -> None:
        if isinstance(result, ivr.Pending):
            self.ivr_deadline = now + self._ivr_plan.ivr.inter_digit_seconds
        elif isinstance(result, ivr.Chosen):
            self.ivr_deadline = None
            self.specialty_chosen(result.specialty, now)
        elif isinstance(result, ivr.EnteredSubmenu | ivr.WentBack):
            self._attempts = 0
            self._speak_menu(result.menu)
        else:
            self._retry(self._ivr_plan.prompts.invalid.as_prompt(), now)

    def _retry(self, why: Prompt, now: float) -> None:
        """Re-prompt after a wrong or missing entry, until the attempts run out."""
        self._attempts += 1
        self.ivr_deadline = None
        prompts = self._ivr_plan.prompts
        if self._attempts < self._ivr_plan.ivr.max_attempts:
            if self._stage is _Stage.NHS:
                self.play_gp(why, prompts.nhs_number.as_prompt())
            else:
                self._speak_menu(self._menu.menu, why)
            return
        if self._stage is _Stage.NHS and self._ivr_plan.nhs_number is NhsNumberCapture.OPTIONAL:
            self._enter_menu(now)  # the number is optional: go on without it
            return
        self.farewell(prompts.too_many_attempts.as_prompt(), d.EndReason.NO_INPUT, now)

    def _call_id(self) -> str:
        raise NotImplementedError
