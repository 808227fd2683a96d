"""What a bad setting looks like to the person fixing it: ``path:line:col: field: message``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, order=True)
class ConfigIssue:
    """One problem in one file. ``line``/``col`` are 1-based; None when the file itself is at fault
    (missing, unreadable). ``field`` is the dotted path inside the file, '' when there is none."""

    path: Path
    line: int | None
    col: int | None
    field: str
    message: str
    severity: Severity = "error"

    @property
    def where(self) -> str:
        """``path:line:col`` (or just the path), as editors and terminals link it."""
        shown = display_path(self.path)
        if self.line is None:
            return shown
        return f"{shown}:{self.line}:{self.col or 1}"

    def __str__(self) -> str:
        parts = [self.where]
        if self.severity == "warning":
            parts.append("warning")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(Exception):
    """Every error found in a configuration tree, raised once after all files were read."""

    def __init__(self, issues: Iterable[ConfigIssue], files: Iterable[Path] = ()) -> None:
        self.issues: tuple[ConfigIssue, ...] = in_reading_order(issues, files)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{count} configuration error{'s' if count != 1 else ''}"
        return "\n".join([head, *(str(issue) for issue in self.issues)])


class FieldError(ValueError):
    """A ValueError from a model validator that knows which field, below the model, is at fault.

    Pydantic reports a model validator's error at the model itself; the loader appends ``loc`` so
    the message points at the offending line (e.g. the second option on one digit), not the
    first line of the whole mapping.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc: Loc = loc


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it, absolute otherwise."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; no cwd; a symlink loop
        return str(path)


def in_reading_order(
    issues: Iterable[ConfigIssue], files: Iterable[Path] = ()
) -> tuple[ConfigIssue, ...]:
    """Issues file by file in the order ``files`` were read (then any other file in the order
    first reported), each file's issues by line and column."""
    listed = list(issues)
    first: dict[Path, int] = {}
    for path in files:
        first.setdefault(path, len(first))
    for issue in listed:
        first.setdefault(issue.path, len(first))
    return tuple(
        sorted(
            listed,
            key=lambda issue: (first[issue.path], issue.line or 0, issue.col or 0, issue.message),
        )
    )
