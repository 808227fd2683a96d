"""What every ``callrouter`` subcommand shares: exit codes, ``--config``, loading or failing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from callrouter.settings.errors import ConfigError
from callrouter.settings.loader import Settings, load_settings

EXIT_OK = 0
EXIT_CONFIG = 2  # a bad configuration (argparse also uses 2 for a bad command line)
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
