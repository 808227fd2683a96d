"""``callrouter audit export``: the audit trail out of SQLite, as CSV or JSON.

One row per audited happening (availability changes, live overrides added, removed or refused,
configuration reloads taken or refused), oldest first, with the time in Europe/London and as
POSIX seconds. Reads the database read-only: safe while the engine runs.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Literal, TextIO, cast

from callrouter.adapters.store_audit import NoAuditError, export_audit
from callrouter.cli_cdr import parse_when
from callrouter.cli_common import Subparsers


def add_audit_command(
    subparsers: Subparsers[argparse.ArgumentParser], *, default_db: Path | None = None
) -> argparse.ArgumentParser:
    audit = subparsers.add_parser("audit", help="the audit trail: export")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="{export}")
    export = actions.add_parser("export", help="write the audit rows as CSV or JSON")
    export.add_argument(
        "--db",
        type=Path,
        default=default_db,
        required=default_db is None,
        help="records database (SQLite); default: database.path of config.yaml",
    )
    export.add_argument("--since", type=parse_when, help="first time (ISO; London time)")
    export.add_argument("--until", type=parse_when, help="end of range, exclusive (ISO)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    audit.set_defaults(func=run_audit)
    return audit


def run_audit(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    out = sys.stdout if stdout is None else stdout
    fmt = cast(Literal["csv", "json"], args.format)
    try:
        if args.output is None:
            count = export_audit(args.db, args.since, args.until, fmt, out)
        else:
            with Path(args.output).open("w", encoding="utf-8", newline="") as file:
                count = export_audit(args.db, args.since, args.until, fmt, file)
    except (NoAuditError, sqlite3.Error) as error:
        print(f"callrouter audit: {error}", file=sys.stderr)
        return 1
    print(f"exported {count} audit rows", file=sys.stderr)
    return 0
