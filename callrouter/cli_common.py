"""What every ``callrouter`` subcommand shares: exit codes, ``--config``, loading or failing."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from callrouter.settings.errors import ConfigError
from callrouter.settings.loader import Settings, load_settings

EXIT_OK = 0
EXIT_CONFIG = 2  # a bad configuration (argparse also uses 2 for a bad command line)
# Output cut short because its reader went away (`callrouter ... | head`): the status a shell
# shows for a process ended by SIGPIPE (128 + 13), as `cat` or `grep` give. Not 0, so
# `set -o pipefail` scripts see the output was truncated; not a traceback: nothing is wrong here.
EXIT_BROKEN_PIPE = 141
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


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a subcommand's handler; a closed standard output ends it quietly (see above)."""
    try:
        status = handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
