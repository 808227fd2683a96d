"""One advice line as the call flow runs it: prompts, menu, IVR timings and hunt policies.

Frozen values made from the validated settings at load and at every reload (``settings/compile.py``
does it); the flow never sees a settings model. Everything a call plays is a ready ``Prompt``, the
menu is a digit map, and the whisper comes in pieces, so a call only picks and joins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from callrouter.core.commands import Prompt
from callrouter.core.directory import CallerDirectory
from callrouter.core.plan import HuntPolicy


class NhsCapture(Enum):
    """Whether the line asks for the patient's NHS number before the menu."""

    OFF = "off"
    OPTIONAL = "optional"  # '*' skips
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class LinePrompts:
    """Every fixed prompt of one line, ready to play."""

    greeting: Prompt
    invalid: Prompt
    no_input: Prompt
    goodbye: Prompt
    too_many_attempts: Prompt
    out_of_hours: Prompt
    unknown_caller: Prompt
    nhs_number: Prompt
    nhs_invalid: Prompt
    nhs_too_short: Prompt
    nhs_too_long: Prompt
    hunting: tuple[Prompt, ...]  # the recording notice first when calls are recorded
    hold: Prompt
    nobody: Prompt
    survey: Prompt
    thanks: Prompt
    consultant_gone: Prompt


@dataclass(frozen=True, slots=True)
class MenuNode:
    """One menu: what it says, and what each complete code leads to (a specialty or a sub-menu).

    ``prefixes`` holds every proper prefix of a two-digit code: a digit that makes one waits for
    the next digit or '#'.
    """

    prompts: tuple[Prompt, ...]
    choices: Mapping[str, str | MenuNode]
    prefixes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Whisper:
    """What a consultant hears on pick-up: intro, practice, "about", specialty, keys."""

    intro: Prompt
    unknown_practice: Prompt
    about: Mapping[str, tuple[Prompt, ...]]  # by specialty: "about", its name, notice, keys
    keys: Prompt  # said again after a key that is neither 1 nor 2

    def for_call(self, practice: str | None, specialty: str) -> tuple[Prompt, ...]:
        who = Prompt(practice) if practice else self.unknown_practice
        return (self.intro, who, *self.about[specialty])


@dataclass(frozen=True, slots=True)
class IvrTimings:
    first_digit_seconds: float
    inter_digit_seconds: float
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Line:
    """One area's line: who may call, what they hear, and how each specialty hunts."""

    area: str
    prompts: LinePrompts
    menu: MenuNode
    ivr: IvrTimings
    nhs: NhsCapture
    reject_unknown: bool  # unknown callers hear ``unknown_caller`` and are hung up on
    callers: CallerDirectory
    whisper: Whisper
    policies: Mapping[str, HuntPolicy]  # by specialty
