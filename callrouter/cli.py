"""The ``callrouter`` command.

Each subcommand lives in its own module and registers itself on the subparsers with a
``set_defaults(func=handler)``; a handler takes the parsed ``argparse.Namespace`` and returns the
exit status. This module owns ``check`` and the wiring; what the subcommands share is in
``cli_common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, TextIO

import callrouter
from callrouter.cli_audit import add_audit_command
from callrouter.cli_cdr import add_cdr_commands
from callrouter.cli_common import (
    EXIT_CONFIG,
    EXIT_OK,
    Handler,
    Subparsers,
    add_config_argument,
    print_issues,
    run_handler,
)
from callrouter.cli_edge import add_edge_command
from callrouter.cli_oncall import add_oncall_command
from callrouter.cli_recording import add_recording_commands
from callrouter.cli_run import add_run_command
from callrouter.cli_simulate import add_simulate_command
from callrouter.settings.config import Config
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError, display_path
from callrouter.settings.loader import load_config, load_settings
from callrouter.settings.rota import RotaFile
from callrouter.settings.source import SourceFile

# --- check -------------------------------------------------------------------------------------


def add_check_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check", help="validate config.yaml, every dialplan and every rota, then exit"
    )
    add_config_argument(check)
    check.set_defaults(func=run_check)


def run_check(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print_issues(exc, err)
        return EXIT_CONFIG
    for source in settings.sources:
        print(f"{display_path(source.path)}: ok, {describe(source)}", file=out)
    for warning in settings.warnings:
        print(warning, file=err)
    return EXIT_OK


def describe(source: SourceFile[Any]) -> str:
    """What a valid file holds, in a few words."""
    model = source.model
    if isinstance(model, Config):
        return _count(len(model.specialties), "specialty", "specialties")
    if isinstance(model, Dialplan):
        return ", ".join(
            [
                _count(len(model.numbers), "number"),
                _count(len(set(model.menu_specialties())), "specialty", "specialties"),
                _count(len(model.practices), "practice"),
            ]
        )
    if isinstance(model, RotaFile):
        return f"{_count(len(model.members), 'member')}, {_count(len(model.teams), 'team')}"
    return type(model).__name__


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# --- wiring ------------------------------------------------------------------------------------


def _add_cdr(subparsers: Subparsers[argparse.ArgumentParser], argv: Sequence[str]) -> None:
    """``cdr`` takes its database and retention from config.yaml when that loads."""
    config = _config_quietly(argv)
    cdr = add_cdr_commands(
        subparsers,
        default_db=config.database.path if config else None,
        default_retention_days=config.database.retention_days if config else None,
    )
    add_config_argument(cdr)  # read before the parse, for the defaults above
    audit = add_audit_command(subparsers, default_db=config.database.path if config else None)
    add_config_argument(audit)


def _config_quietly(argv: Sequence[str]) -> Config | None:
    """config.yaml (named by --config if given) when it loads, else None: for defaults only."""
    peek = argparse.ArgumentParser(add_help=False)
    add_config_argument(peek)
    known, _ = peek.parse_known_args(argv)
    try:
        return load_config(known.config)
    except ConfigError:
        return None


def package_version() -> str:
    """The installed distribution's version; the source tree's when run uninstalled."""
    try:
        return metadata.version("callrouter")
    except metadata.PackageNotFoundError:
        return callrouter.__version__


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callrouter", description="Call routing for clinical advice lines."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_check_command(subparsers)
    add_oncall_command(subparsers)
    add_run_command(subparsers)
    add_edge_command(subparsers)
    add_simulate_command(subparsers)
    add_recording_commands(subparsers)
    _add_cdr(subparsers, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    return run_handler(handler, args)
