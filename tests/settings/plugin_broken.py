"""A subcommand module whose dependency is missing (for the CLI wiring tests)."""

import callrouter_no_such_dependency  # type: ignore[import-not-found]  # noqa: F401


def add(subparsers: object) -> None:
    raise AssertionError("never reached: the import above fails")
