"""The call-record schema and its migrations, applied in order by ``PRAGMA user_version``.

Rules for whoever adds a migration: append to ``MIGRATIONS``, never edit a released one; each
script runs inside one transaction together with the ``user_version`` bump, so a crash half-way
leaves the file at the old version and the next start simply runs it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import aiosqlite

# Index i holds the script that takes a file from user_version i to i + 1.
MIGRATIONS: Final[tuple[str, ...]] = (
    # v1: the call records and their consultant legs.
    """
    CREATE TABLE calls (
        call_id                 TEXT PRIMARY KEY,
        area                    TEXT NOT NULL,
        specialty               TEXT,
        caller_masked           TEXT NOT NULL,
        practice                TEXT,
        clinician               TEXT,
        nhs_number              TEXT,
        offered_at              REAL NOT NULL,
        answered_at             REAL,
        specialty_at            REAL,
        connected_at            REAL,
        ended_at                REAL,
        outcome                 TEXT,
        end_reason              TEXT,
        survey_avoided_referral INTEGER CHECK (survey_avoided_referral IN (0, 1)),
        member_id               TEXT,
        tier                    TEXT,
        ivr_seconds             REAL,
        connect_seconds         REAL,
        talk_seconds            REAL
    ) STRICT;
    CREATE INDEX calls_by_offered_at ON calls (offered_at);
    CREATE INDEX calls_still_open ON calls (call_id) WHERE ended_at IS NULL;

    CREATE TABLE legs (
        call_id      TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
        leg          TEXT NOT NULL,
        member_id    TEXT NOT NULL,
        uri          TEXT NOT NULL,
        tier         TEXT NOT NULL,
        why          TEXT NOT NULL,
        started_at   REAL NOT NULL,
        ringing_at   REAL,
        answered_at  REAL,
        accepted     INTEGER CHECK (accepted IN (0, 1)),
        ended_at     REAL,
        sip_status   INTEGER,
        result       TEXT,
        ring_seconds REAL,
        PRIMARY KEY (call_id, leg)
    ) STRICT;
    """,
    # v2: how far replay of the spool (records that waited out a full disk) has got, written in
    # the same transaction as each spooled record so a replay never writes one twice.
    """
    CREATE TABLE spool_marks (
        epoch TEXT PRIMARY KEY,
        seq   INTEGER NOT NULL
    ) STRICT;
    """,
    # v3: the call's recording (sealed file, how much audio, or why there is none), and the
    # date its file was purged under the retention rule.
    """
    ALTER TABLE calls ADD COLUMN recording_state TEXT
        CHECK (recording_state IN ('stored', 'incomplete', 'failed', 'purged'));
    ALTER TABLE calls ADD COLUMN recording_path TEXT;
    ALTER TABLE calls ADD COLUMN recording_seconds REAL;
    ALTER TABLE calls ADD COLUMN recording_detail TEXT;
    """,
    # v4: the audit trail (append-only: triggers refuse UPDATE and DELETE) and the rota
    # overrides added live over the bus (their removal is the one update they allow).
    """
    CREATE TABLE audit (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        at      REAL NOT NULL,
        kind    TEXT NOT NULL,
        source  TEXT NOT NULL,
        actor   TEXT,
        subject TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'rejected')),
        detail  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_at ON audit (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: DELETE refused'); END;

    CREATE TABLE live_overrides (
        override_id       TEXT PRIMARY KEY,
        team_id           TEXT NOT NULL,
        specialty         TEXT NOT NULL,
        member_id         TEXT NOT NULL,
        replaces          TEXT,
        reason            TEXT,
        from_local        TEXT NOT NULL,
        to_local          TEXT NOT NULL,
        to_at             REAL NOT NULL,
        added_at          REAL NOT NULL,
        added_by          TEXT,
        source            TEXT NOT NULL,
        removed_at        REAL,
        removed_by        TEXT,
        removed_request   TEXT
    ) STRICT;
    CREATE INDEX live_overrides_in_force ON live_overrides (to_at) WHERE removed_at IS NULL;
    CREATE TRIGGER live_overrides_no_delete BEFORE DELETE ON live_overrides
        BEGIN SELECT RAISE(ABORT, 'live overrides are kept: remove them, do not delete'); END;
    CREATE TRIGGER live_overrides_removal_only BEFORE UPDATE ON live_overrides
        WHEN OLD.removed_at IS NOT NULL
          OR NEW.removed_at IS NULL
          OR (NEW.override_id, NEW.team_id, NEW.specialty, NEW.member_id, NEW.from_local,
              NEW.to_local, NEW.to_at, NEW.added_at, NEW.source)
             IS NOT (OLD.override_id, OLD.team_id, OLD.specialty, OLD.member_id, OLD.from_local,
              OLD.to_local, OLD.to_at, OLD.added_at, OLD.source)
          OR NEW.replaces IS NOT OLD.replaces OR NEW.reason IS NOT OLD.reason
          OR NEW.added_by IS NOT OLD.added_by
        BEGIN SELECT RAISE(ABORT, 'a live override changes only by being removed, once'); END;
    """,
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The file was written by a newer callrouter; refusing to touch it."""


async def user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring ``db`` (opened in autocommit mode) up to ``SCHEMA_VERSION``; return the old version."""
    found = await user_version(db)
    if found > SCHEMA_VERSION:
        msg = f"database schema v{found} is newer than this callrouter (v{SCHEMA_VERSION})"
        raise SchemaTooNewError(msg)
    for version in range(found, SCHEMA_VERSION):
        # executescript commits anything pending first; BEGIN ... COMMIT makes the script and
        # the version bump one atomic step.
        script = MIGRATIONS[version]
        await db.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
        )
    return found


async def connect(file: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
    """Open ``file`` with the store's pragmas and migrate it; closed again if any step fails."""
    # Autocommit mode: the store issues BEGIN/COMMIT itself, one transaction per event.
    db = await aiosqlite.connect(file, isolation_level=None)
    try:
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = FULL")  # an audit trail: survive power loss
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.execute("PRAGMA foreign_keys = ON")
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db
