"""``callrouter edge-config``: write the edge's kamailio.cfg and dispatcher list for a Kamailio
run by its own systemd unit (``edge.supervise: false``), checked by ``kamailio -c``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from callrouter.cli_common import Subparsers, add_config_argument, settings_or_exit
from callrouter.edge.process import EdgeStartError, check_config, plan_edge, write_files
from callrouter.sip import protocol as p
from callrouter.worker_plan import plan_workers, worker_count

EXIT_REFUSED = 1
ASSUMED_SLOTS = 4  # legs per worker with the pjsua2 wheels; a running pool reports its own


def add_edge_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    edge = subparsers.add_parser(
        "edge-config",
        help="write the SIP edge's kamailio.cfg (for a Kamailio run by its own unit)",
    )
    add_config_argument(edge)
    edge.add_argument("--out", type=Path, help="directory for the files (default: edge.run_dir)")
    edge.set_defaults(func=write_edge_config)


def write_edge_config(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args.config)
    config = settings.config
    if args.out is not None:
        edge = config.edge.model_copy(update={"run_dir": args.out.resolve()})
        config = config.model_copy(update={"edge": edge})
    workers = plan_workers(config)
    started = workers[: worker_count(config.sip)]  # the others stand by: probes find them
    readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, ASSUMED_SLOTS) for w in started]
    plan = plan_edge(config, workers, readies, config.edge.listen_port)
    write_files(plan)
    try:
        asyncio.run(check_config(config.edge.kamailio, plan))
    except (EdgeStartError, OSError) as error:
        print(f"callrouter edge-config: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"{plan.config_file}: written, kamailio -c ok ({len(workers)} workers)")
    return 0
