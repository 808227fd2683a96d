"""The backlog: records waiting for the database, in order, in memory and in the spool file.

The spool file always holds a prefix of the backlog (plus records already written, until the
backlog empties and the file is zeroed): a record only counts as durable once every record
before it is, so a replay never applies a later record of a call without the earlier ones.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import structlog

from callrouter.adapters.store_spool import SpoolEntry, SpoolFile, encode
from callrouter.adapters.store_statements import Record

log = structlog.get_logger("callrouter.records")


class StoreObserver(Protocol):
    """What the store reports (the metrics sink implements it)."""

    def store_write_failed(self, kind: str) -> None: ...

    def set_store_spooled(self, count: int) -> None: ...

    def store_records_dropped(self, count: int) -> None: ...


class NoObserver:
    def store_write_failed(self, kind: str) -> None:
        pass

    def set_store_spooled(self, count: int) -> None:
        pass

    def store_records_dropped(self, count: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Waiting:
    entry: SpoolEntry
    line: bytes


def call_id_of(record: Record) -> str | None:
    return getattr(record, "call_id", None)


class Backlog:
    """Bounded FIFO of records the database has not taken yet; blocking file I/O off the loop."""

    def __init__(self, spool: SpoolFile, max_events: int, observer: StoreObserver) -> None:
        self.spool = spool
        self.observer = observer
        self._max = max_events
        self._queue: deque[_Waiting] = deque()
        self._only_in_memory = 0  # how many at the tail are not in the spool file yet
        self._spool_failing = False

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<Backlog waiting={len(self._queue)} only_in_memory={self._only_in_memory}>"

    @property
    def only_in_memory(self) -> int:
        return self._only_in_memory

    def restore(self, entries: list[SpoolEntry]) -> None:
        """Take back records read from the spool file at start-up (durable already)."""
        self._queue.extend(_Waiting(entry, encode(entry)) for entry in entries)
        self.observer.set_store_spooled(len(self._queue))

    async def add(self, record: Record) -> bool:
        """Queue ``record`` behind the others and sync it to the spool; False if it was dropped."""
        if len(self._queue) >= self._max:
            self.observer.store_records_dropped(1)
            log.error(
                "record_dropped",
                record=type(record).__name__,
                call_id=call_id_of(record),
                waiting=len(self._queue),
                max_events=self._max,
            )
            return False
        entry = self.spool.entry(record)
        self._queue.append(_Waiting(entry, encode(entry)))
        self._only_in_memory += 1
        self.observer.set_store_spooled(len(self._queue))
        if not self._spool_failing:  # else the flusher retries, on its backoff
            await self.make_durable()
        return True

    async def make_durable(self) -> None:
        """Append the records held only in memory to the spool file, in order, if it takes them."""
        if not self._only_in_memory:
            return
        start = len(self._queue) - self._only_in_memory
        data = b"".join(w.line for w in itertools.islice(self._queue, start, None))
        try:
            await asyncio.to_thread(self.spool.append, data)
        except OSError as exc:
            if not self._spool_failing:
                self._spool_failing = True
                log.error(
                    "spool_write_failed",
                    path=str(self.spool.path),
                    error=str(exc),
                    only_in_memory=self._only_in_memory,
                )
            return
        if self._spool_failing:
            self._spool_failing = False
            log.warning("spool_writable_again", path=str(self.spool.path))
        self._only_in_memory = 0

    def drop_written(self, marks: dict[str, int]) -> int:
        """Let go of records the database's spool marks say are written; return how many."""
        count = 0
        while self._queue and self._queue[0].entry.seq <= marks.get(self._queue[0].entry.epoch, -1):
            count += 1
            self._queue.popleft()
        self._only_in_memory = min(self._only_in_memory, len(self._queue))
        self.observer.set_store_spooled(len(self._queue))
        return count

    def front(self, limit: int) -> list[SpoolEntry]:
        return [w.entry for w in itertools.islice(self._queue, limit)]

    def remove_front(self, count: int) -> None:
        """``count`` records from the front reached the database."""
        for _ in range(count):
            self._queue.popleft()
        self._only_in_memory = min(self._only_in_memory, len(self._queue))
        self.observer.set_store_spooled(len(self._queue))

    async def emptied(self) -> bool:
        """Zero the spool file once everything reached the database; True if that was done."""
        if self._queue or not self.spool.used_bytes:
            return False
        try:
            await asyncio.to_thread(self.spool.reset)
        except OSError as exc:
            log.error("spool_reset_failed", path=str(self.spool.path), error=str(exc))
            return False
        return True

    def close(self) -> None:
        """Say what is left: durable records wait for the next start; the rest are lost."""
        durable = len(self._queue) - self._only_in_memory
        if durable:
            log.warning("records_left_in_spool", count=durable, path=str(self.spool.path))
        if self._only_in_memory:
            self.observer.store_records_dropped(self._only_in_memory)
            log.error("records_lost_at_shutdown", count=self._only_in_memory)
        self.spool.close()
