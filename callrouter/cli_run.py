"""``callrouter run``: the long-running engine (answers calls until SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from callrouter.adapters.sealing import KeyLoadError
from callrouter.app import RunOptions, run
from callrouter.cli_common import Subparsers, add_config_argument, settings_or_exit
from callrouter.edge.process import EdgeStartError
from callrouter.logsetup import configure_logging
from callrouter.sip.pool import WorkerStartError
from callrouter.worker_plan import PlanError

EXIT_START = 1  # the configuration was good but the engine could not start here
MAX_PORT = 65_535


def port_type(*, zero_means: str) -> Callable[[str], int]:
    """An argparse ``type``: a whole number 0-65535, where 0 means ``zero_means``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_PORT:
            msg = f"not a port number (1-{MAX_PORT}, or 0 for {zero_means}): {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def add_run_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser("run", help="answer calls: the engine and its SIP worker")
    add_config_argument(run)
    run.add_argument(
        "--sip-port",
        type=port_type(zero_means="sip.listen_port"),
        metavar="PORT",
        help="the port callers dial: the edge's (workers then take PORT+1, PORT+2, ...), or "
        "without an edge the first worker's (0: keep config.yaml's)",
    )
    run.add_argument(
        "--metrics-port",
        type=port_type(zero_means="any free port"),
        metavar="PORT",
        help="override metrics.listen_port (0: any free port)",
    )
    run.add_argument(
        "--health-port",
        type=port_type(zero_means="any free port"),
        metavar="PORT",
        help="serve GET /healthz on 127.0.0.1:PORT (0: any free port)",
    )
    run.add_argument("--db", type=Path, help="override database.path")
    run.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM, how long calls in progress may go on before they are ended",
    )
    run.set_defaults(func=run_engine)


def run_engine(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args.config)  # a bad config never starts
    configure_logging(settings.config.logging.level)
    options = RunOptions(
        sip_port=args.sip_port,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        db=args.db,
        drain_seconds=args.drain_seconds,
    )
    try:
        return asyncio.run(run(args.config, options))
    except (WorkerStartError, EdgeStartError, PlanError, OSError, KeyLoadError) as error:
        print(f"callrouter run: cannot start: {error}", file=sys.stderr)
        return EXIT_START
    except sqlite3.Error as error:  # the records cannot be opened where configured
        db = args.db or settings.config.database.path
        print(f"callrouter run: cannot start: {db}: {error}", file=sys.stderr)
        return EXIT_START
