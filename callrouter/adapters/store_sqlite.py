"""Call records in SQLite: one row per call, one per consultant leg, written as events happen.

Every domain event is its own committed transaction (WAL, ``synchronous=FULL``), so a kill -9
loses nothing already handled; at start-up ``close_interrupted`` marks what was left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TextIO

import aiosqlite

from callrouter.adapters import store_export
from callrouter.adapters.masking import mask_number
from callrouter.adapters.outcome import INTERRUPTED, call_outcome
from callrouter.adapters.store_schema import migrate
from callrouter.core.domain import (
    CallAnswered,
    CallEnded,
    CallOffered,
    Connected,
    DomainEvent,
    EndReason,
    LegEnded,
    LegPickedUp,
    LegRang,
    LegResult,
    LegStarted,
    NhsNumberCaptured,
    OutcomeRecorded,
    SpecialtyChosen,
)

SqlValue = str | int | float | None
Statement = tuple[str, tuple[SqlValue, ...]]

# Results where a person (or a voicemail) answered and did not accept.
_ANSWERED_NOT_ACCEPTED = frozenset({LegResult.DECLINED, LegResult.NO_CONFIRM, LegResult.HUNG_UP})


def _accepted_flag(result: LegResult) -> int | None:
    if result is LegResult.ACCEPTED:
        return 1
    if result in _ANSWERED_NOT_ACCEPTED:
        return 0
    return None  # never answered: there was no decision to record


def statements_for(event: DomainEvent) -> list[Statement]:
    """The SQL that records ``event``: pure, so it is easy to read next to the schema."""
    match event:
        case CallOffered():
            return [
                (
                    "INSERT INTO calls (call_id, area, caller_masked, practice, clinician,"
                    " offered_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        event.call_id,
                        event.area,
                        mask_number(event.caller),
                        event.practice,
                        event.clinician,
                        event.at,
                    ),
                )
            ]
        case CallAnswered():
            return [
                ("UPDATE calls SET answered_at = ? WHERE call_id = ?", (event.at, event.call_id))
            ]
        case NhsNumberCaptured():
            return [
                (
                    "UPDATE calls SET nhs_number = ? WHERE call_id = ?",
                    (event.nhs_number, event.call_id),
                )
            ]
        case SpecialtyChosen():
            return [
                (
                    "UPDATE calls SET specialty = ?, specialty_at = ?, ivr_seconds = ?"
                    " WHERE call_id = ?",
                    (event.specialty, event.at, event.ivr_seconds, event.call_id),
                )
            ]
        case LegStarted():
            return [
                (
                    "INSERT INTO legs (call_id, leg, member_id, uri, tier, why, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.call_id,
                        event.leg,
                        event.member_id,
                        event.uri,
                        event.tier,
                        event.why,
                        event.at,
                    ),
                )
            ]
        case LegRang():
            # 180 then 183 both report ringing: keep the first.
            return [
                (
                    "UPDATE legs SET ringing_at = COALESCE(ringing_at, ?)"
                    " WHERE call_id = ? AND leg = ?",
                    (event.at, event.call_id, event.leg),
                )
            ]
        case LegPickedUp():
            return [
                (
                    "UPDATE legs SET answered_at = ? WHERE call_id = ? AND leg = ?",
                    (event.at, event.call_id, event.leg),
                )
            ]
        case LegEnded():
            return [
                (
                    "UPDATE legs SET ended_at = ?, sip_status = ?, result = ?, ring_seconds = ?,"
                    " accepted = COALESCE(?, accepted) WHERE call_id = ? AND leg = ?",
                    (
                        event.at,
                        event.status,
                        event.result.value,
                        event.ring_seconds,
                        _accepted_flag(event.result),
                        event.call_id,
                        event.leg,
                    ),
                )
            ]
        case Connected():
            return [
                (
                    "UPDATE calls SET connected_at = ?, specialty = ?, member_id = ?, tier = ?,"
                    " connect_seconds = ? WHERE call_id = ?",
                    (
                        event.at,
                        event.specialty,
                        event.member_id,
                        event.tier,
                        event.connect_seconds,
                        event.call_id,
                    ),
                ),
                (
                    "UPDATE legs SET accepted = 1 WHERE call_id = ? AND leg = ?",
                    (event.call_id, event.leg),
                ),
            ]
        case OutcomeRecorded():
            return [
                (
                    "UPDATE calls SET survey_avoided_referral = ? WHERE call_id = ?",
                    (int(event.avoided_referral), event.call_id),
                )
            ]
        case CallEnded():
            outcome = call_outcome(event.reason, connected=event.connected)
            return [
                (
                    "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = ?, talk_seconds = ?,"
                    " specialty = COALESCE(?, specialty) WHERE call_id = ?",
                    (
                        event.at,
                        event.reason.value,
                        outcome,
                        event.talk_seconds if event.connected else None,
                        event.specialty,
                        event.call_id,
                    ),
                ),
                # A leg the flow never reported ended (the bridged one, usually) ends with the
                # call, so no leg stays open once its call is closed.
                (
                    "UPDATE legs SET ended_at = ?, result = COALESCE(result, CASE accepted"
                    " WHEN 1 THEN 'accepted' ELSE 'cancelled' END)"
                    " WHERE call_id = ? AND ended_at IS NULL",
                    (event.at, event.call_id),
                ),
            ]


class CallStore:
    """The call-record sink. Open with ``await CallStore.open(path)``; ``await close()`` after."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._in_flight: set[asyncio.Task[list[int]]] = set()
        self.path = path

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> Self:
        """Open (creating if needed) and migrate the database at ``path``."""
        file = Path(path)
        # Autocommit mode: we issue BEGIN/COMMIT ourselves, one transaction per event.
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
        return cls(db, file)

    async def close(self) -> None:
        """Finish writes still in flight (from cancelled callers too), then close."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<CallStore {str(self.path)!r}>"

    async def handle(self, event: DomainEvent) -> None:
        """Record one domain event, committed before this returns."""
        await self._transaction(statements_for(event))

    async def close_interrupted(self, now: float) -> int:
        """Close every call (and its legs) left open by a crash; return how many calls."""
        reason = EndReason.INTERRUPTED.value
        statements: list[Statement] = [
            # Leg results stay NULL: nobody knows how those legs really ended.
            (
                "UPDATE legs SET ended_at = ? WHERE ended_at IS NULL AND call_id IN"
                " (SELECT call_id FROM calls WHERE ended_at IS NULL)",
                (now,),
            ),
            (
                "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = CASE WHEN"
                " connected_at IS NULL THEN ? ELSE 'connected' END WHERE ended_at IS NULL",
                (now, reason, INTERRUPTED),
            ),
        ]
        counts = await self._transaction(statements)
        return counts[-1]

    async def purge(self, before: float) -> int:
        """Delete ended calls offered before ``before`` (and their legs); return how many."""
        counts = await self._transaction(
            [("DELETE FROM calls WHERE offered_at < ? AND ended_at IS NOT NULL", (before,))]
        )
        return counts[0]

    async def export(
        self,
        since: float | None,
        until: float | None,
        fmt: Literal["csv", "json"],
        out: TextIO,
    ) -> int:
        """Write calls offered in [since, until) to ``out`` as CSV or JSON; return the row count."""
        async with self._lock:
            return await store_export.export(self._db, since, until, fmt, out)

    async def _transaction(self, statements: Sequence[Statement]) -> list[int]:
        """Run ``statements`` as one committed transaction; return each one's changed-row count.

        Many call tasks share this connection, so transactions queue on a lock; and a task
        cancelled mid-write must not leave a transaction open, so the write is shielded and
        finishes (or rolls back) on its own.
        """
        task = asyncio.ensure_future(self._serialised(statements))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(task)

    async def _serialised(self, statements: Sequence[Statement]) -> list[int]:
        async with self._lock:
            return await self._run(statements)

    async def _run(self, statements: Sequence[Statement]) -> list[int]:
        counts: list[int] = []
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                cursor = await self._db.execute(sql, params)
                counts.append(cursor.rowcount)
                await cursor.close()
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        return counts
