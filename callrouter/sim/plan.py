"""Capacity planning: does the current team meet the targets; if not, the smallest that does.

Per specialty with traffic, over every seed of the run (the figures are means with their 95%
confidence half-width, and a target counts as met when the mean reaches it):

1. **The current team**: the workload's synthetic team, or with ``--config`` the real rotas
   (who is on call when, their dialplans' hunt policies), under the default strategy. When it
   already meets the targets, the plan says so, with its margin.
2. Otherwise synthetic always-on-call teams of growing size take that specialty's calls. The
   first members keep the behaviour the workload gives them (``overrides`` naming
   ``<specialty>-local-<n>``); **new members take their tier's behaviour** (``consultants.tiers``
   over the workload's defaults), which the table states as the assumption. At each size every
   split between local and NCN members is tried; the answer is the smallest team that meets both
   targets, among equal sizes the one with the largest FTCR margin. With a rota workload the
   trial teams hunt under the specialty's real policy (ring time, passes, max wait, leg cap
   from its dialplan), not the workload's defaults.

The table shows the current team's own figures beside a proposal, and flags a team that meets
the FTCR target by less than the seed-to-seed spread (more seeds, or one member more, to be
sure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from callrouter.settings.dialplan import HuntDefaults
from callrouter.sim.runner import Prepared, prepared_for, run_seeds
from callrouter.sim.scenario import behaviour_of, synthetic_scenario
from callrouter.sim.verdict import Spread
from callrouter.sim.workload import Consultants, TeamSize, Workload

MAX_TEAM = 24  # local + NCN members tried before saying the target is out of reach
MAX_NCN = 4  # NCN members tried at each team size (the network is shared; locals come first)
PLATEAU_SIZES = 3  # stop when this many larger sizes in a row bring nothing closer


@dataclass(frozen=True, slots=True)
class TeamPlan:
    specialty: str
    calls_per_hour: float
    current_meets: bool  # the current team already meets the targets
    local: int | None  # the team proposed (the current one's size when it meets); None: none
    ncn: int | None
    ftcr: Spread
    connect_mean_s: Spread
    calls: int
    reached: bool = True  # False: local/ncn are the closest team tried, not one that meets
    tried_up_to: int = 0  # with reached False: the largest team tried
    current: tuple[Spread, Spread] | None = None  # the current team's FTCR and connection

    def margin(self, target_ftcr: float) -> Spread:
        return Spread(self.ftcr.mean - target_ftcr, self.ftcr.half_width)

    def within_spread(self, target_ftcr: float) -> bool:
        """Meets the FTCR target by less than the seed-to-seed spread of its FTCR."""
        margin = self.margin(target_ftcr)
        return 0.0 <= margin.mean < margin.half_width


def plan_teams(
    prepared: Prepared,
    strategy: str,
    target_ftcr: float,
    *,
    target_connect_s: float,
    seeds: Sequence[int] | None = None,
    progress: Callable[[str, int], None] | None = None,
    max_team: int = MAX_TEAM,
) -> list[TeamPlan]:
    workload = prepared.workload
    seeds = list(seeds or [workload.seed])
    rates: dict[str, float] = {}
    for _area, specialty, rate in workload.traffic():
        rates[specialty] = rates.get(specialty, 0.0) + rate
    current = run_seeds(prepared, [strategy], seeds)
    sizes = workload.teams or {}
    plans = []
    for specialty, rate in rates.items():
        ftcr = Spread.of([run[strategy].per_specialty[specialty].ftcr for run in current])
        conn = Spread.of([run[strategy].per_specialty[specialty].connect_mean_s for run in current])
        calls = round(
            sum(run[strategy].per_specialty[specialty].calls for run in current) / len(current)
        )
        if ftcr.mean >= target_ftcr and conn.mean <= target_connect_s:
            size = sizes.get(specialty)
            plans.append(
                TeamPlan(
                    specialty,
                    rate,
                    True,
                    None if size is None else size.local,
                    None if size is None else size.ncn,
                    ftcr,
                    conn,
                    calls,
                )
            )
            continue
        found = _search(
            workload.model_copy(update={"hunt": real_hunt(prepared, specialty)}),
            (specialty, rate),
            strategy,
            (target_ftcr, target_connect_s),
            seeds,
            progress=progress,
            max_team=max_team,
        )
        plans.append(replace(found, current=(ftcr, conn)))
    return plans


def real_hunt(prepared: Prepared, specialty: str) -> HuntDefaults:
    """The hunt policy trial teams for ``specialty`` use: the workload's own for synthetic
    teams; with a rota workload, the one the specialty's dialplan gives its calls."""
    workload = prepared.workload
    scenario = prepared.scenario
    if workload.teams is not None:
        return workload.hunt
    line = next((line for line in scenario.lines if line.specialty == specialty), None)
    if line is None or not prepared.arrivals.times:
        return workload.hunt
    policy = scenario.plans(line.area, specialty, prepared.arrivals.times[0]).policy
    return HuntDefaults(**{name: getattr(policy, name) for name in HuntDefaults.model_fields})


def _search(
    workload: Workload,
    traffic: tuple[str, float],
    strategy: str,
    targets: tuple[float, float],
    seeds: list[int],
    *,
    progress: Callable[[str, int], None] | None,
    max_team: int,
) -> TeamPlan:
    specialty, rate = traffic
    target_ftcr, target_connect_s = targets
    best: TeamPlan | None = None
    stale = 0
    for total in range(1, max_team + 1):
        if progress is not None:
            progress(specialty, total)
        meeting: list[TeamPlan] = []
        before = best
        for ncn in range(min(total - 1, MAX_NCN) + 1):  # most local first (at least one)
            tried = _try(workload, traffic, (total - ncn, ncn), strategy, seeds)
            if tried.ftcr.mean >= target_ftcr and tried.connect_mean_s.mean <= target_connect_s:
                meeting.append(tried)
            elif best is None or _closer(tried, best, target_ftcr):
                best = tried
        if meeting:
            return max(meeting, key=lambda p: (p.ftcr.mean, -p.connect_mean_s.mean))
        stale = stale + 1 if before is not None and best is before else 0
        if stale >= PLATEAU_SIZES:
            break  # larger teams stopped helping: more members will not reach it
    assert best is not None
    return TeamPlan(
        specialty,
        rate,
        False,
        best.local,
        best.ncn,
        best.ftcr,
        best.connect_mean_s,
        best.calls,
        reached=False,
        tried_up_to=total,
    )


def _closer(a: TeamPlan, b: TeamPlan, target_ftcr: float) -> bool:
    fa, fb = min(a.ftcr.mean, target_ftcr), min(b.ftcr.mean, target_ftcr)
    return fa > fb or (fa == fb and a.connect_mean_s.mean < b.connect_mean_s.mean)


def _try(
    workload: Workload,
    traffic: tuple[str, float],
    team: tuple[int, int],
    strategy: str,
    seeds: list[int],
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
    runs = run_seeds(prepared_for(trial, synthetic_scenario(trial)), [strategy], seeds)
    figures = [run[strategy] for run in runs]
    return TeamPlan(
        specialty,
        rate,
        False,
        local,
        ncn,
        Spread.of([f.ftcr for f in figures]),
        Spread.of([f.connect_mean_s for f in figures]),
        round(sum(f.calls for f in figures) / len(figures)),
    )


def assumption(consultants: Consultants) -> str:
    """The behaviour new members are given, said in words."""
    parts = []
    for kind in ("local", "ncn"):
        habit = behaviour_of(consultants, kind, None)
        median = 2.718281828459045**habit.delay_mu
        parts.append(
            f"{kind} {habit.answer_probability:.0%} pick-up (median {median:.0f} s), "
            f"{habit.accept_probability:.0%} accept"
        )
    return "new members behave like their tier: " + "; ".join(parts)


def plan_table(
    plans: list[TeamPlan],
    target_ftcr: float,
    target_connect_s: float,
    max_team: int = MAX_TEAM,
    consultants: Consultants | None = None,
) -> str:
    lines = [
        f"Smallest teams for FTCR >= {target_ftcr:.0%} and mean connection <= "
        f"{target_connect_s:.0f} s (means over the seeds, ±95% CI):",
        f"{'specialty':<20}{'calls/h':>8}{'local':>7}{'ncn':>5}{'FTCR':>16}{'margin':>14}"
        f"{'conn mean':>14}",
        "-" * 84,
    ]
    for p in plans:
        local = "-" if p.local is None else str(p.local)
        ncn = "-" if p.ncn is None else str(p.ncn)
        if p.current_meets:
            note = "  the current team already meets the targets"
        elif not p.reached:
            missed = [
                name
                for name, ok in (
                    ("FTCR", p.ftcr.mean >= target_ftcr),
                    ("connection", p.connect_mean_s.mean <= target_connect_s),
                )
                if not ok
            ]
            note = (
                f"  {' and '.join(missed)} not reached (tried up to {p.tried_up_to} members): "
                "closest shown"
            )
        elif p.within_spread(target_ftcr):
            note = "  meets by less than the seed spread: run more seeds, or add one"
        else:
            note = ""
        lines.append(
            f"{p.specialty:<20}{p.calls_per_hour:>8.2f}{local:>7}{ncn:>5}"
            f"{p.ftcr.show('.1f', 100) + '%':>16}{p.margin(target_ftcr).show('+.1f', 100):>13}pt"
            f"{p.connect_mean_s.show('.1f') + 's':>14}{note}"
        )
        if p.current is not None:
            ftcr, conn = p.current
            lines.append(
                f"{'  (current team)':<20}{'':>8}{'':>7}{'':>5}"
                f"{ftcr.show('.1f', 100) + '%':>16}"
                f"{Spread(ftcr.mean - target_ftcr, ftcr.half_width).show('+.1f', 100):>13}pt"
                f"{conn.show('.1f') + 's':>14}"
            )
    if consultants is not None:
        lines.append(assumption(consultants))
    return "\n".join(lines)
