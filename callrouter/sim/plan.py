"""Capacity planning: the smallest local and NCN team per specialty that meets the targets.

For each specialty with traffic, synthetic teams of growing size (members with the workload's
behaviour; an override applies where its id names a synthetic member) take that specialty's
calls under the default strategy. The answer is the smallest total team that reaches the target
FTCR and mean connection time; among equal totals, the one with the most local members (the
service promises local teams first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callrouter.sim.runner import Prepared, arrivals_for, run_strategy
from callrouter.sim.scenario import synthetic_scenario
from callrouter.sim.workload import TeamSize, Workload

MAX_TEAM = 24  # local + NCN members tried before saying the target is out of reach


@dataclass(frozen=True, slots=True)
class TeamPlan:
    specialty: str
    calls_per_hour: float
    local: int | None  # None: not reached within the largest team tried
    ncn: int | None
    ftcr: float
    connect_mean_s: float
    calls: int


def plan_teams(
    workload: Workload,
    strategy: str,
    target_ftcr: float,
    *,
    target_connect_s: float,
    progress: Callable[[str, int], None] | None = None,
    max_team: int = MAX_TEAM,
) -> list[TeamPlan]:
    rates: dict[str, float] = {}
    for _area, specialty, rate in workload.traffic():
        rates[specialty] = rates.get(specialty, 0.0) + rate
    return [
        _plan_one(
            workload,
            (specialty, rate),
            strategy,
            (target_ftcr, target_connect_s),
            progress=progress,
            max_team=max_team,
        )
        for specialty, rate in rates.items()
    ]


def _plan_one(
    workload: Workload,
    traffic: tuple[str, float],
    strategy: str,
    targets: tuple[float, float],
    *,
    progress: Callable[[str, int], None] | None,
    max_team: int,
) -> TeamPlan:
    specialty, rate = traffic
    target_ftcr, target_connect_s = targets
    best: TeamPlan | None = None
    for total in range(1, max_team + 1):
        if progress is not None:
            progress(specialty, total)
        for local in range(total, 0, -1):
            tried = _try(workload, traffic, (local, total - local), strategy)
            best = tried if best is None or _closer(tried, best, target_ftcr) else best
            if tried.ftcr >= target_ftcr and tried.connect_mean_s <= target_connect_s:
                return tried
    assert best is not None
    return TeamPlan(specialty, rate, None, None, best.ftcr, best.connect_mean_s, best.calls)


def _closer(a: TeamPlan, b: TeamPlan, target_ftcr: float) -> bool:
    return min(a.ftcr, target_ftcr) > min(b.ftcr, target_ftcr) or (
        min(a.ftcr, target_ftcr) == min(b.ftcr, target_ftcr) and a.connect_mean_s < b.connect_mean_s
    )


def _try(
    workload: Workload, traffic: tuple[str, float], team: tuple[int, int], strategy: str
) -> TeamPlan:
    specialty, rate = traffic
    local, ncn = team
    members = {f"{specialty}-local-{n}" for n in range(1, local + 1)} | {
        f"{specialty}-ncn-{n}" for n in range(1, ncn + 1)
    }
    overrides = {k: v for k, v in workload.consultants.overrides.items() if k in members}
    trial = workload.model_copy(
        update={
            "calls_per_hour": {specialty: rate},
            "teams": {specialty: TeamSize(local=local, ncn=ncn)},
            "consultants": workload.consultants.model_copy(update={"overrides": overrides}),
        }
    )
    scenario = synthetic_scenario(trial)
    summary = run_strategy(Prepared(trial, scenario, arrivals_for(trial, scenario)), strategy)
    return TeamPlan(
        specialty, rate, local, ncn, summary.ftcr, summary.connect_mean_s, summary.calls
    )


def plan_table(
    plans: list[TeamPlan], target_ftcr: float, target_connect_s: float, max_team: int = MAX_TEAM
) -> str:
    lines = [
        f"Smallest teams for FTCR >= {target_ftcr:.0%} and mean connection <= "
        f"{target_connect_s:.0f} s:",
        f"{'specialty':<24}{'calls/h':>8}{'local':>7}{'ncn':>5}{'FTCR':>8}{'conn mean':>11}",
        "-" * 63,
    ]
    for p in plans:
        local = "-" if p.local is None else str(p.local)
        ncn = "-" if p.ncn is None else str(p.ncn)
        note = "" if p.local is not None else f"  (not reached with {max_team} members; best)"
        lines.append(
            f"{p.specialty:<24}{p.calls_per_hour:>8.2f}{local:>7}{ncn:>5}"
            f"{p.ftcr * 100:>7.1f}%{p.connect_mean_s:>10.1f}s{note}"
        )
    return "\n".join(lines)
