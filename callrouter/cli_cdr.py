"""``callrouter cdr export|summary|purge|backup``: call records out of SQLite, the commissioner's
summary (calls put through and the referral-avoided share per area and specialty), retention,
backups.

Wire into the main parser with ``add_cdr_commands(subparsers, default_db=..., ...)``; the parsed
namespace carries ``func`` (``run_cdr``), so ``args.func(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO, cast

from callrouter.adapters.store_export import LONDON
from callrouter.adapters.store_sqlite import CallStore
from callrouter.adapters.store_summary import GROUPINGS, write_summary
from callrouter.cli_backup import add_backup_command, run_backup
from callrouter.cli_common import run_handler

SECONDS_PER_DAY = 86_400


def parse_when(text: str) -> float:
    """ISO date or date-time → POSIX seconds; without an offset it means Europe/London."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        msg = f"not an ISO-8601 date or date-time: {text!r}"
        raise argparse.ArgumentTypeError(msg) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=LONDON)
    return when.timestamp()


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        msg = f"must be a whole number of days above 0, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_cdr_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    default_db: str | Path | None = None,
    default_retention_days: int | None = None,
) -> argparse.ArgumentParser:
    """Add ``cdr export|purge|backup``; ``--db`` is required unless ``default_db`` is given."""
    cdr = subparsers.add_parser("cdr", help="call records: export, summary, purge, back up")
    actions = cdr.add_subparsers(
        dest="cdr_action", required=True, metavar="{export,summary,purge,backup}"
    )

    def add_db(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--db",
            type=Path,
            default=None if default_db is None else Path(default_db),
            required=default_db is None,
            help="call-record database (SQLite)",
        )

    export = actions.add_parser("export", help="write one row per call as CSV or JSON")
    add_db(export)
    export.add_argument("--since", type=parse_when, help="first offer time (ISO; London time)")
    export.add_argument("--until", type=parse_when, help="end of range, exclusive (ISO)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")

    summary = actions.add_parser(
        "summary",
        help="per area/specialty: calls, connected, FTCR and the referral-avoided share",
    )
    add_db(summary)
    summary.add_argument("--since", type=parse_when, help="first offer time (ISO; London time)")
    summary.add_argument("--until", type=parse_when, help="end of range, exclusive (ISO)")
    summary.add_argument("--by", choices=tuple(GROUPINGS), default="area-specialty")
    summary.add_argument("--format", choices=("csv", "json"), default="csv")

    purge = actions.add_parser("purge", help="delete ended calls older than the retention")
    add_db(purge)
    purge.add_argument(
        "--older-than-days",
        type=_positive_int,
        default=default_retention_days,
        required=default_retention_days is None,
        help="retention in days",
    )
    add_backup_command(actions, add_db)
    cdr.set_defaults(func=run_cdr)
    return cdr


def run_cdr(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Carry out a parsed ``cdr`` command; return the process exit status."""
    out = sys.stdout if stdout is None else stdout
    if args.cdr_action == "export":
        return asyncio.run(_export(args, out))
    if args.cdr_action == "summary":
        return asyncio.run(_summary(args, out))
    if args.cdr_action == "backup":
        return run_backup(args, out)
    return asyncio.run(_purge(args, out))


async def _export(args: argparse.Namespace, stdout: TextIO) -> int:
    db_path: Path = args.db
    if not db_path.exists():
        print(f"no call-record database at {db_path}", file=sys.stderr)
        return 1
    fmt = cast(Literal["csv", "json"], args.format)
    async with await CallStore.open(db_path) as store:
        if args.output is None:
            count = await store.export(args.since, args.until, fmt, stdout)
        else:
            # newline="" lets the csv module write its own \r\n, as spreadsheets expect.
            with Path(args.output).open("w", encoding="utf-8", newline="") as file:
                count = await store.export(args.since, args.until, fmt, file)
    print(f"exported {count} calls", file=sys.stderr)
    return 0


async def _summary(args: argparse.Namespace, stdout: TextIO) -> int:
    db_path: Path = args.db
    if not db_path.exists():
        print(f"no call-record database at {db_path}", file=sys.stderr)
        return 1
    async with await CallStore.open(db_path) as store:
        rows = await store.summary(args.since, args.until, args.by)
    write_summary(rows, cast(Literal["csv", "json"], args.format), stdout)
    return 0


async def _purge(args: argparse.Namespace, stdout: TextIO) -> int:
    db_path: Path = args.db
    if not db_path.exists():
        print(f"no call-record database at {db_path}", file=sys.stderr)
        return 1
    before = time.time() - args.older_than_days * SECONDS_PER_DAY
    async with await CallStore.open(db_path) as store:
        count = await store.purge(before)
    print(f"purged {count} calls", file=stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m callrouter.cli_cdr cdr export --db ...``)."""
    parser = argparse.ArgumentParser(prog="callrouter")
    add_cdr_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_handler(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
