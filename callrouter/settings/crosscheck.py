"""Checks that need more than one file: the catalogue, the dialplans and the rotas must agree.

Each check reports at the node that is wrong (the menu option, the tier entry, the second copy
of a number), so ``callrouter check`` prints a line the operator can jump to.

Severity, decided once:
- a menu option for a specialty with no hunt policy is an ERROR: a GP could choose it and we
  would have nobody to ring;
- a hunt policy the menu cannot reach is a WARNING: harmless dead configuration (often a
  specialty taken out of the menu for a while), but worth a look;
- one number written twice in one dialplan (``020…`` and ``+4420…``) is a WARNING: harmless.
Everything else here is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from callrouter.core.directory import normalise_number
from callrouter.settings.config import Config
from callrouter.settings.dialplan import Dialplan, Menu, NhsNumberCapture
from callrouter.settings.errors import ConfigIssue, Loc
from callrouter.settings.rota import RotaFile, Rotas, Team
from callrouter.settings.rota_checks import dst_gap_problems, reference_problems
from callrouter.settings.source import SourceFile, format_loc

M = TypeVar("M", Config, Dialplan, RotaFile)


@dataclass(frozen=True, slots=True)
class Inputs:
    """What was read without error. ``config``/``rotas`` are None when any of those files failed,
    so checks that need them are skipped rather than reporting knock-on errors."""

    config: SourceFile[Config] | None
    dialplans: Sequence[SourceFile[Dialplan]]
    rotas: Sequence[SourceFile[RotaFile]] | None


def crosscheck(inputs: Inputs) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    issues += _numbers_and_areas(inputs.dialplans)
    for source in inputs.dialplans:
        issues += _practices(source)
        issues += _menu_and_policies(source)
        if inputs.config is not None:
            issues += _catalogue(source, inputs.config)
            issues += _nhs_numbers_need_a_key(source, inputs.config)
    if inputs.rotas is not None:
        issues += _rota_ids(inputs.rotas)
        teams = _teams_by_id(inputs.rotas)
        for source in inputs.dialplans:
            issues += _tiers(source, teams)
        if inputs.config is not None:
            issues += _team_specialties(inputs.rotas, inputs.config)
    return issues


def rota_issues(sources: Sequence[SourceFile[RotaFile]], rotas: Rotas) -> list[ConfigIssue]:
    """The rota helper's checks on merged rotas (unknown members, calendars, DST gaps), each
    placed in the file and at the node of the team it concerns."""
    teams: dict[str, tuple[SourceFile[RotaFile], int]] = {}
    for source in sources:
        for index, team in enumerate(source.model.teams):
            teams.setdefault(team.id, (source, index))
    issues = []
    for problem in [*reference_problems(rotas), *dst_gap_problems(rotas)]:
        source, index = teams[problem.team_id]
        issues.append(source.issue(("teams", index, *problem.loc), problem.message))
    return issues


def menu_options(menu: Menu, loc: Loc = ("menu",)) -> Iterable[tuple[Loc, str]]:
    """Every (loc of the option's ``specialty``, specialty) in a menu tree, depth first."""
    for index, option in enumerate(menu.options):
        here: Loc = (*loc, "options", index)
        if option.specialty is not None:
            yield (*here, "specialty"), option.specialty
        elif option.submenu is not None:
            yield from menu_options(option.submenu, (*here, "submenu"))


def _catalogue(source: SourceFile[Dialplan], config: SourceFile[Config]) -> list[ConfigIssue]:
    catalogue = config.model.specialties
    issues = []
    for loc, slug in menu_options(source.model.menu):
        if slug not in catalogue:
            issues.append(source.issue(loc, _unknown("specialty", slug, catalogue, config)))
    for slug in source.model.specialties:
        if slug not in catalogue:
            message = _unknown("specialty", slug, catalogue, config)
            issues.append(source.issue(("specialties", slug), message, at_key=True))
    return issues


def _nhs_numbers_need_a_key(
    source: SourceFile[Dialplan], config: SourceFile[Config]
) -> list[ConfigIssue]:
    """NHS numbers are stored sealed, never in clear: taking them needs the key configured."""
    if source.model.nhs_number is NhsNumberCapture.OFF or config.model.security.has_key:
        return []
    message = "taking NHS numbers needs a key to seal them: set security.key_file or key_env"
    return [source.issue(("nhs_number",), f"{message} in {config.path.name}")]


def _menu_and_policies(source: SourceFile[Dialplan]) -> list[ConfigIssue]:
    policies = source.model.specialties
    reachable: set[str] = set()
    issues = []
    for loc, slug in menu_options(source.model.menu):
        reachable.add(slug)
        if slug not in policies:
            message = f"no hunt policy for {slug!r}: add it under 'specialties'"
            issues.append(source.issue(loc, message))
    for slug in policies:
        if slug not in reachable:
            message = f"no menu option reaches {slug!r}: this policy is never used"
            issues.append(
                source.issue(("specialties", slug), message, severity="warning", at_key=True)
            )
    return issues


def _numbers_and_areas(dialplans: Sequence[SourceFile[Dialplan]]) -> list[ConfigIssue]:
    issues = []
    served: dict[str, tuple[SourceFile[Dialplan], Loc]] = {}
    areas: dict[str, SourceFile[Dialplan]] = {}
    for source in dialplans:
        first_area = areas.setdefault(source.model.area, source)
        if first_area is not source:
            where = _where(first_area, ("area",))
            issues.append(source.issue(("area",), f"area also defined at {where}"))
        for index, number in enumerate(source.model.numbers):
            loc: Loc = ("numbers", index)
            key = normalise_number(number)
            if key not in served:
                served[key] = (source, loc)
                continue
            other, other_loc = served[key]
            where = _where(other, other_loc)
            if other is source:
                message = f"the same number as {format_loc(other_loc)} once normalised"
                issues.append(source.issue(loc, message, severity="warning"))
            else:
                issues.append(source.issue(loc, f"number also served by {where}"))
    return issues


def _practices(source: SourceFile[Dialplan]) -> list[ConfigIssue]:
    """Practice ids unique; each caller number names one practice (or one clinician)."""
    issues = []
    ids: set[str] = set()
    numbers: dict[str, Loc] = {}
    for p_index, practice in enumerate(source.model.practices):
        base: Loc = ("practices", p_index)
        if practice.id in ids:
            issues.append(source.issue((*base, "id"), f"practice {practice.id!r} is listed twice"))
        ids.add(practice.id)
        owned: list[tuple[Loc, str]] = [
            ((*base, "numbers", n), number) for n, number in enumerate(practice.numbers)
        ]
        for c_index, clinician in enumerate(practice.clinicians):
            owned += [
                ((*base, "clinicians", c_index, "numbers", n), number)
                for n, number in enumerate(clinician.numbers)
            ]
        for loc, number in owned:
            first = numbers.setdefault(normalise_number(number), loc)
            if first != loc:
                message = f"caller number already listed at {_where(source, first)}"
                issues.append(source.issue(loc, message))
    return issues


def _teams_by_id(rotas: Sequence[SourceFile[RotaFile]]) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for source in rotas:
        for team in source.model.teams:
            teams.setdefault(team.id, team)
    return teams


def _tiers(source: SourceFile[Dialplan], teams: dict[str, Team]) -> list[ConfigIssue]:
    issues = []
    for slug, policy in source.model.specialties.items():
        seen: set[str] = set()
        for index, team_id in enumerate(policy.tiers):
            loc: Loc = ("specialties", slug, "tiers", index)
            team = teams.get(team_id)
            if team_id in seen:
                issues.append(source.issue(loc, f"team {team_id!r} is already a tier"))
            seen.add(team_id)
            if team is None:
                hint = _close(team_id, teams)
                issues.append(source.issue(loc, f"unknown team {team_id!r}{hint}"))
            elif team.specialty != slug:
                message = f"team {team_id!r} answers {team.specialty!r}, not {slug!r}"
                issues.append(source.issue(loc, message))
    return issues


def _rota_ids(rotas: Sequence[SourceFile[RotaFile]]) -> list[ConfigIssue]:
    """Member and team ids are unique across all rota files (each file checks its own)."""
    issues = []
    members: dict[str, tuple[SourceFile[RotaFile], Loc]] = {}
    teams: dict[str, tuple[SourceFile[RotaFile], Loc]] = {}
    for source in rotas:
        for index, member in enumerate(source.model.members):
            issues += _first_only(source, ("members", index, "id"), member.id, members, "member")
        for index, team in enumerate(source.model.teams):
            issues += _first_only(source, ("teams", index, "id"), team.id, teams, "team")
    return issues


def _first_only(
    source: SourceFile[RotaFile],
    loc: Loc,
    key: str,
    first: dict[str, tuple[SourceFile[RotaFile], Loc]],
    what: str,
) -> list[ConfigIssue]:
    if key not in first:
        first[key] = (source, loc)
        return []
    other, other_loc = first[key]
    return [source.issue(loc, f"{what} {key!r} is also defined at {_where(other, other_loc)}")]


def _team_specialties(
    rotas: Sequence[SourceFile[RotaFile]], config: SourceFile[Config]
) -> list[ConfigIssue]:
    catalogue = config.model.specialties
    issues = []
    for source in rotas:
        for index, team in enumerate(source.model.teams):
            if team.specialty not in catalogue:
                message = _unknown("specialty", team.specialty, catalogue, config)
                issues.append(source.issue(("teams", index, "specialty"), message))
    return issues


def _unknown(what: str, slug: str, known: Iterable[str], config: SourceFile[Config]) -> str:
    return f"unknown {what} {slug!r}{_close(slug, known)} (the catalogue is in {config.path.name})"


def _close(word: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _where(source: SourceFile[M], loc: Loc) -> str:
    position = source.position(loc)
    line = f":{position.line}" if position else ""
    return f"{source.path.name}{line}"
