"""Export of call records: one row per call, as CSV (spreadsheet-ready) or a JSON array.

Times appear twice: as ISO-8601 in Europe/London for people, and as the raw POSIX seconds for
programs. Rows stream from the cursor, so a year of calls never sits in memory at once.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Final, Literal, TextIO
from zoneinfo import ZoneInfo

import aiosqlite

LONDON: Final = ZoneInfo("Europe/London")

# (column, is a POSIX time) in export order; times also get a "<name>_local" ISO column.
_COLUMNS: Final[tuple[tuple[str, bool], ...]] = (
    ("call_id", False),
    ("area", False),
    ("specialty", False),
    ("outcome", False),
    ("end_reason", False),
    ("caller_masked", False),
    ("practice", False),
    ("clinician", False),
    ("nhs_number", False),
    ("offered_at", True),
    ("answered_at", True),
    ("specialty_at", True),
    ("connected_at", True),
    ("ended_at", True),
    ("ivr_seconds", False),
    ("connect_seconds", False),
    ("talk_seconds", False),
    ("survey_avoided_referral", False),
    ("member_id", False),
    ("tier", False),
    ("recording_state", False),  # stored, incomplete, failed, purged; empty: not recorded
    ("recording_seconds", False),
)

FIELDS: Final[tuple[str, ...]] = (
    *(f"{name}_local" for name, is_time in _COLUMNS if is_time),
    *(name for name, _ in _COLUMNS),
    "legs_started",
)

_QUERY: Final = (
    "SELECT "
    + ", ".join(f"c.{name}" for name, _ in _COLUMNS)
    + ", (SELECT COUNT(*) FROM legs l WHERE l.call_id = c.call_id) AS legs_started"
    " FROM calls c WHERE c.offered_at >= ? AND c.offered_at < ? ORDER BY c.offered_at, c.call_id"
)

Row = dict[str, str | int | float | None]


def london_iso(at: float | None) -> str | None:
    """POSIX seconds → ``2024-03-31T02:30:00.000+01:00`` in Europe/London (None stays None)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, tz=LONDON).isoformat(timespec="milliseconds")


def _row(values: tuple[str | int | float | None, ...]) -> Row:
    row: Row = {}
    for (name, is_time), value in zip(_COLUMNS, values, strict=False):
        if is_time:
            row[f"{name}_local"] = london_iso(None if value is None else float(value))
        row[name] = value
    row["legs_started"] = values[-1]
    return {field: row[field] for field in FIELDS}


async def export(
    db: aiosqlite.Connection,
    since: float | None,
    until: float | None,
    fmt: Literal["csv", "json"],
    out: TextIO,
) -> int:
    """Write calls offered in [since, until) to ``out``; return how many rows were written."""
    if fmt not in ("csv", "json"):
        msg = f"unknown export format {fmt!r} (csv or json)"
        raise ValueError(msg)
    bounds = (
        float("-inf") if since is None else since,
        float("inf") if until is None else until,
    )
    count = 0
    writer: csv.DictWriter[str] | None = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
    else:
        out.write("[")
    async with db.execute(_QUERY, bounds) as cursor:
        async for values in cursor:
            row = _row(tuple(values))
            if writer is not None:
                writer.writerow(row)
            else:
                out.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
            count += 1
    if writer is None:
        out.write("\n]\n" if count else "]\n")
    return count
