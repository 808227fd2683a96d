"""The audit trail and the live rota overrides in SQLite: records, their SQL, and readers.

The records (``AuditNoted``, ``CoverAdded``, ``CoverRemoved``) go through ``CallStore`` like
the call records, so they share its ordering and its spool: an audit row waits out a full disk
instead of being lost. The ``audit`` table refuses UPDATE and DELETE (triggers, schema v4); a
live override is never deleted either, only marked removed, and that removal is audited too.

The readers are for the command-line tools: plain ``sqlite3``, read-only, safe while the engine
runs (WAL). A database from before schema v4 has no audit: they say so rather than fail.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, TextIO

from callrouter.adapters.store_export import london_iso
from callrouter.oncall.live_cover import LiveOverride
from callrouter.settings.rota import Override

SqlValue = str | int | float | None
Statement = tuple[str, tuple[SqlValue, ...]]

OK: Final = "ok"
REJECTED: Final = "rejected"

_AUDIT_INSERT: Final = (
    "INSERT INTO audit (at, kind, source, actor, subject, outcome, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditNoted:
    """One audited happening: ``kind`` (availability, config_reload, override_add...), where it
    came from (an MQTT topic, ``SIGHUP``), who says they did it, what it concerned, ``ok`` or
    ``rejected``, and the details as JSON text."""

    at: float
    kind: str
    source: str
    actor: str | None
    subject: str | None
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class CoverAdded:
    """A live override taken: its row and its audit row, in one transaction."""

    at: float
    override_id: str
    team_id: str
    specialty: str
    member_id: str
    replaces: str | None
    reason: str | None
    from_local: str
    to_local: str
    to_at: float
    added_by: str | None
    source: str


@dataclass(frozen=True, slots=True)
class CoverRemoved:
    """A live override removed (marked, never deleted), and its audit row."""

    at: float
    override_id: str
    removed_by: str | None
    request_id: str
    source: str


def detail_json(fields: Mapping[str, object]) -> str:
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def cover_added(live: LiveOverride, at: float, to_at: float, source: str) -> CoverAdded:
    override = live.override
    return CoverAdded(
        at=at,
        override_id=live.override_id,
        team_id=live.team_id,
        specialty=live.specialty,
        member_id=override.member,
        replaces=override.replaces,
        reason=override.reason,
        from_local=override.from_.isoformat(),
        to_local=override.to.isoformat(),
        to_at=to_at,
        added_by=live.added_by,
        source=source,
    )


def audit_statements(record: AuditNoted | CoverAdded | CoverRemoved) -> list[Statement]:
    match record:
        case AuditNoted():
            values = (
                record.at,
                record.kind,
                record.source,
                record.actor,
                record.subject,
                record.outcome,
                record.detail,
            )
            return [(_AUDIT_INSERT, values)]
        case CoverAdded():
            detail = {
                "team": record.team_id,
                "specialty": record.specialty,
                "member": record.member_id,
                "replaces": record.replaces,
                "from": record.from_local,
                "to": record.to_local,
                "reason": record.reason,
            }
            return [
                (
                    "INSERT INTO live_overrides (override_id, team_id, specialty, member_id,"
                    " replaces, reason, from_local, to_local, to_at, added_at, added_by, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.override_id,
                        record.team_id,
                        record.specialty,
                        record.member_id,
                        record.replaces,
                        record.reason,
                        record.from_local,
                        record.to_local,
                        record.to_at,
                        record.at,
                        record.added_by,
                        record.source,
                    ),
                ),
                (
                    _AUDIT_INSERT,
                    (
                        record.at,
                        "override_add",
                        record.source,
                        record.added_by,
                        record.override_id,
                        OK,
                        detail_json(detail),
                    ),
                ),
            ]
        case CoverRemoved():
            return [
                (
                    "UPDATE live_overrides SET removed_at = ?, removed_by = ?, removed_request = ?"
                    " WHERE override_id = ? AND removed_at IS NULL",
                    (record.at, record.removed_by, record.request_id, record.override_id),
                ),
                (
                    _AUDIT_INSERT,
                    (
                        record.at,
                        "override_remove",
                        record.source,
                        record.removed_by,
                        record.override_id,
                        OK,
                        detail_json({"request_id": record.request_id}),
                    ),
                ),
            ]


# -- reading ------------------------------------------------------------------------------------

LIVE_COLUMNS: Final = (
    "override_id, team_id, specialty, member_id, replaces, reason, from_local, to_local,"
    " added_by, removed_at, removed_request"
)
LIVE_IN_FORCE: Final = (
    f"SELECT {LIVE_COLUMNS} FROM live_overrides WHERE removed_at IS NULL AND to_at > ?"
    " ORDER BY added_at, override_id"
)


@dataclass(frozen=True, slots=True)
class StoredCover:
    """A live override as stored, removed or not."""

    live: LiveOverride
    removed: bool
    removed_request: str | None


def stored_cover(row: tuple[SqlValue, ...]) -> StoredCover:
    (oid, team, specialty, member, replaces, reason, start, end, by, removed_at, request) = row
    override = Override.model_validate(
        {
            "from": datetime.fromisoformat(str(start)),
            "to": datetime.fromisoformat(str(end)),
            "member": member,
            "replaces": replaces,
            "reason": reason,
        }
    )
    live = LiveOverride(
        str(oid), str(team), str(specialty), override, None if by is None else str(by)
    )
    return StoredCover(live, removed_at is not None, None if request is None else str(request))


class NoAuditError(RuntimeError):
    """The database has no audit tables (missing, or older than schema v4)."""


def open_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise NoAuditError(f"no call-record database at {path}")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    db.execute("PRAGMA busy_timeout = 5000")
    found = db.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('audit', 'live_overrides')"
    ).fetchone()[0]
    if found != 2:  # the two tables of schema v4
        db.close()
        raise NoAuditError(f"{path} predates the audit (schema v4): start the engine once on it")
    return db


def live_in_force(path: Path, now: float) -> list[LiveOverride]:
    """Live overrides not removed and not over at ``now``; none if there is no such table."""
    try:
        db = open_read_only(path)
    except NoAuditError:
        return []
    try:
        return [stored_cover(row).live for row in db.execute(LIVE_IN_FORCE, (now,))]
    finally:
        db.close()


AUDIT_FIELDS: Final = (
    "seq",
    "at_local",
    "at",
    "kind",
    "source",
    "actor",
    "subject",
    "outcome",
    "detail",
)


def export_audit(
    path: Path,
    since: float | None,
    until: float | None,
    fmt: Literal["csv", "json"],
    out: TextIO,
) -> int:
    """Write audit rows with ``at`` in [since, until) to ``out``; return how many."""
    db = open_read_only(path)
    bounds = (
        float("-inf") if since is None else since,
        float("inf") if until is None else until,
    )
    writer: csv.DictWriter[str] | None = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=AUDIT_FIELDS)
        writer.writeheader()
    else:
        out.write("[")
    count = 0
    try:
        cursor = db.execute(
            "SELECT seq, at, kind, source, actor, subject, outcome, detail FROM audit"
            " WHERE at >= ? AND at < ? ORDER BY seq",
            bounds,
        )
        for seq, at, kind, source, actor, subject, outcome, detail in cursor:
            row = {
                "seq": seq,
                "at_local": london_iso(at),
                "at": at,
                "kind": kind,
                "source": source,
                "actor": actor,
                "subject": subject,
                "outcome": outcome,
                "detail": detail,
            }
            if writer is not None:
                writer.writerow(row)
            else:
                row["detail"] = json.loads(detail)
                out.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
            count += 1
    finally:
        db.close()
    if writer is None:
        out.write("\n]\n" if count else "]\n")
    return count
