"""Run a workload: build the scenario, draw the arrivals once, run each strategy over them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from callrouter.core.strategies import builtin_names
from callrouter.settings.loader import load_settings
from callrouter.settings.source import SourceFile
from callrouter.sim.draws import Arrivals, draw_arrivals, service_days
from callrouter.sim.oracle import ORACLE
from callrouter.sim.report import Summary, summarise
from callrouter.sim.scenario import Scenario, rota_scenario, served_specialties, synthetic_scenario
from callrouter.sim.workload import Workload, check_workload, read_workload
from callrouter.sim.world import World

# Progress callback: (strategy name, calls done in this strategy, calls per strategy).
Progress = Callable[[str, int, int], None]


def all_strategies() -> list[str]:
    """Every strategy a run compares by default: the oracle first, then the built-ins."""
    return [ORACLE, *builtin_names()]


@dataclass(frozen=True, slots=True)
class Prepared:
    workload: Workload
    scenario: Scenario
    arrivals: Arrivals


def prepare(workload_path: Path, config_path: Path | None = None) -> Prepared:
    """Read and cross-check the workload (and the config tree when it has no ``teams``).
    Raises ``ConfigError`` listing every problem with its file:line:col."""
    source = read_workload(workload_path)
    workload = source.model
    if workload.teams is not None:
        scenario = synthetic_scenario_checked(source)
    else:
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
    return Prepared(workload, scenario, arrivals_for(workload, scenario))


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
        service_days(workload.start, workload.days),
        opens=(opens.hour, opens.minute),
        closes=(closes.hour, closes.minute),
        zone=scenario.zone,
    )


def run_strategy(
    prepared: Prepared, strategy: str, progress: Callable[[int], None] | None = None
) -> Summary:
    workload = prepared.workload
    length = workload.call_length_seconds
    world = World(
        prepared.scenario,
        prepared.arrivals,
        strategy,
        seed=workload.seed,
        call_length=(length.mu, length.sigma),
        patience=workload.gp_patience_seconds,
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


def _bind(progress: Progress, name: str, total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        progress(name, done, total)

    return report
