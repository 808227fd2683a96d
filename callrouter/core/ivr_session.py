"""The GP's keys: NHS-number capture, the specialty menu and the outcome question, with bounded
retries.

The session is fed digits and timeouts and answers with outcomes as data; it plays nothing and
holds no state of the call beyond what has been keyed. The flow says which step it is in (it
calls ``nhs_digit`` in NHS, ``menu_digit`` in MENU, ``survey_digit`` in SURVEY) and carries the
outcome out:

- ``Say(prompts)``: play these to the GP (a re-prompt, a sub-menu), then wait for a first digit;
- ``Wait(seconds)``: more digits may come, wait this long for the next;
- ``NhsDone(number)``: the number was captured (``None``: skipped, or optional and given up);
- ``Picked(specialty)``: the menu choice is final;
- ``Rated(helped)``: the GP answered the outcome question;
- ``GiveUp(prompt, reason)``: say ``prompt`` and end the call (the attempts ran out);
- ``None`` (``menu_digit`` only): the key is dropped, nothing happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.core import ivr
from callrouter.core.commands import Prompt
from callrouter.core.domain import EndReason
from callrouter.core.line import Line, NhsCapture

SURVEY_SECONDS = 8.0  # the wait for the GP's answer to the outcome question


@dataclass(frozen=True, slots=True)
class Say:
    prompts: tuple[Prompt, ...]


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class NhsDone:
    number: str | None


@dataclass(frozen=True, slots=True)
class Picked:
    specialty: str


@dataclass(frozen=True, slots=True)
class Rated:
    helped: bool


@dataclass(frozen=True, slots=True)
class GiveUp:
    prompt: Prompt
    reason: EndReason


IvrOutcome = Say | Wait | NhsDone | Picked | Rated | GiveUp


class IvrSession:
    """One GP's way through the NHS-number prompt and the menu tree."""

    __slots__ = ("_attempts", "_hash_is_late", "_line", "_menu", "_nhs", "first_wait")

    def __init__(self, line: Line) -> None:
        self._line = line
        self._menu = ivr.MenuEntry(line.menu)
        self._nhs = ivr.NhsEntry(may_skip=line.nhs is not NhsCapture.REQUIRED)
        self._attempts = 0
        self.first_wait = line.ivr.first_digit_seconds  # for a first key once a prompt ends
        # True from the end of NHS-number entry until the GP's first key in the menu: a '#' then
        # is the end of the number (pressed late, or twice), never a menu choice.
        self._hash_is_late = False

    def __repr__(self) -> str:
        keyed = self._nhs.buffer or self._menu.buffer
        return f"<IvrSession attempts={self._attempts} keyed={keyed!r}>"

    @property
    def asks_nhs(self) -> bool:
        return self._line.nhs is not NhsCapture.OFF

    def start_nhs(self) -> Say:
        self._attempts = 0
        return Say((self._line.prompts.nhs_number,))

    def start_menu(self, *, after_nhs: bool = False) -> Say:
        self._attempts = 0
        self._hash_is_late = after_nhs
        return Say(self._menu.menu.prompts)

    # -- NHS number -------------------------------------------------------------------------

    def nhs_digit(self, digit: str) -> IvrOutcome:
        return self._nhs_result(self._nhs.feed(digit))

    def nhs_timeout(self) -> IvrOutcome:
        if self._nhs.buffer:
            return self._nhs_result(self._nhs.resolve())
        return self._retry(self._line.prompts.no_input, nhs=True)

    def _nhs_result(self, result: ivr.NhsResult) -> IvrOutcome:
        prompts = self._line.prompts
        match result:
            case ivr.Pending():
                return Wait(self._line.ivr.inter_digit_seconds)
            case ivr.NhsComplete(number):
                return NhsDone(number)
            case ivr.NhsSkipped():
                return NhsDone(None)
            case ivr.NhsTooShort():
                return self._retry(prompts.nhs_too_short, nhs=True)
            case ivr.NhsTooLong():
                return self._retry(prompts.nhs_too_long, nhs=True)
            case _:
                return self._retry(prompts.nhs_invalid, nhs=True)

    # -- the menu -----------------------------------------------------------------------------

    def menu_digit(self, digit: str) -> IvrOutcome | None:
        if self._hash_is_late:
            self._hash_is_late = False
            if digit == "#":
                return None  # the NHS number's '#', late: the menu goes on being read
        return self._menu_result(self._menu.feed(digit))

    def menu_timeout(self) -> IvrOutcome:
        if self._menu.buffer:
            return self._menu_result(self._menu.resolve())
        return self._retry(self._line.prompts.no_input, nhs=False)

    def _menu_result(self, result: ivr.MenuResult) -> IvrOutcome:
        match result:
            case ivr.Pending():
                return Wait(self._line.ivr.inter_digit_seconds)
            case ivr.Chosen(specialty):
                return Picked(specialty)
            case ivr.EnteredSubmenu(menu) | ivr.WentBack(menu):
                self._attempts = 0
                return Say(menu.prompts)
            case _:
                return self._retry(self._line.prompts.invalid, nhs=False)

    # -- retries ------------------------------------------------------------------------------

    def _retry(self, why: Prompt, *, nhs: bool) -> IvrOutcome:
        """Re-prompt after a wrong or missing entry, until the attempts run out."""
        self._attempts += 1
        if self._attempts < self._line.ivr.max_attempts:
            if nhs:
                return Say((why, self._line.prompts.nhs_number))
            return Say((why, *self._menu.menu.prompts))
        if nhs and self._line.nhs is NhsCapture.OPTIONAL:
            return NhsDone(None)  # the number is optional: go on without it
        return GiveUp(self._line.prompts.too_many_attempts, EndReason.NO_INPUT)

    # -- the outcome question, once the consultant has left ------------------------------------

    def start_survey(self) -> Say:
        self._attempts = 0
        self.first_wait = SURVEY_SECONDS
        return Say((self._line.prompts.consultant_gone, self._line.prompts.survey))

    def survey_digit(self, digit: str) -> IvrOutcome:
        prompts = self._line.prompts
        if digit in "12":
            return Rated(helped=digit == "1")
        self._attempts += 1
        if self._attempts >= self._line.ivr.max_attempts:
            return GiveUp(prompts.goodbye, EndReason.COMPLETED)
        return Say((prompts.invalid, prompts.survey))

    def survey_timeout(self) -> IvrOutcome:
        return GiveUp(self._line.prompts.goodbye, EndReason.COMPLETED)
