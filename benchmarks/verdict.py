"""The suite's verdict: every strategy on every workload of ``workloads/`` over 5 seeds, and
whether the default strategy meets the issue's goals there, with margins and their spread.

    nice -n 15 python benchmarks/verdict.py [--seeds 5] [--jobs 2] [--workload FILE]...

For each workload the seeds are the workload's own seed and the next ones; each seed is one
world that every strategy and the bound meet. A goal's margin is taken seed by seed (paired)
and shown as mean ±95% confidence half-width: ``met`` needs the mean margin positive and larger
than that spread, ``noise`` is positive but within it, ``MISS`` is negative. Goals (see
callrouter/sim/verdict.py): FTCR >= best fixed strategy's - 0.5 pt; mean connection <= 1.25 x
the bound's; rings per connected call <= linear's; no consultant above max(linear's top share,
50%) of a specialty's calls; no tier violation by any strategy.

Whether the connection goal is reachable at all: the bound reads the draws (who will answer,
how fast), which no online strategy can. The last columns run the ``informed`` reference
(callrouter/sim/informed.py: every member's true pick-up odds by hour, delay distribution and
spells away, but not the draws) at several paces, without and with the default's fairness
guard (``informed-fair``), and show the soonest mean connection over the bound's that it
reaches while ringing no more than linear (and, in the second, keeping the share cap), with
its FTCR margin; the last is the default's mean connection over that second one's. Where even
the reference is above 1.25 x, no strategy that learns from leg results can meet those goals
together. (benchmarks/constrained_bound.py shows that the rules alone cost a clairvoyant
almost nothing: the gap is what an online strategy cannot know.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callrouter.sim.bound import BOUND  # noqa: E402
from callrouter.sim.informed import parse_informed  # noqa: E402
from callrouter.sim.report import Summary  # noqa: E402
from callrouter.sim.runner import all_strategies, prepare, run_seeds  # noqa: E402
from callrouter.sim.verdict import Goal, Reach, bound_ratio, informed_reach, judge  # noqa: E402

_SHORT = {"met": "met", "met (within noise)": "noise", "MISSED": "MISS"}
_SCALE = {"pt": 100.0, "s": 1.0, "": 1.0}
THETAS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0)
INFORMED = [f"{kind}@{theta:g}" for kind in ("informed", "informed-fair") for theta in THETAS]


def cell(goal: Goal) -> str:
    if goal.exact:
        return f"{_SHORT[goal.verdict]} ({-goal.margin.mean:.0f})"
    scale = _SCALE[goal.unit]
    margin = goal.margin.mean * scale
    spread = goal.margin.half_width * scale
    return f"{_SHORT[goal.verdict]} {margin:+.2f}±{spread:.2f}"


def fastest(runs: list[dict[str, Summary]], default: str) -> str:
    """The default's mean connection over the bound's, and the fastest strategy's (context for
    the connection goal: how close any strategy comes to the bound)."""
    names = [n for n in runs[0] if n != BOUND and parse_informed(n) is None]
    best = min(names, key=lambda n: bound_ratio(runs, n))
    return f"{bound_ratio(runs, default):.2f}x, {best} {bound_ratio(runs, best):.2f}x"


def reach_cell(reach: Reach) -> str:
    if not reach.name:
        return "-"
    return f"{reach.connect_ratio:.2f}x {reach.ftcr_margin * 100:+.1f}pt ({reach.name})"


def suite_arguments(description: str) -> tuple[argparse.Namespace, list[Path]]:
    """``--seeds``, ``--jobs`` and ``--workload`` (default: every workload of ``workloads/``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workload", type=Path, action="append", dest="workloads")
    args = parser.parse_args()
    return args, args.workloads or sorted((ROOT / "workloads").glob("*.yaml"))


def main() -> int:
    args, paths = suite_arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    rows = []
    met = total = 0
    for path in paths:
        prepared = prepare(path, fallback=ROOT / "config.yaml")
        default = prepared.scenario.default_strategy
        seeds = [prepared.workload.seed + n for n in range(args.seeds)]
        runs = run_seeds(prepared, [*all_strategies(), *INFORMED], seeds, jobs=args.jobs)
        goals = judge(runs, default)
        reaches = [informed_reach(runs, default, keep_share=keep) for keep in (False, True)]
        reached = [reach_cell(reach) for reach in reaches]
        kept = reaches[1]
        own = bound_ratio(runs, default)
        reached.append(f"{own / kept.connect_ratio:.2f}" if kept.name else "-")
        met += sum(g.verdict == "met" for g in goals)
        total += len(goals)
        calls = sum(r[default].calls for r in runs) / len(runs)
        rows.append(
            (path.stem, f"{calls:.0f}", *(cell(g) for g in goals), fastest(runs, default), *reached)
        )
        print(f"{path.stem}:", file=sys.stderr)
        for goal in goals:
            print(f"  {goal.name}: {goal.detail}", file=sys.stderr)
    head = (
        "workload",
        "calls",
        "FTCR (pt)",
        "connection (s)",
        "rings",
        "top share (pt)",
        "tier",
        "conn/bound: default, fastest",
        "informed <= linear rings: conn/bound, FTCR (setting)",
        "+ share cap",
        "default/that",
    )
    widths = [max(len(str(r[i])) for r in [head, *rows]) + 2 for i in range(len(head))]
    print(f"default strategy vs the goals, {args.seeds} seeds per workload; margin ±95% CI")
    print("".join(f"{h:<{w}}" for h, w in zip(head, widths, strict=True)))
    print("-" * sum(widths))
    for row in rows:
        print("".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)))
    print(f"{met}/{total} goals met beyond the seed spread; {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
