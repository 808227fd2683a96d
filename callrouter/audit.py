"""The audit trail's shell: what changed who is rung, from where, by whom, when, into SQLite.

Audited: every availability change from the bus (source: its topic; who: the message's ``by``),
every live override added, removed or refused (``callrouter.live_cover``) and every SIGHUP
reload, taken or refused with its error. Rows go through the call store (``store_audit``), so
they keep their order and wait out a full disk in its spool; the table refuses UPDATE and DELETE.

Callers that cannot wait (the bus's message loop, the reload) call ``note``, which schedules the
write; ``drain`` waits for those in flight (shutdown does, before the store closes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from callrouter.adapters.store_audit import OK, REJECTED, AuditNoted, detail_json
from callrouter.adapters.store_statements import AuditRecord
from callrouter.core.availability import Mark

log = structlog.get_logger("callrouter.audit")

SIGHUP = "SIGHUP"
MAX_ERROR_CHARS = 4000  # a reload's errors, as much as an auditor needs


class AuditStore(Protocol):
    async def note(self, record: AuditRecord) -> None: ...


class AuditTrail:
    """Writes audit records through the store; never raises into the caller's work."""

    def __init__(self, store: AuditStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()
        self.failed = 0  # writes the store refused outright (logged)

    def __repr__(self) -> str:
        return f"<AuditTrail in_flight={len(self._writes)} failed={self.failed}>"

    def now(self) -> float:
        return self._clock()

    async def write(self, record: AuditRecord) -> None:
        """Write ``record`` now; a store failure is logged and counted, not raised."""
        try:
            await self._store.note(record)
        except Exception:  # an audit write must not take down what it audits
            self.failed += 1
            log.exception("audit_write_failed", kind=type(record).__name__)

    def note(
        self,
        kind: str,
        source: str,
        *,
        actor: str | None = None,
        subject: str | None = None,
        ok: bool = True,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Schedule one audit row (from code that cannot await)."""
        record = AuditNoted(
            self._clock(),
            kind,
            source,
            actor,
            subject,
            OK if ok else REJECTED,
            detail_json(detail or {}),
        )
        task = asyncio.get_running_loop().create_task(self.write(record), name="audit")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def drain(self) -> None:
        """Wait for scheduled writes (each finishes or fails on its own)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    # -- what gets audited ---------------------------------------------------------------------

    def availability(self, topic: str, member_id: str, mark: Mark | None) -> None:
        """A change of a member's availability mark from the bus (``MqttBus.on_availability``)."""
        detail: dict[str, object] = {"available": None if mark is None else mark.available}
        if mark is not None and mark.until is not None:
            detail["until"] = mark.until
        if mark is None:
            detail["cleared"] = True
        self.note(
            "availability",
            topic,
            actor=None if mark is None else mark.by,
            subject=member_id,
            detail=detail,
        )

    def config_reload(self, config_path: str, error: str | None) -> None:
        """A SIGHUP reload: taken (``error`` None) or refused with its error text."""
        detail: dict[str, object] = {"config": config_path}
        if error is not None:
            detail["error"] = error[:MAX_ERROR_CHARS]
        self.note("config_reload", SIGHUP, subject=config_path, ok=error is None, detail=detail)
