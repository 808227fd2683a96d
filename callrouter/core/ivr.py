"""Digit entry for the IVR: the specialty menu tree and the NHS number, one digit at a time.

Both are tiny pure machines fed digits and timeouts; the IVR session (ivr_session.py) owns
prompts and retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.core.line import MenuNode
from callrouter.core.nhs_number import NHS_NUMBER_LENGTH, is_valid


@dataclass(frozen=True, slots=True)
class Pending:
    """More digits may come: wait ``inter_digit`` seconds."""


@dataclass(frozen=True, slots=True)
class Chosen:
    specialty: str


@dataclass(frozen=True, slots=True)
class EnteredSubmenu:
    menu: MenuNode


@dataclass(frozen=True, slots=True)
class WentBack:
    menu: MenuNode


@dataclass(frozen=True, slots=True)
class Invalid:
    entered: str


MenuResult = Pending | Chosen | EnteredSubmenu | WentBack | Invalid

PENDING = Pending()


class MenuEntry:
    """Where the GP is in the menu tree and what they have keyed so far.

    A digit that completes an option selects it at once; a digit that could still begin a
    two-digit code waits for the next digit or '#'. '*' in a sub-menu goes back one level.
    """

    __slots__ = ("_buffer", "_stack")

    def __init__(self, root: MenuNode) -> None:
        self._stack: list[MenuNode] = [root]
        self._buffer = ""

    @property
    def menu(self) -> MenuNode:
        return self._stack[-1]

    @property
    def buffer(self) -> str:
        return self._buffer

    def feed(self, digit: str) -> MenuResult:
        if digit == "*" and not self._buffer and len(self._stack) > 1:
            self._stack.pop()
            return WentBack(self.menu)
        if digit in "*#":
            return self.resolve() if self._buffer else Invalid(digit)
        self._buffer += digit
        if self._buffer in self.menu.prefixes:
            return PENDING
        return self.resolve()

    def resolve(self) -> MenuResult:
        """Settle the keyed digits (after '#', an inter-digit timeout, or a full code)."""
        entered, self._buffer = self._buffer, ""
        choice = self.menu.choices.get(entered)
        if choice is None:
            return Invalid(entered)
        if isinstance(choice, MenuNode):
            self._stack.append(choice)
            return EnteredSubmenu(choice)
        return Chosen(choice)


@dataclass(frozen=True, slots=True)
class NhsComplete:
    number: str


@dataclass(frozen=True, slots=True)
class NhsSkipped:
    pass


@dataclass(frozen=True, slots=True)
class NhsInvalid:
    """Ten digits with a wrong check digit, or a '*' that cannot skip."""

    entered: str


@dataclass(frozen=True, slots=True)
class NhsTooShort:
    """Ended ('#' or a pause) before the tenth digit."""

    entered: str


@dataclass(frozen=True, slots=True)
class NhsTooLong:
    """More than ten digits before the end."""

    entered: str


NhsResult = Pending | NhsComplete | NhsSkipped | NhsInvalid | NhsTooShort | NhsTooLong

# Keys past the tenth are kept up to this many, only to say "too long": entry stays bounded.
_KEPT = NHS_NUMBER_LENGTH + 1


class NhsEntry:
    """Ten digits, then '#' (what the prompt asks for); a pause after the tenth digit ends entry
    too, so the caller resolves on the inter-digit timeout. Never ends at the tenth digit by
    itself: the '#' that follows belongs to the number, not to the menu.

    '*' with nothing keyed skips when skipping is allowed (the prompt says "to skip, press the
    star key"); any other '*' is an invalid entry. The number is judged only at its end: too
    short, too long, a wrong Modulus 11 check digit, or complete.
    """

    __slots__ = ("_buffer", "_may_skip")

    def __init__(self, may_skip: bool) -> None:
        self._buffer = ""
        self._may_skip = may_skip

    @property
    def buffer(self) -> str:
        return self._buffer

    def feed(self, digit: str) -> NhsResult:
        if digit == "*":
            if self._may_skip and not self._buffer:
                return NhsSkipped()
            entered, self._buffer = self._buffer + "*", ""
            return NhsInvalid(entered)
        if digit == "#":
            return self.resolve()
        if len(self._buffer) < _KEPT:
            self._buffer += digit
        return PENDING

    def resolve(self) -> NhsResult:
        """Judge the keyed digits: after '#', or after the inter-digit timeout."""
        entered, self._buffer = self._buffer, ""
        if len(entered) < NHS_NUMBER_LENGTH:
            return NhsTooShort(entered)
        if len(entered) > NHS_NUMBER_LENGTH:
            return NhsTooLong(entered)
        if is_valid(entered):
            return NhsComplete(entered)
        return NhsInvalid(entered)
