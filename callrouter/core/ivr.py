"""Digit entry for the IVR: the specialty menu tree and the NHS number, one digit at a time.

Both are tiny pure machines fed digits and timeouts; the call flow owns prompts and retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callrouter.core.commands import Prompt
from callrouter.core.nhs_number import NHS_NUMBER_LENGTH, is_valid
from callrouter.settings.dialplan import Menu, MenuOption


@dataclass(frozen=True, slots=True)
class Pending:
    """More digits may come: wait ``inter_digit`` seconds."""


@dataclass(frozen=True, slots=True)
class Chosen:
    specialty: str


@dataclass(frozen=True, slots=True)
class EnteredSubmenu:
    menu: Menu


@dataclass(frozen=True, slots=True)
class WentBack:
    menu: Menu


@dataclass(frozen=True, slots=True)
class Invalid:
    entered: str


MenuResult = Pending | Chosen | EnteredSubmenu | WentBack | Invalid

PENDING = Pending()


_TABLES: dict[int, tuple[Menu, dict[str, MenuOption], frozenset[str]]] = {}


def _table(menu: Menu) -> tuple[dict[str, MenuOption], frozenset[str]]:
    """The menu's options by digits, and every proper prefix of a two-digit code; made once per
    menu (settings are immutable) so keying a digit is two dict lookups."""
    found = _TABLES.get(id(menu))
    if found is None or found[0] is not menu:
        if len(_TABLES) > 4096:
            _TABLES.clear()
        options = {option.digits: option for option in menu.options}
        prefixes = frozenset(o.digits[:n] for o in menu.options for n in range(1, len(o.digits)))
        found = _TABLES[id(menu)] = (menu, options, prefixes)
    return found[1], found[2]


class MenuEntry:
    """Where the GP is in the menu tree and what they have keyed so far.

    A digit that completes an option selects it at once; a digit that could still begin a
    two-digit code waits for the next digit or '#'. '*' in a sub-menu goes back one level.
    """

    __slots__ = ("_buffer", "_stack")

    def __init__(self, root: Menu) -> None:
        self._stack: list[Menu] = [root]
        self._buffer = ""

    @property
    def menu(self) -> Menu:
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
        if self._buffer in _table(self.menu)[1]:  # Menu.is_prefix, precomputed
            return PENDING
        return self.resolve()

    def resolve(self) -> MenuResult:
        """Settle the keyed digits (after '#', an inter-digit timeout, or a full code)."""
        entered, self._buffer = self._buffer, ""
        option = _table(self.menu)[0].get(entered)  # Menu.lookup, precomputed
        if option is None:
            return Invalid(entered)
        if option.submenu is not None:
            self._stack.append(option.submenu)
            return EnteredSubmenu(option.submenu)
        assert option.specialty is not None  # the model guarantees one of the two
        return Chosen(option.specialty)


def menu_prompts(menu: Menu, specialty_names: Mapping[str, str]) -> tuple[Prompt, ...]:
    """The spoken menu: its own prompt, then "For <label>, press <digits>." per option."""
    prompts: list[Prompt] = []
    if menu.prompt is not None:
        prompts.append(menu.prompt.as_prompt())
    for option in menu.options:
        if option.label is not None:
            label = option.label
        elif option.specialty is not None:
            label = specialty_names.get(option.specialty, option.specialty.replace("-", " "))
        else:
            label = "more specialties"
        spoken_digits = " ".join(option.digits)
        prompts.append(Prompt(f"For {label}, press {spoken_digits}."))
    return tuple(prompts)


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
