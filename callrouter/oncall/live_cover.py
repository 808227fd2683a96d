"""Rota overrides added live (over the bus), as data: checked like the YAML ones, merged purely.

A live override is an ordinary ``Override`` (the YAML model, validated by the same pydantic
rules) placed in one team. ``check_live`` runs the rota loader's own cross checks on the rotas
with the override appended (known member, member does the team's specialty, replaced member
known, neither end in a DST gap) plus what only a live command can get wrong (unknown team, team
of another specialty, an override already over). ``with_live_overrides`` returns new ``Rotas``
whose teams carry the live overrides after their YAML ones, so the planner, ``explain`` and
``callrouter oncall`` need nothing new. Pure: the instant is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from callrouter.core.localtime import instant
from callrouter.settings.rota import Override, Rotas, Team
from callrouter.settings.rota_checks import dst_gap_problems, reference_problems


@dataclass(frozen=True, slots=True)
class LiveOverride:
    """One override added live: its id (the adding command's request id) and its team."""

    override_id: str
    team_id: str
    specialty: str
    override: Override
    added_by: str | None = None

    def marked(self) -> Override:
        """The override as the rota shows it: its reason says it is live, which one, and who."""
        by = f" by {self.added_by}" if self.added_by else ""
        said = f": {self.override.reason}" if self.override.reason else ""
        return self.override.model_copy(update={"reason": f"live {self.override_id}{by}{said}"})


class CoverRejectedError(ValueError):
    """A live override the rotas cannot take; the message says why, for the response topic."""


def choose_team(rotas: Rotas, specialty: str, member: str, team_id: str | None) -> Team:
    """The team the override goes in: the one named, or the only team of ``specialty`` whose
    layers list ``member``."""
    if team_id is not None:
        team = rotas.teams.get(team_id)
        if team is None:
            raise CoverRejectedError(f"no team has id {team_id!r}")
        if team.specialty != specialty:
            raise CoverRejectedError(f"team {team_id} answers {team.specialty}, not {specialty}")
        return team
    teams = rotas.teams_for(specialty)
    if not teams:
        raise CoverRejectedError(f"no team answers specialty {specialty!r}")
    mine = [team for team in teams if any(member in layer.members for layer in team.layers)]
    if len(mine) == 1:
        return mine[0]
    names = ", ".join(sorted(team.id for team in (mine or teams)))
    raise CoverRejectedError(f"give 'team': {specialty} has more than one to choose from ({names})")


def check_live(rotas: Rotas, live: LiveOverride, now: datetime) -> None:
    """Raise CoverRejectedError unless ``live`` may be applied at aware instant ``now``."""
    team = rotas.teams.get(live.team_id)
    if team is None:
        raise CoverRejectedError(f"no team has id {live.team_id!r}")
    if team.specialty != live.specialty:
        raise CoverRejectedError(f"team {team.id} answers {team.specialty}, not {live.specialty}")
    if live.override.member not in rotas.members:
        raise CoverRejectedError(f"no member has id {live.override.member!r}")
    trial_team = team.model_copy(update={"overrides": (*team.overrides, live.override)})
    # The loader's checks, on this team alone (the others passed them at load).
    trial = rotas.model_copy(update={"teams": {team.id: trial_team}})
    index = len(team.overrides)
    for problem in [*reference_problems(trial), *dst_gap_problems(trial)]:
        if problem.team_id == team.id and problem.loc[:2] == ("overrides", index):
            raise CoverRejectedError(f"{problem.loc[2]}: {problem.message}")
    if instant(live.override.to, rotas.zone) <= now:
        raise CoverRejectedError(f"'to' {live.override.to:%Y-%m-%d %H:%M} has already passed")


def with_live_overrides(rotas: Rotas, lives: Iterable[LiveOverride]) -> Rotas:
    """``rotas`` with each live override appended to its team's overrides (in the given order).

    Overrides for a team the rotas no longer have are left out: ``usable`` says which those are.
    """
    added: dict[str, list[Override]] = {}
    for live in lives:
        if live.team_id in rotas.teams:
            added.setdefault(live.team_id, []).append(live.marked())
    if not added:
        return rotas
    teams = dict(rotas.teams)
    for team_id, overrides in added.items():
        team = teams[team_id]
        teams[team_id] = team.model_copy(update={"overrides": (*team.overrides, *overrides)})
    return rotas.model_copy(update={"teams": teams})


def usable(
    rotas: Rotas, lives: Iterable[LiveOverride], now: datetime
) -> tuple[list[LiveOverride], list[tuple[LiveOverride, str]]]:
    """Split ``lives`` into those the rotas can take at ``now`` and the rest, with the reason
    (after a reload removed a member or team, or once an override is over)."""
    good: list[LiveOverride] = []
    bad: list[tuple[LiveOverride, str]] = []
    for live in lives:
        try:
            check_live(rotas, live, now)
        except CoverRejectedError as why:
            bad.append((live, str(why)))
        else:
            good.append(live)
    return good, bad
