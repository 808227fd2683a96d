"""Validated settings → the frozen objects the core runs on (``core.line``), at load and reload.

The core never sees a settings model: each dialplan becomes a ``Line`` whose prompts are ready
``Prompt`` values, whose menu is a digit map with its spoken form, whose whisper comes in pieces
and whose caller directory is built once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from callrouter.core.commands import Prompt
from callrouter.core.directory import CallerDirectory, CallerIdentity, normalise_number
from callrouter.core.line import IvrTimings, Line, LinePrompts, MenuNode, NhsCapture, Whisper
from callrouter.core.plan import HuntPolicy
from callrouter.settings import dialplan as spec
from callrouter.settings.dialplan import Dialplan, Menu, UnknownCallerPolicy


def compile_lines(
    dialplans: Mapping[str, Dialplan],
    specialty_names: Mapping[str, str],
    recording_notice: Prompt | None = None,
) -> dict[str, Line]:
    """Every area's line, by area."""
    return {
        area: compile_line(dialplan, specialty_names, recording_notice)
        for area, dialplan in dialplans.items()
    }


def compile_line(
    dialplan: Dialplan,
    specialty_names: Mapping[str, str],
    recording_notice: Prompt | None = None,
) -> Line:
    """One dialplan as the call flow runs it. ``recording_notice`` is said to the GP before
    "hunting" and to the consultant before the accept keys when calls are recorded."""
    p = dialplan.prompts
    notice = () if recording_notice is None else (recording_notice,)
    prompts = LinePrompts(
        greeting=p.greeting.as_prompt(),
        invalid=p.invalid.as_prompt(),
        no_input=p.no_input.as_prompt(),
        goodbye=p.goodbye.as_prompt(),
        too_many_attempts=p.too_many_attempts.as_prompt(),
        out_of_hours=p.out_of_hours.as_prompt(),
        unknown_caller=p.unknown_caller.as_prompt(),
        nhs_number=p.nhs_number.as_prompt(),
        nhs_invalid=p.nhs_invalid.as_prompt(),
        nhs_too_short=p.nhs_too_short.as_prompt(),
        nhs_too_long=p.nhs_too_long.as_prompt(),
        hunting=(*notice, p.hunting.as_prompt()),
        hold=p.hold.as_prompt(),
        nobody=p.nobody.as_prompt(),
        survey=p.survey.as_prompt(),
        thanks=p.thanks.as_prompt(),
        consultant_gone=p.consultant_gone.as_prompt(),
    )
    keys = p.whisper_keys.as_prompt()
    about = p.whisper_about.as_prompt()
    whisper = Whisper(
        intro=p.whisper_intro.as_prompt(),
        unknown_practice=p.whisper_unknown_practice.as_prompt(),
        about={
            specialty: (about, Prompt(specialty_names.get(specialty, specialty)), *notice, keys)
            for specialty in dialplan.specialties
        },
        keys=keys,
    )
    return Line(
        area=dialplan.area,
        prompts=prompts,
        menu=compile_menu(dialplan.menu, specialty_names),
        ivr=IvrTimings(
            dialplan.ivr.first_digit_seconds,
            dialplan.ivr.inter_digit_seconds,
            dialplan.ivr.max_attempts,
        ),
        nhs=NhsCapture(dialplan.nhs_number.value),
        reject_unknown=dialplan.unknown_callers is UnknownCallerPolicy.REJECT,
        callers=caller_directory(dialplan),
        whisper=whisper,
        policies={name: hunt_policy(policy) for name, policy in dialplan.specialties.items()},
    )


def hunt_policy(policy: spec.HuntPolicy) -> HuntPolicy:
    """A specialty's validated hunt policy as the core's frozen value (field by field: the
    settings model has every field the core's has, under the same name)."""
    return HuntPolicy(**{f.name: getattr(policy, f.name) for f in dataclasses.fields(HuntPolicy)})


def compile_menu(menu: Menu, specialty_names: Mapping[str, str]) -> MenuNode:
    choices: dict[str, str | MenuNode] = {}
    for option in menu.options:
        if option.submenu is not None:
            choices[option.digits] = compile_menu(option.submenu, specialty_names)
        else:
            assert option.specialty is not None  # the model guarantees one of the two
            choices[option.digits] = option.specialty
    prefixes = frozenset(o.digits[:n] for o in menu.options for n in range(1, len(o.digits)))
    return MenuNode(menu_prompts(menu, specialty_names), choices, prefixes)


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


def caller_directory(dialplan: Dialplan) -> CallerDirectory:
    """Registered numbers → who calls from them (a number given twice: the last one counts)."""
    by_number: dict[str, CallerIdentity] = {}
    for practice in dialplan.practices:
        for number in practice.numbers:
            by_number[normalise_number(number)] = CallerIdentity(practice.id, practice.name, None)
        for clinician in practice.clinicians:
            for number in clinician.numbers:
                key = normalise_number(number)
                by_number[key] = CallerIdentity(practice.id, practice.name, clinician.name)
    return CallerDirectory(by_number)
