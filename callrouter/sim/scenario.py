"""What a run simulates: dialplans, who can be rung for each line, how each member behaves.

Two sources: synthetic always-on-call teams from the workload's ``teams`` (one generated
dialplan per area), or the real dialplans and rotas of a config tree, whose rotas decide who is on
call at each instant. Either way the call flow sees an ordinary ``PlanSource``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from callrouter.core.nhs_number import check_digit
from callrouter.core.plan import Candidate, HuntPlan, Tier
from callrouter.oncall.calendar import is_open
from callrouter.oncall.planner import RotaPlanSource
from callrouter.settings.compile import hunt_policy
from callrouter.settings.dialplan import Dialplan, Menu, NhsNumberCapture
from callrouter.settings.loader import Settings
from callrouter.settings.rota import Rotas
from callrouter.sim.workload import Away, Consultants, Workload, step_at

SYNTHETIC_AREA = "sim"
SIM_PRACTICE_NUMBER = "02000000001"
UNREGISTERED_NUMBER = "02000000999"
LONDON = ZoneInfo("Europe/London")
NEVER_AWAY = Away()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One member's habits: answer at all (by hour of the day), how fast (lognormal), accept
    after the whisper, and how often they are away (availability sessions)."""

    answer_probability: float
    delay_mu: float
    delay_sigma: float
    accept_probability: float
    by_hour: tuple[float, ...] = (1.0,) * 24  # answer-probability multiplier per local hour
    away: Away = NEVER_AWAY

    def delay(self, z: float) -> float:
        return math.exp(self.delay_mu + self.delay_sigma * z)

    def answers_at(self, hour: int) -> float:
        """The chance of answering a call that came in at ``hour`` (local time)."""
        return min(1.0, self.answer_probability * self.by_hour[hour])


@dataclass(frozen=True, slots=True)
class Line:
    """One (area, specialty) the traffic reaches: the GP's keys and who could ever be rung."""

    area: str
    specialty: str
    rate: float  # calls per hour
    keys: tuple[str, ...]  # what the GP keys from the greeting on
    universe: tuple[str, ...]  # every member any plan of this line can hold, local first


@dataclass(frozen=True, slots=True)
class Scenario:
    dialplans: Mapping[str, Dialplan]
    plans: Callable[[str, str, float], HuntPlan]
    is_open: Callable[[Dialplan, float], bool]
    lines: tuple[Line, ...]
    callers: Mapping[str, str]  # area → the caller number the simulated GPs use
    specialty_names: Mapping[str, str]
    behaviour: Mapping[str, Behaviour]  # every member of every universe
    default_strategy: str
    zone: ZoneInfo

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self.behaviour)


def behaviours(workload: Workload, members: Mapping[str, str]) -> dict[str, Behaviour]:
    """Each member's habits (``members``: member id → tier kind, ``local`` or ``ncn``):
    the member's override, field by field, over their tier's, over the workload's."""
    out: dict[str, Behaviour] = {}
    for member, kind in members.items():
        out[member] = behaviour_of(workload.consultants, kind, member)
    return out


def behaviour_of(base: Consultants, kind: str, member: str | None) -> Behaviour:
    answer = base.answer_probability
    delay = base.answer_delay_seconds
    accept = base.accept_probability
    by_hour = base.by_hour
    away = base.away
    for over in (base.tiers.get(kind), base.overrides.get(member) if member else None):
        if over is None:
            continue
        answer = answer if over.answer_probability is None else over.answer_probability
        delay = delay if over.answer_delay_seconds is None else over.answer_delay_seconds
        accept = accept if over.accept_probability is None else over.accept_probability
        by_hour = by_hour if over.by_hour is None else over.by_hour
        away = away if over.away is None else over.away
    hourly = tuple(step_at(by_hour, hour) for hour in range(24))
    return Behaviour(answer, delay.mu, delay.sigma, accept, hourly, away)


def synthetic_kind(member: str) -> str:
    """The tier kind of a synthetic member id (``<specialty>-local-<n>``, ``-ncn-<n>``)."""
    return "ncn" if member.rsplit("-", 2)[-2] == "ncn" else "local"


def menu_keys(menu: Menu, specialty: str) -> tuple[str, ...] | None:
    """The digits that reach ``specialty`` through the menu tree (sub-menus included)."""
    for option in menu.options:
        if option.specialty == specialty:
            return tuple(option.digits)
        if option.submenu is not None:
            below = menu_keys(option.submenu, specialty)
            if below is not None:
                return (*option.digits, *below)
    return None


def _valid_nhs_number() -> str:
    for n in range(100_000_000, 100_001_000):
        check = check_digit(str(n))
        if check is not None:
            return f"{n}{check}"
    raise AssertionError("unreachable: most nine-digit stems have a check digit")


def gp_keys(dialplan: Dialplan, specialty: str) -> tuple[str, ...]:
    """Keys a GP presses from the greeting on (barge-in): the NHS step, then the menu path."""
    path = menu_keys(dialplan.menu, specialty)
    if path is None:
        raise LookupError(f"area {dialplan.area}: the menu does not reach {specialty!r}")
    if dialplan.nhs_number is NhsNumberCapture.OFF:
        return path
    if dialplan.nhs_number is NhsNumberCapture.OPTIONAL:
        return ("*", *path)
    return (*_valid_nhs_number(), "#", *path)  # the prompt asks for '#' after the number


# -- synthetic teams ------------------------------------------------------------------------------


def synthetic_dialplan(area: str, specialties: list[str], workload: Workload) -> Dialplan:
    """A plain dialplan: greeting, one key (or a two-digit code) per specialty, the workload's
    hunt policy with the synthetic ``<specialty>-local`` and ``-ncn`` teams as tiers."""
    single = len(specialties) <= 9
    options = [
        {"digits": str(n + 1) if single else str(11 + n + n // 9), "specialty": s}
        for n, s in enumerate(specialties)
    ]
    return Dialplan.model_validate(
        {
            "area": area,
            "name": f"Simulated {area} advice line",
            "numbers": ["02000000000"],
            "prompts": {"greeting": "Welcome to the advice line."},
            "practices": [
                {
                    "id": "sim-practice",
                    "name": "Simulated Surgery",
                    "numbers": [SIM_PRACTICE_NUMBER],
                }
            ],
            "menu": {"options": options},
            "hunt_defaults": workload.hunt.model_dump(exclude_none=True, mode="json"),
            "specialties": {s: {"tiers": [f"{s}-local", f"{s}-ncn"]} for s in specialties},
        }
    )


def _member(member_id: str, team: str) -> Candidate:
    return Candidate(member_id, member_id, f"sip:{member_id}@sim.invalid", f"synthetic {team}")


def synthetic_scenario(workload: Workload) -> Scenario:
    teams = workload.synthetic_members()
    traffic = workload.traffic()
    areas: dict[str, list[str]] = {}
    for area, specialty, _ in traffic:
        served = areas.setdefault(area or SYNTHETIC_AREA, [])
        if specialty not in served:
            served.append(specialty)
    dialplans = {a: synthetic_dialplan(a, sorted(s), workload) for a, s in areas.items()}
    plans: dict[tuple[str, str], HuntPlan] = {}
    for area, dialplan in dialplans.items():
        for specialty in areas[area]:
            size = (workload.teams or {})[specialty]
            members = teams[specialty]
            local = tuple(_member(m, f"{specialty}-local") for m in members[: size.local])
            ncn = tuple(_member(m, f"{specialty}-ncn") for m in members[size.local :])
            tiers = (
                Tier("local", f"{specialty}-local", local),
                Tier("ncn", f"{specialty}-ncn", ncn),
            )
            policy = hunt_policy(dialplan.specialties[specialty])
            plans[area, specialty] = HuntPlan(area, specialty, policy, tiers)

    def plan(area: str, specialty: str, now: float) -> HuntPlan:
        return plans[area, specialty]

    lines = tuple(
        Line(
            area or SYNTHETIC_AREA,
            specialty,
            rate,
            gp_keys(dialplans[area or SYNTHETIC_AREA], specialty),
            tuple(teams[specialty]),
        )
        for area, specialty, rate in traffic
    )
    everyone = [m for s in sorted(teams) for m in teams[s]]
    first = next(iter(dialplans.values()))
    return Scenario(
        dialplans=dialplans,
        plans=plan,
        is_open=lambda _dialplan, _now: True,  # arrivals come only inside the workload's hours
        lines=lines,
        callers=dict.fromkeys(dialplans, SIM_PRACTICE_NUMBER),
        specialty_names={s: s.replace("-", " ").capitalize() for s in teams},
        behaviour=behaviours(workload, {m: synthetic_kind(m) for m in everyone}),
        default_strategy=next(iter(first.specialties.values())).strategy.value,
        zone=LONDON,
    )


# -- rotas of a config tree -----------------------------------------------------------------------


def team_members(rotas: Rotas, team_id: str) -> list[str]:
    """Everyone a team can ever put on call: layer members, calendar shifts and overrides."""
    team = rotas.teams[team_id]
    found: list[str] = []
    for layer in team.layers:
        found.extend(layer.members)
        if layer.ics is not None:
            found.extend(shift.member for shift in layer.ics.shifts or ())
    for override in team.overrides:
        found.append(override.member)
    return list(dict.fromkeys(m for m in found if m in rotas.members))


def served_specialties(settings: Settings) -> dict[str | None, set[str]]:
    served: dict[str | None, set[str]] = {None: set()}
    for area, dialplan in settings.dialplans.items():
        reachable = {s for s in dialplan.specialties if menu_keys(dialplan.menu, s) is not None}
        served[area] = reachable
        served[None] |= reachable
    return served


def rota_scenario(workload: Workload, settings: Settings) -> Scenario:
    """Lines from the traffic keys (a bare specialty is spread evenly over the areas serving it);
    plans resolved from the rotas at each instant, cached per minute (rota times are minutes)."""
    served = served_specialties(settings)
    lines: list[Line] = []
    for area, specialty, rate in workload.traffic():
        areas = [area] if area else sorted(a for a in settings.dialplans if specialty in served[a])
        for each in areas:
            dialplan = settings.dialplans[each]
            universe: list[str] = []
            for team_id in dialplan.specialties[specialty].tiers:
                universe.extend(team_members(settings.rotas, team_id))
            universe = list(dict.fromkeys(universe))
            keys = gp_keys(dialplan, specialty)
            lines.append(Line(each, specialty, rate / len(areas), keys, tuple(universe)))
    source = RotaPlanSource(settings.dialplans, settings.rotas)
    cache: dict[tuple[str, str, int], HuntPlan] = {}

    def plan(area: str, specialty: str, now: float) -> HuntPlan:
        key = (area, specialty, int(now // 60))
        found = cache.get(key)
        if found is None:
            if len(cache) > 10_000:
                cache.clear()
            found = cache[key] = source.plan(area, specialty, now)
        return found

    zone = settings.rotas.zone
    open_cache: dict[tuple[str, int], bool] = {}

    def line_open(dialplan: Dialplan, now: float) -> bool:
        key = (dialplan.area, int(now // 60))
        found = open_cache.get(key)
        if found is None:
            found = open_cache[key] = is_open(dialplan.hours, datetime.fromtimestamp(now, zone))
        return found

    callers = {
        area: next((n for p in d.practices for n in p.numbers), UNREGISTERED_NUMBER)
        for area, d in settings.dialplans.items()
    }
    kinds: dict[str, str] = {}
    for line in lines:
        for team_id in settings.dialplans[line.area].specialties[line.specialty].tiers:
            kind = settings.rotas.teams[team_id].kind.value
            for member in team_members(settings.rotas, team_id):
                kinds.setdefault(member, kind)
    defaults = [
        settings.dialplans[line.area].specialties[line.specialty].strategy.value for line in lines
    ]
    return Scenario(
        dialplans=settings.dialplans,
        plans=plan,
        is_open=line_open,
        lines=tuple(lines),
        callers=callers,
        specialty_names=dict(settings.config.specialties),
        behaviour=behaviours(workload, kinds),
        default_strategy=max(set(defaults), key=defaults.count),
        zone=zone,
    )
