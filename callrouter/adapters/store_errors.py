"""Which SQLite write errors are worth waiting out, and the bounded ``kind`` label for each.

A full disk, an I/O error, a lock held too long, a read-only or damaged file: the record is
fine, the database is not, so the record waits in the spool until the database can take it
again. A constraint failure is the opposite: the record itself can never be written (a bug
elsewhere), so waiting would only block every record queued behind it.
"""

from __future__ import annotations

import sqlite3
from typing import Final, Literal

WriteFailureKind = Literal["full", "io", "busy", "readonly", "corrupt", "other", "rejected"]

# Every value the ``kind`` label of callrouter_store_write_failures_total can take.
WRITE_FAILURE_KINDS: Final[tuple[WriteFailureKind, ...]] = (
    "full",
    "io",
    "busy",
    "readonly",
    "corrupt",
    "other",
    "rejected",
)

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_BY_PRIMARY_CODE: Final[dict[int, WriteFailureKind]] = {
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
    8: "readonly",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR (and every SQLITE_IOERR_* extended code)
    11: "corrupt",  # SQLITE_CORRUPT
    13: "full",  # SQLITE_FULL
    14: "io",  # SQLITE_CANTOPEN
    26: "corrupt",  # SQLITE_NOTADB
}


# The record (or the code that built it) is at fault: retrying cannot help.
_RECORD_AT_FAULT: Final = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    sqlite3.NotSupportedError,
)


def failure_kind(exc: sqlite3.Error) -> WriteFailureKind:
    """The label value for a failed write."""
    if isinstance(exc, _RECORD_AT_FAULT):
        return "rejected"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _BY_PRIMARY_CODE.get(code & 0xFF, "other")
    return "other"


def worth_waiting_out(exc: sqlite3.Error) -> bool:
    """True when the database, not the record, is at fault: keep the record and retry later.

    Constraint and data errors (the record is wrong) and programming errors (the code is wrong)
    are raised instead; anything else SQLite reports about the file or the disk is waited out.
    """
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, _RECORD_AT_FAULT)
