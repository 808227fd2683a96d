"""Does keeping the issue's other goals put "connection <= 1.25 x the bound" out of reach?

    nice -n 15 python benchmarks/constrained_bound.py [--seeds 5] [--jobs 2] [--workload FILE]...

For each workload and seed: the bound's mean connection (clairvoyant, every call through its
fastest answerer), and the least mean connection a clairvoyant could reach while keeping the
FTCR, top-share and rings goals as that seed's linear and best fixed strategy set them
(callrouter/sim/constrained.py, a linear programme: a lower bound for every strategy that
meets those goals). If that were above 1.25 x the bound, the goals would contradict each other
whatever a strategy knew; if it is near the bound, what keeps a strategy from the bound is
what it cannot know (the draws), not the rules. Needs scipy (the ``analysis`` extra).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.verdict import suite_arguments  # noqa: E402
from callrouter.sim.bound import BOUND  # noqa: E402
from callrouter.sim.constrained import constrained_mean, rules_of_goals  # noqa: E402
from callrouter.sim.runner import all_strategies, calls_of, prepare, run_seeds  # noqa: E402
from callrouter.sim.verdict import CONNECT_FACTOR, Spread, fixed_strategies  # noqa: E402


def main() -> int:
    args, paths = suite_arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    head = ("workload", "bound (s)", "goals kept (s)", "kept/bound", "default/bound")
    print(f"clairvoyant mean connection, keeping the other goals; {args.seeds} seeds, ±95% CI")
    print(f"{head[0]:<20}{head[1]:<14}{head[2]:<18}{head[3]:<18}{head[4]}")
    worst = 0.0
    for path in paths:
        prepared = prepare(path, fallback=ROOT / "config.yaml")
        default = prepared.scenario.default_strategy
        seeds = [prepared.workload.seed + n for n in range(args.seeds)]
        runs = run_seeds(prepared, all_strategies(), seeds, jobs=args.jobs)
        fixed = fixed_strategies(list(runs[0]), default)
        best = max(fixed, key=lambda n: sum(r[n].ftcr for r in runs))
        bound, kept, ratio, default_ratio = [], [], [], []
        for seed, run in zip(seeds, runs, strict=True):
            calls = list(calls_of(prepared.rerun(seed=seed)))
            mean = constrained_mean(calls, rules_of_goals(run, best))
            bound.append(run[BOUND].connect_mean_s)
            kept.append(mean)
            ratio.append(mean / run[BOUND].connect_mean_s)
            default_ratio.append(run[default].connect_mean_s / run[BOUND].connect_mean_s)
        worst = max(worst, Spread.of(ratio).mean)
        print(
            f"{path.stem:<20}{Spread.of(bound).show('.1f'):<14}{Spread.of(kept).show('.1f'):<18}"
            f"{Spread.of(ratio).show('.3f'):<18}{Spread.of(default_ratio).show('.2f')}"
        )
    verdict = "reachable" if worst <= CONNECT_FACTOR else "NOT reachable"
    print(
        f"keeping the other goals costs a clairvoyant at most {worst:.3f} x the bound: "
        f"{CONNECT_FACTOR} x is {verdict} under the rules alone; "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
