"""Strategies side by side in processes give the figures of running them one after another."""

from __future__ import annotations

from pathlib import Path

from callrouter.sim.runner import BOUND, all_strategies, prepare, run_seeds


class TestStrategiesInProcesses:
    """``--jobs`` changes how long a run takes, never what it reports."""

    def test_one_seed_in_two_processes_reports_what_one_process_does(self, tiny: Path) -> None:
        prepared = prepare(tiny)
        names = all_strategies()
        alone = run_seeds(prepared, names, [3], jobs=1)
        side_by_side = run_seeds(prepared, names, [3], jobs=2)
        assert list(side_by_side[0]) == [BOUND, *names]  # the bound first, then as asked
        assert repr(side_by_side) == repr(alone)  # by repr: the bound has NaN figures
        assert alone[0]["linear"].calls > 20

    def test_progress_hears_of_every_strategy(self, tiny: Path) -> None:
        prepared = prepare(tiny)
        heard: list[tuple[str, int, int]] = []
        run_seeds(prepared, ["linear", "ringall"], [3], jobs=2, progress=lambda *a: heard.append(a))
        total = len(prepared.arrivals)
        assert sorted(heard) == sorted(
            (name, total, total) for name in (BOUND, "linear", "ringall")
        )
