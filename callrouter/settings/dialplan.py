"""The model of one area's dialplan (``dialplans/<area>.yaml``).

A dialplan serves one or more numbers. It greets the GP, optionally captures the patient's NHS
number, offers a specialty menu and, per specialty, says how to hunt: which teams in which order,
how long each consultant rings and whether they must press 1 to accept.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from callrouter.core.commands import Prompt
from callrouter.core.plan import StrategyName as Strategy
from callrouter.settings.base import Frozen
from callrouter.settings.errors import FieldError

SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
PhoneNumber = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]
MenuDigits = Annotated[str, Field(pattern=r"^[0-9]{1,2}$")]


class PromptSpec(Frozen):
    """A prompt: ``text`` is spoken by TTS; ``file`` (a WAV) is played instead when given.

    Text is always required: it is what the records and the README show, and the fallback.
    """

    text: Annotated[str, Field(min_length=1, max_length=1000)]
    file: str | None = None

    def as_prompt(self) -> Prompt:
        return Prompt(self.text, self.file)


def _prompt(text: str) -> PromptSpec:
    return PromptSpec(text=text)


NHS_PROMPT_REQUIRED = "Please key the patient's ten digit NHS number, then the hash key."
NHS_PROMPT_OPTIONAL = NHS_PROMPT_REQUIRED + " To skip, press the star key."


class Prompts(Frozen):
    """Every fixed prompt the flow plays. Each may be given as a plain string or {text, file}."""

    greeting: PromptSpec
    menu: PromptSpec | None = None  # spoken before the options; None = options only
    invalid: PromptSpec = _prompt("Sorry, that is not a valid choice.")
    no_input: PromptSpec = _prompt("Sorry, I did not hear a choice.")
    goodbye: PromptSpec = _prompt("Goodbye.")
    too_many_attempts: PromptSpec = _prompt(
        "Sorry, we could not take your choice. Please call again. Goodbye."
    )
    out_of_hours: PromptSpec = _prompt(
        "The advice line is closed now. For urgent advice please contact the on-call registrar "
        "through the hospital switchboard. Goodbye."
    )
    unknown_caller: PromptSpec = _prompt("This line is for registered GP practices only. Goodbye.")
    # Entry ends on '#' after ten digits (or a pause of ivr.inter_digit_seconds after them).
    # The skip sentence is dropped by default where the number is required (Dialplan below).
    nhs_number: PromptSpec = _prompt(NHS_PROMPT_OPTIONAL)
    nhs_invalid: PromptSpec = _prompt("That NHS number is not valid.")
    nhs_too_short: PromptSpec = _prompt("That number is too short.")
    nhs_too_long: PromptSpec = _prompt("That number is too long.")
    hunting: PromptSpec = _prompt("Connecting you to a consultant. Please hold.")
    hold: PromptSpec = _prompt("Please continue to hold.")
    nobody: PromptSpec = _prompt(
        "Sorry, no consultant is free to take your call right now. Please try again shortly, "
        "or use the hospital switchboard if it is urgent. Goodbye."
    )
    whisper_intro: PromptSpec = _prompt("GP call from")
    whisper_unknown_practice: PromptSpec = _prompt("an unregistered number")
    whisper_about: PromptSpec = _prompt("about")
    whisper_keys: PromptSpec = _prompt("Press 1 to accept, 2 to decline.")
    survey: PromptSpec = _prompt(
        "Before you go: press 1 if this advice avoided a hospital referral or admission, 2 if not."
    )
    thanks: PromptSpec = _prompt("Thank you. Goodbye.")
    consultant_gone: PromptSpec = _prompt("The consultant has ended the call.")

    @field_validator("*", mode="before")
    @classmethod
    def _text_shorthand(cls, value: object) -> object:
        return {"text": value} if isinstance(value, str) else value


class MenuOption(Frozen):
    """One menu entry: a specialty, or a sub-menu reached by its digits."""

    digits: MenuDigits
    specialty: Slug | None = None
    submenu: Menu | None = None
    label: str | None = None  # spoken as "For <label>, press <digits>"; default the specialty name

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.specialty is None) == (self.submenu is None):
            raise ValueError("give exactly one of 'specialty' or 'submenu'")
        return self


class Menu(Frozen):
    """A menu: options keyed by one or two digits. A two-digit code is taken when its first digit
    is not itself an option; a '#' ends entry early."""

    prompt: PromptSpec | None = None
    options: Annotated[tuple[MenuOption, ...], Field(min_length=1)]

    @field_validator("prompt", mode="before")
    @classmethod
    def _text_shorthand(cls, value: object) -> object:
        return {"text": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _digits_unique(self) -> Self:
        # FieldError carries the option's loc, so the error points at the offending line.
        seen: set[str] = set()
        for index, option in enumerate(self.options):
            if option.digits in seen:
                msg = f"two options on digits {option.digits!r}"
                raise FieldError(msg, "options", index, "digits")
            seen.add(option.digits)
        for index, option in enumerate(self.options):
            if len(option.digits) == 2 and option.digits[0] in seen:
                raise FieldError(
                    f"two-digit code {option.digits!r} can never be reached: "
                    f"{option.digits[0]!r} is an option of its own",
                    "options",
                    index,
                    "digits",
                )
        return self

    def lookup(self, digits: str) -> MenuOption | None:
        for option in self.options:
            if option.digits == digits:
                return option
        return None

    def is_prefix(self, digits: str) -> bool:
        """True when more digits could still complete a two-digit code."""
        return any(
            len(o.digits) > len(digits) and o.digits.startswith(digits) for o in self.options
        )


class IvrTimings(Frozen):
    first_digit_seconds: Annotated[float, Field(gt=0, le=60)] = 6.0
    # The wait for a two-digit code's second key, and for the '#' after an NHS number's tenth
    # digit (a GP who forgets the '#' has the number taken when it runs out).
    inter_digit_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3


class NhsNumberCapture(StrEnum):
    OFF = "off"
    OPTIONAL = "optional"  # '*' skips
    REQUIRED = "required"


class HuntPolicy(Frozen):
    """How one specialty hunts. Defaults follow the real service: ~18 s a ring, local then NCN."""

    strategy: Strategy = Strategy.ADAPTIVE
    ring_seconds: Annotated[float, Field(ge=5, le=120)] = 18.0
    tiers: Annotated[tuple[Slug, ...], Field(min_length=1)]  # team ids, rung in this order
    loops: Annotated[int, Field(ge=1, le=10)] = 2
    max_wait_seconds: Annotated[float, Field(ge=10, le=1800)] = 240.0
    require_accept: bool = True
    confirm_seconds: Annotated[float, Field(ge=3, le=60)] = 10.0
    stagger_seconds: Annotated[float, Field(ge=1, le=60)] = 6.0
    max_parallel: Annotated[int, Field(ge=1, le=10)] = 3


class HuntDefaults(Frozen):
    """Policy fields applied to every specialty that does not set them."""

    strategy: Strategy | None = None
    ring_seconds: Annotated[float, Field(ge=5, le=120)] | None = None
    loops: Annotated[int, Field(ge=1, le=10)] | None = None
    max_wait_seconds: Annotated[float, Field(ge=10, le=1800)] | None = None
    require_accept: bool | None = None
    confirm_seconds: Annotated[float, Field(ge=3, le=60)] | None = None
    stagger_seconds: Annotated[float, Field(ge=1, le=60)] | None = None
    max_parallel: Annotated[int, Field(ge=1, le=10)] | None = None


class Clinician(Frozen):
    id: Slug
    name: str
    numbers: tuple[PhoneNumber, ...] = ()


class Practice(Frozen):
    id: Slug
    name: Annotated[str, Field(min_length=1)]
    numbers: tuple[PhoneNumber, ...] = ()
    clinicians: tuple[Clinician, ...] = ()


class UnknownCallerPolicy(StrEnum):
    ALLOW = "allow"  # route as "an unregistered number"
    REJECT = "reject"  # play unknown_caller and hang up


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class OpeningWindow(Frozen):
    days: Annotated[tuple[Weekday, ...], Field(min_length=1)]
    open: time
    close: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.close <= self.open:
            raise ValueError("close must be after open (windows do not cross midnight)")
        return self


class ServiceHours(Frozen):
    """When the line is open, in the configured time zone. Empty ``windows`` = always open."""

    windows: tuple[OpeningWindow, ...] = ()
    closed_on_bank_holidays: bool = True


class Dialplan(Frozen):
    area: Slug
    name: Annotated[str, Field(min_length=1)]
    numbers: Annotated[tuple[PhoneNumber, ...], Field(min_length=1)]
    prompts: Prompts
    ivr: IvrTimings = IvrTimings()
    nhs_number: NhsNumberCapture = NhsNumberCapture.OFF
    hours: ServiceHours = ServiceHours()
    unknown_callers: UnknownCallerPolicy = UnknownCallerPolicy.ALLOW
    practices: tuple[Practice, ...] = ()
    menu: Menu
    hunt_defaults: HuntDefaults = HuntDefaults()
    specialties: Annotated[dict[Slug, HuntPolicy], Field(min_length=1)]

    @field_validator("numbers")
    @classmethod
    def _numbers_unique(cls, numbers: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(numbers)) != len(numbers):
            raise ValueError("a number is listed twice")
        return numbers

    @model_validator(mode="before")
    @classmethod
    def _nhs_prompt_for_mode(cls, data: object) -> object:
        """Where the number is required, the default NHS prompt does not offer to skip."""
        if not isinstance(data, dict) or data.get("nhs_number") != NhsNumberCapture.REQUIRED:
            return data
        prompts = data.get("prompts")
        if not isinstance(prompts, dict) or "nhs_number" in prompts:
            return data
        return {**data, "prompts": {**prompts, "nhs_number": NHS_PROMPT_REQUIRED}}

    @model_validator(mode="before")
    @classmethod
    def _apply_hunt_defaults(cls, data: object) -> object:
        """Fill each specialty's unset policy fields from ``hunt_defaults`` before validation."""
        if not isinstance(data, dict):
            return data
        defaults = data.get("hunt_defaults")
        specialties = data.get("specialties")
        if not isinstance(defaults, dict) or not isinstance(specialties, dict):
            return data
        merged = {}
        for slug, policy in specialties.items():
            if isinstance(policy, dict):
                merged[slug] = {**defaults, **policy}
            else:
                merged[slug] = policy
        return {**data, "specialties": merged}

    def menu_specialties(self) -> list[str]:
        """Every specialty the menu tree can reach, depth first."""
        found: list[str] = []

        def walk(menu: Menu) -> None:
            for option in menu.options:
                if option.specialty is not None:
                    found.append(option.specialty)
                elif option.submenu is not None:
                    walk(option.submenu)

        walk(self.menu)
        return found
