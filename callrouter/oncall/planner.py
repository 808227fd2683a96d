"""Build a hunt plan: the specialty's policy, and for each of its tiers the team on call now.

Pure: the instant is an argument. ``RotaPlanSource`` is what the call flow asks for a plan (it
takes POSIX ``now`` like everything else in the core) and only converts it to a zoned datetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from callrouter.core.plan import HuntPlan, Tier
from callrouter.oncall.rota import UnknownTeamError, explain
from callrouter.settings.compile import hunt_policy
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.rota import Rotas


class UnknownSpecialtyError(LookupError):
    """The dialplan has no hunt policy for the specialty asked for."""


class UnknownAreaError(LookupError):
    """No dialplan serves the area asked for."""


def build_hunt_plan(dialplan: Dialplan, rotas: Rotas, specialty: str, at: datetime) -> HuntPlan:
    """The plan for ``specialty`` at aware instant ``at``: one tier per team in the policy's
    order, named by the team's kind (``local``, ``ncn``), with its members on call in order."""
    policy = dialplan.specialties.get(specialty)
    if policy is None:
        raise UnknownSpecialtyError(f"area {dialplan.area} has no policy for {specialty!r}")
    tiers: list[Tier] = []
    for team_id in policy.tiers:
        team = rotas.teams.get(team_id)
        if team is None:
            raise UnknownTeamError(f"area {dialplan.area}, {specialty}: no team {team_id!r}")
        tiers.append(Tier(team.kind.value, team.id, explain(rotas, team_id, at).candidates))
    return HuntPlan(dialplan.area, specialty, hunt_policy(policy), tuple(tiers))


class RotaPlanSource:
    """Plans from the loaded rotas, for the dialplans of every area served."""

    def __init__(self, dialplans: Mapping[str, Dialplan], rotas: Rotas) -> None:
        self._dialplans = dict(dialplans)
        self._rotas = rotas

    def __repr__(self) -> str:
        return (
            f"<RotaPlanSource areas={sorted(self._dialplans)} teams={len(self._rotas.teams)} "
            f"zone={self._rotas.timezone}>"
        )

    def plan(self, area: str, specialty: str, now: float) -> HuntPlan:
        """The hunt plan for a call in ``area`` choosing ``specialty`` at POSIX time ``now``."""
        dialplan = self._dialplans.get(area)
        if dialplan is None:
            raise UnknownAreaError(f"no dialplan for area {area!r}")
        at = datetime.fromtimestamp(now, tz=self._rotas.zone)
        return build_hunt_plan(dialplan, self._rotas, specialty, at)
