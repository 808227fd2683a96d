"""How many simulated calls per second the simulator pushes through the real call flow, one core.

    python benchmarks/simulate.py [--workload workloads/example.yaml] [--days 600] [--repeat 3]

Runs the workload (stretched to ``--days`` weekdays) under each strategy, best of ``--repeat``
runs each, and prints calls/s per strategy and overall (calls/min too). Each call is a full
CallFlow: IVR barge-in, hunt, ringing, whisper, accept, talk and hang-up.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callrouter.sim.runner import Prepared, all_strategies, prepare, run_strategy  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", type=Path, default=ROOT / "workloads" / "example.yaml")
    parser.add_argument("--days", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategy", action="append", dest="strategies")
    args = parser.parse_args()

    prepared = prepare(args.workload, fallback=ROOT / "config.yaml").rerun(days=args.days)
    calls = len(prepared.arrivals)
    print(
        f"{args.workload.name}, {args.days} weekdays: {calls} calls per strategy; "
        f"Python {platform.python_version()}, best of {args.repeat}"
    )
    total_calls = 0
    total_seconds = 0.0
    for name in args.strategies or all_strategies():
        best = min(_timed(prepared, name) for _ in range(args.repeat))
        total_calls += calls
        total_seconds += best
        print(f"  {name:<14} {calls / best:>9,.0f} calls/s  {calls / best * 60:>11,.0f} calls/min")
    rate = total_calls / total_seconds
    print(f"  {'all':<14} {rate:>9,.0f} calls/s  {rate * 60:>11,.0f} calls/min")
    return 0


def _timed(prepared: Prepared, name: str) -> float:
    start = time.perf_counter()
    run_strategy(prepared, name)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
