"""Writing spooled records: a batch per transaction, together with its spool mark.

The mark (the spool's epoch and the batch's last sequence number) commits with the records, so
a replay after a crash knows exactly which spooled records the database already has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Final

import aiosqlite
import structlog

from callrouter.adapters.store_backlog import call_id_of
from callrouter.adapters.store_errors import worth_waiting_out
from callrouter.adapters.store_spool import SpoolEntry
from callrouter.adapters.store_statements import statements_for

log = structlog.get_logger("callrouter.records")

_MARK: Final = (
    "INSERT INTO spool_marks (epoch, seq) VALUES (?, ?)"
    " ON CONFLICT (epoch) DO UPDATE SET seq = excluded.seq"
)


async def read_marks(db: aiosqlite.Connection) -> dict[str, int]:
    async with db.execute("SELECT epoch, seq FROM spool_marks") as cursor:
        return {str(epoch): int(seq) for epoch, seq in await cursor.fetchall()}


async def rollback(db: aiosqlite.Connection) -> None:
    """Roll back if a transaction is still open: on SQLITE_FULL or an I/O error SQLite has
    already rolled back itself, and a second ROLLBACK would only hide the real error."""
    if not db.in_transaction:
        return
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("rollback_failed", error=str(exc))


async def write_batch(
    db: aiosqlite.Connection,
    entries: Sequence[SpoolEntry],
    count_failure: Callable[[sqlite3.Error], str],
) -> bool:
    """Write ``entries`` and their mark in one transaction; False (rolled back) if the database
    cannot take them yet. A record that can never be written is logged, counted and passed."""
    try:
        await db.execute("BEGIN IMMEDIATE")
        for entry in entries:
            await db.execute("SAVEPOINT record")
            try:
                for sql, params in statements_for(entry.record):
                    await (await db.execute(sql, params)).close()
            except sqlite3.Error as exc:
                if worth_waiting_out(exc):
                    raise
                # A bug elsewhere made this record unwritable: say so and move on, as a direct
                # write would have raised.
                await db.execute("ROLLBACK TO record")
                count_failure(exc)
                log.error(
                    "spooled_record_rejected",
                    error=str(exc),
                    record=type(entry.record).__name__,
                    call_id=call_id_of(entry.record),
                    seq=entry.seq,
                )
            await db.execute("RELEASE record")
        last = entries[-1]
        await db.execute(_MARK, (last.epoch, last.seq))
        await db.execute("COMMIT")
    except sqlite3.Error as exc:
        await rollback(db)
        kind = count_failure(exc)
        log.warning("spooled_records_not_written", error=str(exc), kind=kind)
        return False
    except BaseException:
        await rollback(db)  # never leave the transaction open for the next try
        raise
    return True
