"""``callrouter simulate``: run a workload through the real call flow under each strategy.

Registered on the main parser by ``add_simulate_command(subparsers)``; also runnable on its own
as ``python -m callrouter.cli_simulate``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from callrouter.cli_common import run_handler
from callrouter.settings.errors import ConfigError
from callrouter.sim.bound import BOUND
from callrouter.sim.informed import parse_informed
from callrouter.sim.plan import plan_table, plan_teams
from callrouter.sim.plot import PlotUnavailableError, plot_connection_times, require_matplotlib
from callrouter.sim.runner import all_strategies, prepare, run_seeds
from callrouter.sim.tables import table, to_json
from callrouter.sim.verdict import goal_lines, judge

EXIT_OK = 0
EXIT_CONFIG = 2
DEFAULT_CONFIG = Path("config.yaml")


def add_simulate_command(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="simulate a workload through the real call flow, strategy by strategy",
        description="Discrete-event simulation of GP calls and consultant behaviour, driving "
        "the production call flow and hunt code. See docs/simulator.md.",
    )
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workload",
        type=Path,
        required=True,
        metavar="FILE",
        help="the workload file (see workloads/ and docs/simulator.md)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config tree whose rotas decide who is on call when the workload "
        "has no 'teams' (default: the workload's 'config', else ./config.yaml)",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        dest="strategies",
        help=f"a strategy to run (repeatable; default: all of {', '.join(all_strategies())}); "
        "also informed@THETA (0-1), the reference that knows the true habits, not the draws, "
        "and informed-fair@THETA, the same keeping the default's fairness guard",
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", help="the seed of every draw (default: the workload's)"
    )
    parser.add_argument(
        "--days", type=_positive, metavar="N", help="days to simulate (default: the workload's)"
    )
    parser.add_argument(
        "--seeds",
        type=_positive,
        default=1,
        metavar="K",
        help="run K seeds (the seed, then the next ones) and report means with 95%% confidence "
        "intervals (default 1)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=2,
        metavar="N",
        help="processes: the strategies of one seed, or the seeds, run side by side (default 2)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="write the connection-time distribution per strategy to PNG",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="capacity planning: the smallest teams that meet the targets",
    )
    parser.add_argument(
        "--target-ftcr",
        type=_share,
        default=0.95,
        metavar="SHARE",
        help="with --plan: the first-time connection rate to reach (0.95)",
    )
    parser.add_argument(
        "--target-connect",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="with --plan: the mean connection time to stay under (20)",
    )
    parser.set_defaults(func=run_simulate)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], not {text!r}")
    return value


def run_simulate(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    known = all_strategies()
    strategies = list(dict.fromkeys(args.strategies or known))
    unknown = [n for n in strategies if n not in known and parse_informed(n) is None]
    if unknown:
        print(
            f"unknown strategy {unknown[0]!r}; known: {', '.join(known)}, informed@THETA, "
            "informed-fair@THETA",
            file=err,
        )
        return EXIT_CONFIG
    if args.plot is not None:  # before the run, not after minutes of it
        try:
            require_matplotlib()
        except PlotUnavailableError as error:
            print(f"callrouter simulate: {error}", file=err)
            return EXIT_CONFIG
    try:
        prepared = prepare(args.workload, args.config, fallback=DEFAULT_CONFIG)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        count = sum(1 for issue in exc.issues if issue.severity == "error")
        print(f"{count} error{'s' if count != 1 else ''}: workload not run", file=err)
        return EXIT_CONFIG
    prepared = prepared.rerun(seed=args.seed, days=args.days)
    default = prepared.scenario.default_strategy
    bar = ProgressBar(err) if err.isatty() else None
    seeds = [prepared.workload.seed + n for n in range(args.seeds)]

    if args.plan:
        plans = plan_teams(
            prepared,
            default,
            args.target_ftcr,
            target_connect_s=args.target_connect,
            seeds=seeds,
            progress=None if bar is None else bar.planning,
        )
        if bar is not None:
            bar.done()
        print(
            plan_table(
                plans,
                args.target_ftcr,
                args.target_connect,
                consultants=prepared.workload.consultants,
            ),
            file=out,
        )
        return EXIT_OK

    runs = run_seeds(
        prepared,
        strategies,
        seeds,
        jobs=args.jobs,
        progress=None if bar is None or len(seeds) > 1 else bar.update,
    )
    if bar is not None:
        bar.done()
    goals = judge(runs, default)
    if args.plot is not None:
        plot_connection_times(
            list(runs[0].values()), args.plot, f"{args.workload.name}: connection time"
        )
    if args.json:
        print(to_json(runs, seeds, goals), file=out)
        return EXIT_OK
    calls = len(prepared.arrivals)
    which = (
        f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]} (mean ±95% CI)"
    )
    print(
        f"{args.workload}: {calls} calls over {prepared.workload.days} days, {which}; "
        "the same arrivals and behaviour for every strategy",
        file=out,
    )
    print(table(runs, default), file=out)
    print(
        f"* default strategy (the dialplans' policy); {BOUND}: the best any strategy could do "
        "with these draws (see docs/simulator.md)",
        file=out,
    )
    lines = goal_lines(goals, default)
    if lines:
        print("\n".join(lines), file=out)
    return EXIT_OK


class ProgressBar:
    """One line on a terminal's stderr, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = 0.0

    def update(self, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:  # redraw at most ten times a second
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        self._draw(f"{name:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} calls")

    def planning(self, specialty: str, team: int) -> None:
        self._draw(f"planning {specialty}: trying teams of {team}")

    def done(self) -> None:
        self._stream.write("\r\x1b[2K")
        self._stream.flush()

    def _draw(self, text: str) -> None:
        self._stream.write("\r\x1b[2K" + text)
        self._stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callrouter simulate")
    configure_parser(parser)
    args = parser.parse_args(argv)
    return run_handler(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
