"""Call records in SQLite: one row per call, one per consultant leg, written as events happen.

Every domain event is its own committed transaction (WAL, ``synchronous=FULL``), so a kill -9
loses nothing already handled; at start-up ``close_interrupted`` marks what was left open.

When the database cannot take a record (disk full, I/O error, a lock held too long), and the
store was opened with a spool, the record waits instead: it goes to the end of the backlog (in
memory and, synced, in the spool file; see ``store_spool``) and ``handle`` returns. While
anything waits, every new record queues behind it, so a call's records always reach the database
in the order they happened: no update of a row whose insert is still waiting, no orphan leg.
The store's own flusher task retries with backoff; ``close`` gives it one last bounded try, and
the next ``open`` replays what is still in the spool file before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TextIO, TypeVar

import aiosqlite
import structlog

from callrouter.adapters import store_export, store_summary
from callrouter.adapters.store_backlog import Backlog, NoObserver, StoreObserver, call_id_of
from callrouter.adapters.store_errors import failure_kind, worth_waiting_out
from callrouter.adapters.store_replay import read_marks, rollback, write_batch
from callrouter.adapters.store_schema import connect
from callrouter.adapters.store_spool import (
    SpoolEntry,
    SpoolFile,
    SpoolOptions,
    ensure_directory,
)
from callrouter.adapters.store_statements import (
    AuditRecord,
    CloseInterrupted,
    Record,
    SqlValue,
    Statement,
    statements_for,
)
from callrouter.core.domain import DomainEvent

__all__ = ["CallStore", "SpoolOptions", "StoreObserver", "statements_for"]

log = structlog.get_logger("callrouter.records")

T = TypeVar("T")
BATCH: Final = 200  # spooled records written per transaction when the backlog drains


class _Step(Enum):
    EMPTY = "empty"  # nothing waits any more
    PROGRESS = "progress"  # some records written, more wait
    FAILED = "failed"  # the database still cannot take them


class CallStore:
    """The call-record sink. Open with ``await CallStore.open(path)``; ``await close()`` after."""

    def __init__(
        self,
        db: aiosqlite.Connection | None,
        path: Path,
        backlog: Backlog | None = None,
        spool: SpoolOptions | None = None,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self._db = db  # None: not open yet (a full disk at start-up); the flusher retries
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = asyncio.Lock()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._backlog = backlog
        self._options = spool or SpoolOptions()
        self._observer: StoreObserver = NoObserver() if backlog is None else backlog.observer
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._marks_written = False
        self._marks_read = False
        self.path = path

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_ms: int = 5000,
        spool: SpoolOptions | None = None,
        observer: StoreObserver | None = None,
    ) -> Self:
        """Open (creating it and its directory if needed) and migrate the database at ``path``.

        With ``spool``, records the database cannot take wait in the spool file instead of
        failing, what a previous process left there is written first, and a database that
        cannot even be opened (a full disk stops SQLite making its WAL files) is retried in the
        background while records wait. Raises ``SpoolInUseError`` if another process holds
        that spool.
        """
        file = Path(path)
        ensure_directory(file.parent)
        db: aiosqlite.Connection | None = None
        try:
            db = await connect(file, busy_timeout_ms)
        except sqlite3.Error as exc:
            if spool is None or not worth_waiting_out(exc):
                raise
            (observer or NoObserver()).store_write_failed(failure_kind(exc))
            log.error("records_database_unavailable", path=str(file), error=str(exc))
        spool_file: SpoolFile | None = None
        try:
            entries: list[SpoolEntry] = []
            backlog = None
            if spool is not None:
                opened, entries = await asyncio.to_thread(
                    SpoolFile.open, spool.path_for(file), spool.reserve_bytes
                )
                spool_file = opened
                backlog = Backlog(opened, spool.max_events, observer or NoObserver())
            store = cls(db, file, backlog, spool, busy_timeout_ms)
            if observer is not None:
                store.observe(observer)
            if backlog is not None:
                await store._replay(entries)
        except BaseException:
            if spool_file is not None:
                spool_file.close()
            if db is not None:
                await db.close()
            raise
        return store

    def observe(self, observer: StoreObserver) -> None:
        """Report write failures and the backlog to ``observer`` from now on."""
        self._observer = observer
        if self._backlog is not None:
            self._backlog.observer = observer
            observer.set_store_spooled(len(self._backlog))

    @property
    def waiting(self) -> int:
        """Records waiting for the database."""
        return 0 if self._backlog is None else len(self._backlog)

    async def close(self) -> None:
        """Finish writes in flight (from cancelled callers too), give waiting records one last
        bounded try, then close; records still waiting stay in the spool for the next start."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
        try:
            if self._backlog is not None:
                try:
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + self._options.close_flush_seconds
                    while self._backlog and loop.time() < deadline:
                        if await self._step() is _Step.FAILED:
                            break
                except Exception:  # what is in the spool file is still there for the next start
                    log.exception("spool_final_flush_failed")
                self._backlog.close()
        finally:
            if self._db is not None:
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
        return f"<CallStore {str(self.path)!r} waiting={self.waiting}>"

    async def handle(self, event: DomainEvent) -> None:
        """Record one domain event: committed (or, with a spool, synced to the spool) on return."""
        await self._shielded(self._record(event))

    async def note(self, record: AuditRecord) -> None:
        """Record an audit row or a live-override change: like ``handle``, committed (or
        synced to the spool) on return, in order with the call records."""
        await self._shielded(self._record(record))

    async def read(self, sql: str, params: tuple[SqlValue, ...] = ()) -> list[tuple[SqlValue, ...]]:
        """Rows of a query (the live overrides at start-up), behind any write in progress."""
        async with self._lock, self._conn.execute(sql, params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def close_interrupted(self, now: float) -> int:
        """Close every call (and its legs) left open by a crash; return how many calls.

        If records are waiting, this waits behind them (so it closes exactly the calls they
        leave open) and 0 is returned; the deferral is logged.
        """
        counts = await self._shielded(self._record(CloseInterrupted(now)))
        if counts is None:
            log.warning("close_interrupted_deferred", waiting=self.waiting)
            return 0
        return counts[-1]

    async def purge(self, before: float) -> int:
        """Delete ended calls offered before ``before`` (and their legs); return how many."""
        sql = "DELETE FROM calls WHERE offered_at < ? AND ended_at IS NOT NULL"
        counts = await self._shielded(self._serialised([(sql, (before,))]))
        return counts[0]

    async def seal_plain_nhs_numbers(self, seal: Callable[[str, str], str]) -> int:
        """Seal NHS numbers an older version stored in clear (``seal(number, call_id)``);
        returns how many. Sealed values start ``v1:``; a number is ten digits."""
        sql = "SELECT call_id, nhs_number FROM calls WHERE nhs_number GLOB '[0-9]*'"
        async with self._lock, self._conn.execute(sql) as cursor:
            plain = [(str(row[0]), str(row[1])) async for row in cursor]
        update = "UPDATE calls SET nhs_number = ? WHERE call_id = ?"
        for call_id, number in plain:
            await self._shielded(self._serialised([(update, (seal(number, call_id), call_id))]))
        return len(plain)

    async def recordings_before(self, before: float) -> list[tuple[str, str]]:
        """(call id, sealed file) of every kept recording of a call offered before ``before``."""
        sql = (
            "SELECT call_id, recording_path FROM calls WHERE offered_at < ?"
            " AND recording_path IS NOT NULL ORDER BY offered_at"
        )
        async with self._lock, self._conn.execute(sql, (before,)) as cursor:
            return [(str(row[0]), str(row[1])) async for row in cursor]

    async def mark_recording_purged(self, call_id: str) -> None:
        """The call's recording file was removed under the retention rule."""
        sql = (
            "UPDATE calls SET recording_state = 'purged', recording_path = NULL"
            " WHERE call_id = ?"
        )
        await self._shielded(self._serialised([(sql, (call_id,))]))

    async def export(
        self,
        since: float | None,
        until: float | None,
        fmt: Literal["csv", "json"],
        out: TextIO,
    ) -> int:
        """Write calls offered in [since, until) to ``out`` as CSV or JSON; return the row count."""
        async with self._lock:
            return await store_export.export(self._conn, since, until, fmt, out)

    async def summary(
        self, since: float | None, until: float | None, by: str
    ) -> list[store_summary.Row]:
        """Per-group counts and shares (``store_summary``) of calls offered in [since, until)."""
        async with self._lock:
            return await store_summary.summarise(self._conn, since, until, by)

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            msg = f"records database {self.path} could not be opened yet"
            raise sqlite3.OperationalError(msg)
        return self._db

    # -- writing ------------------------------------------------------------------------------

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Many call tasks share this connection, so writes queue on a lock; and a task
        cancelled mid-write must not leave a transaction open, so the write is shielded and
        finishes (or rolls back) on its own."""
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(task)

    async def _serialised(self, statements: Sequence[Statement]) -> list[int]:
        async with self._lock:
            return await self._run(statements)

    async def _record(self, record: Record) -> list[int] | None:
        """Write ``record`` (returning row counts), or queue it in the backlog (returning None)."""
        async with self._lock:
            backlog = self._backlog
            if backlog is None or (self._db is not None and not backlog):
                try:
                    return await self._run(statements_for(record))
                except sqlite3.Error as exc:
                    kind = self._count_failure(exc)
                    if backlog is None or not worth_waiting_out(exc):
                        raise
                    log.error(
                        "records_spooling",
                        error=str(exc),
                        kind=kind,
                        record=type(record).__name__,
                        call_id=call_id_of(record),
                        spool=str(backlog.spool.path),
                    )
            await backlog.add(record)
            self._start_flusher()
            return None

    async def _run(self, statements: Sequence[Statement]) -> list[int]:
        counts: list[int] = []
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                cursor = await self._conn.execute(sql, params)
                counts.append(cursor.rowcount)
                await cursor.close()
            await self._conn.execute("COMMIT")
        except BaseException:
            await self._rollback()
            raise
        return counts

    async def _rollback(self) -> None:
        if self._db is not None:
            await rollback(self._db)

    def _count_failure(self, exc: sqlite3.Error) -> str:
        kind = failure_kind(exc)
        self._observer.store_write_failed(kind)
        return kind

    # -- the backlog ---------------------------------------------------------------------------

    async def _replay(self, entries: list[SpoolEntry]) -> None:
        """Write what a previous process left in the spool (``_ready`` skips what it wrote)."""
        assert self._backlog is not None
        if entries:
            log.warning("spool_replay", path=str(self._backlog.spool.path), found=len(entries))
        self._backlog.restore(entries)
        while (step := await self._step()) is _Step.PROGRESS:
            pass
        if step is _Step.FAILED:
            self._start_flusher()

    async def _ready(self) -> bool:
        """Open the database if it could not be opened before, and read the spool marks once:
        records they say are written already (a crash before the spool was cleared) are let go."""
        assert self._backlog is not None
        try:
            if self._db is None:
                self._db = await connect(self.path, self._busy_timeout_ms)
                log.warning("records_database_open", path=str(self.path), waiting=self.waiting)
            if not self._marks_read:
                marks = await read_marks(self._db)
                self._marks_read = True
                self._marks_written = bool(marks)
                if written := self._backlog.drop_written(marks):
                    log.warning("spool_already_written", count=written, waiting=self.waiting)
        except sqlite3.Error as exc:
            kind = self._count_failure(exc)
            log.warning("records_database_unavailable", error=str(exc), kind=kind)
            return False
        return True

    def _start_flusher(self) -> None:
        if self._flusher is None and not self._closing:
            self._wake.clear()
            # A fresh context: not the log context (call_id) of the call that happened to start it.
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_loop(), name="records-spool", context=contextvars.Context()
            )

    async def _flush_loop(self) -> None:
        """Retry the backlog with backoff until it is empty or the store closes."""
        options = self._options
        delay = options.retry_min_seconds
        try:
            while not self._closing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                while not self._closing:
                    try:
                        step = await self._step()
                    except Exception:  # never die silently: log, back off, try again
                        log.exception("spool_flush_failed")
                        step = _Step.FAILED
                    if step is _Step.EMPTY:
                        return
                    if step is _Step.FAILED:
                        delay = min(delay * 2, options.retry_max_seconds)
                        break
                    delay = options.retry_min_seconds
        finally:
            self._flusher = None

    async def _step(self) -> _Step:
        """Write the next batch of waiting records, in one transaction with their mark."""
        assert self._backlog is not None
        async with self._lock:
            await self._backlog.make_durable()
            if not await self._ready():
                return _Step.FAILED
            entries = self._backlog.front(BATCH)
            if entries:
                if not await self._write_batch(entries):
                    return _Step.FAILED
                self._backlog.remove_front(len(entries))
            if self._backlog:
                return _Step.PROGRESS
            await self._backlog.emptied()
            await self._forget_marks()
            return _Step.EMPTY

    async def _write_batch(self, entries: list[SpoolEntry]) -> bool:
        written = await write_batch(self._conn, entries, self._count_failure)
        if written:
            self._marks_written = True
            log.info(
                "spooled_records_written", count=len(entries), waiting=self.waiting - len(entries)
            )
        return written

    async def _forget_marks(self) -> None:
        """Once the spool file is zeroed its marks mean nothing: clear them. Only then; and a
        failure here is harmless (the marks name an epoch no spool line carries any more)."""
        assert self._backlog is not None
        if not self._marks_written or self._backlog.spool.used_bytes:
            return
        try:
            await self._run([("DELETE FROM spool_marks", ())])
        except sqlite3.Error as exc:
            log.warning("spool_marks_not_cleared", error=str(exc))
            return
        self._marks_written = False
