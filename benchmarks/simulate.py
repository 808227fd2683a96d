"""How many simulated calls per minute the simulator pushes through the real call flow.

    python benchmarks/simulate.py [--workload workloads/example.yaml] [--days 600] [--repeat 3]
                                  [--jobs 2]

Runs the workload (stretched to ``--days`` weekdays) under each strategy, ``--jobs`` strategies
at a time in their own processes (as ``callrouter simulate`` does), best of ``--repeat`` rounds.
Prints each strategy's own pace (calls/s in its process) and the whole benchmark's: every
strategy's calls over the wall-clock time of the round. Each call is a full CallFlow: IVR
barge-in, hunt, ringing, whisper, accept, talk and hang-up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callrouter.sim.runner import Prepared, all_strategies, prepare, run_strategy  # noqa: E402

_PREPARED: list[Prepared] = []  # inherited by the forked workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", type=Path, default=ROOT / "workloads" / "example.yaml")
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="processes side by side (default 2)")
    parser.add_argument("--strategy", action="append", dest="strategies")
    args = parser.parse_args()

    prepared = prepare(args.workload, fallback=ROOT / "config.yaml").rerun(days=args.days)
    _PREPARED.append(prepared)
    names = args.strategies or all_strategies()
    calls = len(prepared.arrivals)
    print(
        f"{args.workload.name}, {args.days} weekdays: {calls} calls per strategy; "
        f"Python {platform.python_version()}, {args.jobs} process(es), best of {args.repeat}"
    )
    context = multiprocessing.get_context("fork")  # the scenario's closures are not picklable
    best_wall = float("inf")
    best_each = dict.fromkeys(names, float("inf"))
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        for _ in range(args.repeat):
            start = time.perf_counter()
            seconds = list(pool.map(_timed, names))
            best_wall = min(best_wall, time.perf_counter() - start)
            for name, took in zip(names, seconds, strict=True):
                best_each[name] = min(best_each[name], took)
    for name in names:
        pace = calls / best_each[name]
        print(f"  {name:<14} {pace:>9,.0f} calls/s  {pace * 60:>11,.0f} calls/min  (one process)")
    rate = calls * len(names) / best_wall
    print(f"  {'whole run':<14} {rate:>9,.0f} calls/s  {rate * 60:>11,.0f} calls/min  (wall clock)")
    return 0


def _timed(name: str) -> float:
    start = time.perf_counter()
    run_strategy(_PREPARED[0], name)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
