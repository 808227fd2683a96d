"""The IVR half of the call flow: greeting, NHS-number capture and the specialty menu.

A mixin so the call flow's table can name these handlers; it owns the digit buffers, attempts and
the IVR deadline, and calls back into the flow (``specialty_chosen``, ``farewell``) when done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING

from callrouter.core import domain as d
from callrouter.core import ivr
from callrouter.core.commands import Play, Prompt
from callrouter.core.events import GP, Digit, PromptDone
from callrouter.core.reuse import STOP_GP
from callrouter.core.states import State
from callrouter.settings.dialplan import Dialplan, Menu, NhsNumberCapture, PromptSpec

if TYPE_CHECKING:
    from callrouter.core.callflow import Effect


_PROMPTS: dict[int, tuple[PromptSpec, Prompt]] = {}
_MENUS: dict[tuple[int, int], tuple[Menu, Mapping[str, str], tuple[Prompt, ...]]] = {}
_CACHE_LIMIT = 4096  # settings reloads leave old objects behind: keep the caches bounded


def spoken(spec: PromptSpec) -> Prompt:
    """``spec.as_prompt()``, made once per spec (settings are immutable, so this is safe)."""
    found = _PROMPTS.get(id(spec))
    if found is None or found[0] is not spec:
        if len(_PROMPTS) > _CACHE_LIMIT:
            _PROMPTS.clear()
        found = _PROMPTS[id(spec)] = (spec, spec.as_prompt())
    return found[1]


_SAYINGS: dict[int, tuple[PromptSpec, Play]] = {}


def say_to_gp(spec: PromptSpec) -> Play:
    """``Play(GP, (spoken(spec),))``, made once per spec: greeting and hunting are on every call."""
    found = _SAYINGS.get(id(spec))
    if found is None or found[0] is not spec:
        if len(_SAYINGS) > _CACHE_LIMIT:
            _SAYINGS.clear()
        found = _SAYINGS[id(spec)] = (spec, Play(GP, (spoken(spec),)))
    return found[1]


def menu_prompts(menu: Menu, names: Mapping[str, str]) -> tuple[Prompt, ...]:
    """``ivr.menu_prompts``, made once per menu and catalogue."""
    key = (id(menu), id(names))
    found = _MENUS.get(key)
    if found is None or found[0] is not menu or found[1] is not names:
        if len(_MENUS) > _CACHE_LIMIT:
            _MENUS.clear()
        found = _MENUS[key] = (menu, names, ivr.menu_prompts(menu, names))
    return found[2]


class _Stage(Enum):
    GREETING = "greeting"
    NHS = "nhs"
    MENU = "menu"


# Enum members read on every call, bound once: on Python 3.11 reading ``_Stage.NHS`` goes through
# EnumType's __getattr__ hook (~70 ns; a module global costs ~10 ns).
_AT_GREETING, _AT_NHS, _AT_MENU = _Stage.GREETING, _Stage.NHS, _Stage.MENU
_STATE_MENU = State.MENU
_NHS_OFF = NhsNumberCapture.OFF


class IvrMixin(ABC):
    """Digit collection with barge-in, timeouts and bounded retries."""

    state: State
    # Class defaults until a call changes them (see FlowBase).
    ivr_deadline: float | None = None
    gp_playing: bool = False
    _attempts: int = 0
    # True from the end of NHS-number entry until the GP's first key in the menu: a '#' then is
    # the end of the number (pressed late, or twice), never a menu choice.
    _hash_is_late: bool = False

    def __init__(self, dialplan: Dialplan, specialty_names: Mapping[str, str]) -> None:
        self._ivr_plan = dialplan
        self._names = specialty_names
        self._stage = _AT_GREETING
        self._menu = ivr.MenuEntry(dialplan.menu)

    # Provided by CallFlow (abstract here so the IVR half can call them).
    @abstractmethod
    def emit(self, effect: Effect) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def play_gp(self, *prompts: Prompt, loop: bool = False) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def farewell(self, prompt: Prompt, reason: d.EndReason, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def specialty_chosen(self, specialty: str, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    def _set_state(self, stage: _Stage) -> None:
        self._stage = stage
        if stage is _AT_NHS:
            self.state = State.NHS
        elif stage is _AT_MENU:
            self.state = _STATE_MENU
        else:
            self.state = State.GREETING

    # -- entering a stage -----------------------------------------------------------------

    def _enter_nhs(self, now: float, *, speak: bool = True) -> None:
        # Made here, not with the flow: most lines never ask for an NHS number.
        self._nhs = ivr.NhsEntry(self._ivr_plan.nhs_number is not NhsNumberCapture.REQUIRED)
        self._set_state(_Stage.NHS)
        self._attempts = 0
        if speak:
            self.play_gp(spoken(self._ivr_plan.prompts.nhs_number))

    def _enter_menu(self, now: float, *, speak: bool = True) -> None:
        self._set_state(_AT_MENU)
        self._attempts = 0
        if speak:
            self._speak_menu(self._menu.menu)

    def _speak_menu(self, menu: Menu, *lead: Prompt) -> None:
        self.ivr_deadline = None
        self.play_gp(*lead, *menu_prompts(menu, self._names))

    def _after_greeting(self, now: float, *, speak: bool) -> None:
        if self._ivr_plan.nhs_number is _NHS_OFF:
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
        if self._hash_is_late:
            self._hash_is_late = False
            if event.digit == "#":
                return  # dropped before barge-in: the menu goes on being read
        if self.gp_playing:
            self.emit(STOP_GP)  # barge-in: a key stops the prompt
            self.gp_playing = False
        if self._stage is _AT_GREETING:
            self._after_greeting(now, speak=False)
        if self._stage is _AT_NHS:
            self._nhs_result(self._nhs.feed(event.digit), now)
        else:
            self._menu_result(self._menu.feed(event.digit), now)

    def ivr_timeout(self, now: float) -> None:
        if self._stage is _Stage.NHS:
            if self._nhs.buffer:
                self._nhs_result(self._nhs.resolve(), now)
            else:
                self._retry(spoken(self._ivr_plan.prompts.no_input), now)
        elif self._stage is _Stage.MENU:
            if self._menu.buffer:
                self._menu_result(self._menu.resolve(), now)
            else:
                self._retry(spoken(self._ivr_plan.prompts.no_input), now)

    # -- results ----------------------------------------------------------------------------

    def _nhs_result(self, result: ivr.NhsResult, now: float) -> None:
        if isinstance(result, ivr.Pending):
            self.ivr_deadline = now + self._ivr_plan.ivr.inter_digit_seconds
        elif isinstance(result, ivr.NhsComplete):
            self.emit(d.NhsNumberCaptured(self._call_id(), now, result.number))
            self._leave_nhs(now)
        elif isinstance(result, ivr.NhsSkipped):
            self._leave_nhs(now)
        else:
            self._retry(spoken(self._nhs_problem(result)), now)

    def _nhs_problem(self, result: ivr.NhsResult) -> PromptSpec:
        prompts = self._ivr_plan.prompts
        if isinstance(result, ivr.NhsTooShort):
            return prompts.nhs_too_short
        if isinstance(result, ivr.NhsTooLong):
            return prompts.nhs_too_long
        return prompts.nhs_invalid

    def _leave_nhs(self, now: float) -> None:
        self._enter_menu(now)
        self._hash_is_late = True

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
            self._retry(spoken(self._ivr_plan.prompts.invalid), now)

    def _retry(self, why: Prompt, now: float) -> None:
        """Re-prompt after a wrong or missing entry, until the attempts run out."""
        self._attempts += 1
        self.ivr_deadline = None
        prompts = self._ivr_plan.prompts
        if self._attempts < self._ivr_plan.ivr.max_attempts:
            if self._stage is _Stage.NHS:
                self.play_gp(why, spoken(prompts.nhs_number))
            else:
                self._speak_menu(self._menu.menu, why)
            return
        if self._stage is _Stage.NHS and self._ivr_plan.nhs_number is NhsNumberCapture.OPTIONAL:
            self._leave_nhs(now)  # the number is optional: go on without it
            return
        self.farewell(spoken(prompts.too_many_attempts), d.EndReason.NO_INPUT, now)

    @abstractmethod
    def _call_id(self) -> str:
        """Provided by CallFlow or another phase mixin."""
