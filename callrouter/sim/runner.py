"""Run a workload: build the scenario, draw the arrivals once, run each strategy over them."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from callrouter.core.strategies import builtin_names
from callrouter.settings.loader import load_settings
from callrouter.settings.source import SourceFile
from callrouter.sim.bound import BOUND, CallOptions, compute_bound, each_call
from callrouter.sim.draws import Arrivals, AwaySpells, draw_arrivals, draw_away, service_days
from callrouter.sim.report import Summary, summarise
from callrouter.sim.scenario import Scenario, rota_scenario, served_specialties, synthetic_scenario
from callrouter.sim.workload import Workload, check_workload, read_workload
from callrouter.sim.world import World

# Progress callback: (strategy name, calls done in this strategy, calls per strategy).
Progress = Callable[[str, int, int], None]


def all_strategies() -> list[str]:
    """Every strategy a run compares by default: the built-ins (the bound is not one)."""
    return builtin_names()


@dataclass(frozen=True, slots=True)
class Prepared:
    workload: Workload
    scenario: Scenario
    arrivals: Arrivals
    away: dict[str, AwaySpells]

    def rerun(self, *, seed: int | None = None, days: int | None = None) -> Prepared:
        """The same scenario with another seed or length: arrivals and spells drawn again."""
        update: dict[str, int] = {}
        if seed is not None:
            update["seed"] = seed
        if days is not None:
            update["days"] = days
        if not update:
            return self
        return prepared_for(self.workload.model_copy(update=update), self.scenario)


def prepared_for(workload: Workload, scenario: Scenario) -> Prepared:
    return Prepared(
        workload, scenario, arrivals_for(workload, scenario), away_for(workload, scenario)
    )


def prepare(
    workload_path: Path, config_path: Path | None = None, *, fallback: Path | None = None
) -> Prepared:
    """Read and cross-check the workload (and the config tree when it has no ``teams``: the
    one given, else the workload's ``config`` (relative to the workload file), else
    ``fallback`` if it exists). Raises ``ConfigError`` listing every problem at file:line:col."""
    source = read_workload(workload_path)
    workload = source.model
    if workload.teams is not None:
        scenario = synthetic_scenario_checked(source)
    else:
        if config_path is None and workload.config is not None:
            config_path = workload_path.parent / workload.config
        if config_path is None and fallback is not None and fallback.exists():
            config_path = fallback
        if config_path is None:
            from callrouter.settings.errors import ConfigError, ConfigIssue  # noqa: PLC0415

            where = source.position(("calls_per_hour",))
            raise ConfigError(
                [
                    ConfigIssue(
                        workload_path,
                        where.line if where else None,
                        where.col if where else None,
                        "teams",
                        "no 'teams' here and no --config given: say who is on call one way",
                    )
                ]
            )
        settings = load_settings(config_path)
        check_workload(source, settings.rotas.members, served_specialties(settings))
        scenario = rota_scenario(workload, settings)
    return prepared_for(workload, scenario)


def synthetic_scenario_checked(source: SourceFile[Workload]) -> Scenario:
    workload = source.model
    members = [m for team in workload.synthetic_members().values() for m in team]
    check_workload(source, members)
    return synthetic_scenario(workload)


def arrivals_for(workload: Workload, scenario: Scenario) -> Arrivals:
    opens, closes = workload.hours
    return draw_arrivals(
        workload.seed,
        scenario.lines,
        service_days(workload.start, workload.days, weekends=workload.weekends),
        opens=(opens.hour, opens.minute),
        closes=(closes.hour, closes.minute),
        zone=scenario.zone,
        profile=workload.arrivals,
    )


def away_for(workload: Workload, scenario: Scenario) -> dict[str, AwaySpells]:
    """Every member's availability sessions (members who are never away are left out)."""
    opens, closes = workload.hours
    days = service_days(workload.start, workload.days, weekends=workload.weekends)
    spells = {
        member: draw_away(
            workload.seed,
            member,
            habit.away,
            days,
            opens=(opens.hour, opens.minute),
            closes=(closes.hour, closes.minute),
            zone=scenario.zone,
        )
        for member, habit in scenario.behaviour.items()
    }
    return {member: found for member, found in spells.items() if found.starts}


def calls_of(prepared: Prepared) -> Iterator[CallOptions]:
    """Each call of a prepared world that reached the menu, with every member who could have
    connected it (``bound.each_call``): what the bound and the constrained bound read."""
    workload = prepared.workload
    length = workload.call_length_seconds
    patience = workload.patience()
    return each_call(
        prepared.scenario,
        prepared.arrivals,
        seed=workload.seed,
        patience=(patience.mu, patience.sigma),
        call_length=(length.mu, length.sigma),
        away=prepared.away,
    )


def run_strategy(
    prepared: Prepared, strategy: str, progress: Callable[[int], None] | None = None
) -> Summary:
    workload = prepared.workload
    length = workload.call_length_seconds
    patience = workload.patience()
    if strategy == BOUND:
        tally = compute_bound(calls_of(prepared), len(prepared.arrivals.times))
        return summarise(strategy, tally, prepared.scenario.members)
    world = World(
        prepared.scenario,
        prepared.arrivals,
        strategy,
        seed=workload.seed,
        call_length=(length.mu, length.sigma),
        patience=(patience.mu, patience.sigma),
        away=prepared.away,
        progress=progress,
    )
    tally = world.run()
    return summarise(strategy, tally, prepared.scenario.members)


def run_all(
    prepared: Prepared, strategies: Sequence[str], progress: Progress | None = None
) -> list[Summary]:
    """Each strategy over the same arrivals and behaviour draws, in the order given."""
    total = len(prepared.arrivals)
    results = []
    for name in strategies:
        report: Callable[[int], None] | None = None
        if progress is not None:
            report = _bind(progress, name, total)
        results.append(run_strategy(prepared, name, report))
    return results


def run_seed(
    prepared: Prepared, strategies: Sequence[str], progress: Progress | None = None
) -> dict[str, Summary]:
    """The bound and each strategy over one seed's world, by name (the bound first)."""
    wanted = [BOUND, *(n for n in strategies if n != BOUND)]
    return {s.name: s for s in run_all(prepared, wanted, progress)}


def run_seeds(
    prepared: Prepared,
    strategies: Sequence[str],
    seeds: Sequence[int],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[dict[str, Summary]]:
    """``run_seed`` for each seed, in ``jobs`` processes when more than one (the seeds are
    independent worlds; each process gets the prepared scenario and draws its own). With one
    seed, the strategies (and the bound) are what run side by side: each is its own world over
    the same draws, so the figures are those of running them one after another."""
    if jobs <= 1:
        return [run_seed(prepared.rerun(seed=seed), strategies, progress) for seed in seeds]
    context = multiprocessing.get_context("fork")  # the scenario's closures are not picklable
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        if len(seeds) == 1:
            return [_strategies_in_pool(pool, prepared.rerun(seed=seeds[0]), strategies, progress)]
        _SHARED[0] = (prepared, tuple(strategies))
        try:
            return list(pool.map(_seed_in_child, seeds))
        finally:
            _SHARED.clear()


def _strategies_in_pool(
    pool: ProcessPoolExecutor,
    prepared: Prepared,
    strategies: Sequence[str],
    progress: Progress | None,
) -> dict[str, Summary]:
    """The bound and each strategy of one seed, one process each (as many at once as the pool
    has), by name in ``run_seed``'s order; ``progress`` hears of each as it finishes."""
    wanted = [BOUND, *(n for n in strategies if n != BOUND)]
    total = len(prepared.arrivals)
    _SHARED[0] = (prepared, tuple(wanted))
    try:
        futures = {pool.submit(_strategy_in_child, name): name for name in wanted}
        for future in as_completed(futures):
            if progress is not None:
                progress(futures[future], total, total)
        done = {futures[future]: future.result() for future in futures}
    finally:
        _SHARED.clear()
    return {name: done[name] for name in wanted}


_SHARED: dict[int, tuple[Prepared, tuple[str, ...]]] = {}  # inherited by forked children


def _strategy_in_child(name: str) -> Summary:
    prepared, _ = _SHARED[0]
    return run_strategy(prepared, name)


def _seed_in_child(seed: int) -> dict[str, Summary]:
    prepared, strategies = _SHARED[0]
    return run_seed(prepared.rerun(seed=seed), strategies)


def _bind(progress: Progress, name: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        progress(name, done, total)

    return report
