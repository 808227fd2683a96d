"""The ``callrouter`` command.

Each subcommand lives in its own module and registers itself on the subparsers with a
``set_defaults(func=handler)``; a handler takes the parsed ``argparse.Namespace`` and returns the
exit status. This module owns ``check`` and the wiring; ``add_config_argument`` and
``settings_or_exit`` are shared helpers for the other subcommand modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from callrouter.settings.config import Config
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError, display_path
from callrouter.settings.loader import Settings, load_config, load_settings
from callrouter.settings.rota import RotaFile
from callrouter.settings.source import SourceFile

EXIT_OK = 0
EXIT_CONFIG = 2  # a bad configuration (argparse also uses 2 for a bad command line)
EXIT_UNAVAILABLE = 3  # a subcommand whose module cannot be imported here
DEFAULT_CONFIG = Path("config.yaml")

Subparsers = argparse._SubParsersAction  # argparse names no public type for it
Handler = Callable[[argparse.Namespace], int]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help="the service configuration (default: ./config.yaml)",
    )


def settings_or_exit(config_path: Path, stderr: TextIO | None = None) -> Settings:
    """Load the whole tree or print every problem and exit with status 2 (for subcommands)."""
    err = sys.stderr if stderr is None else stderr
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        print_issues(exc, err)
        raise SystemExit(EXIT_CONFIG) from None
    for warning in settings.warnings:
        print(warning, file=err)
    return settings


def print_issues(error: ConfigError, stream: TextIO) -> None:
    for issue in error.issues:
        print(issue, file=stream)
    errors = sum(1 for issue in error.issues if issue.severity == "error")
    print(f"{errors} error{'s' if errors != 1 else ''}: configuration not loaded", file=stream)


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

# Subcommand modules written elsewhere: (command, module, registering function). Each function
# takes the subparsers object. A module that is absent is skipped; one that fails to import (say
# pjsua2 is missing for `run`) leaves a stand-in command that reports why, so `check` and the
# other commands still work.
PLUGINS: tuple[tuple[str, str, str], ...] = (
    ("oncall", "callrouter.cli_oncall", "add_oncall_command"),
    ("run", "callrouter.cli_run", "add_run_command"),
    ("simulate", "callrouter.cli_simulate", "add_simulate_command"),  # TODO(lead): when written
)


def _add_plugins(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    for command, module_name, function_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # not written (or not shipped): no such command
            _add_unavailable(subparsers, command, exc)
            continue
        except ImportError as exc:
            _add_unavailable(subparsers, command, exc)
            continue
        getattr(module, function_name)(subparsers)


def _add_unavailable(
    subparsers: Subparsers[argparse.ArgumentParser], command: str, error: ImportError
) -> None:
    def unavailable(_: argparse.Namespace) -> int:
        print(f"callrouter {command} is unavailable here: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE

    # No option prefix: whatever follows is taken as-is, so the message above is what the user
    # sees rather than a usage error about options this stand-in cannot know.
    parser = subparsers.add_parser(
        command, help=f"(unavailable: {error})", prefix_chars="\0", add_help=False
    )
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=unavailable)


def _add_cdr(subparsers: Subparsers[argparse.ArgumentParser], argv: Sequence[str]) -> None:
    """``cdr`` takes its database and retention from config.yaml when that loads."""
    try:
        from callrouter.cli_cdr import add_cdr_commands  # noqa: PLC0415 - optional module
    except ModuleNotFoundError as exc:
        if exc.name != "callrouter.cli_cdr":
            raise
        return
    config = _config_quietly(argv)
    cdr = add_cdr_commands(
        subparsers,
        default_db=config.database.path if config else None,
        default_retention_days=config.database.retention_days if config else None,
    )
    add_config_argument(cdr)  # read before the parse, for the defaults above


def _config_quietly(argv: Sequence[str]) -> Config | None:
    """config.yaml (named by --config if given) when it loads, else None: for defaults only."""
    peek = argparse.ArgumentParser(add_help=False)
    add_config_argument(peek)
    known, _ = peek.parse_known_args(argv)
    try:
        return load_config(known.config)
    except ConfigError:
        return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callrouter", description="Call routing for clinical advice lines."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_check_command(subparsers)
    _add_plugins(subparsers)
    _add_cdr(subparsers, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    # `func` is the convention; cli_cdr registers `run`.
    handler: Handler | None = getattr(args, "func", None) or getattr(args, "run", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    return handler(args)
