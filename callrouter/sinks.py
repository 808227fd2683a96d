"""Fan-out of domain events to the sinks: records, metrics, the bus, the log.

Records come first and are awaited (the audit trail); metrics and the bus are synchronous and
never block. A failing sink is logged and does not stop the others or the call.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import structlog

from callrouter.adapters.sealing import SealingKey, seal_field
from callrouter.core import domain as d

log = structlog.get_logger("callrouter.events")


class Store(Protocol):
    async def handle(self, event: d.DomainEvent) -> None: ...


class SyncSink(Protocol):
    def handle(self, event: d.DomainEvent) -> None: ...


class Bus(Protocol):
    def publish_event(self, event: d.DomainEvent) -> None: ...


class SealNhsNumbers:
    """The store, with every NHS number sealed (adapters.sealing) before it is written or
    spooled: the records never hold one in clear, and a sealed one opens only for its call."""

    def __init__(self, store: Store, key: SealingKey) -> None:
        self._store = store
        self._key = key

    async def handle(self, event: d.DomainEvent) -> None:
        if isinstance(event, d.NhsNumberCaptured):
            sealed = seal_field(self._key, event.nhs_number, nhs_context(event.call_id))
            event = dataclasses.replace(event, nhs_number=sealed)
        await self._store.handle(event)


def nhs_context(call_id: str) -> str:
    """What a sealed NHS number is bound to: its own call."""
    return f"nhs_number/{call_id}"


class Fanout:
    def __init__(
        self,
        store: Store | None = None,
        metrics: SyncSink | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._bus = bus

    async def handle(self, event: d.DomainEvent) -> None:
        if self._store is not None:
            try:
                await self._store.handle(event)
            except Exception:
                log.exception("store_failed", event_type=type(event).__name__)
        if self._metrics is not None:
            try:
                self._metrics.handle(event)
            except Exception:
                log.exception("metrics_failed", event_type=type(event).__name__)
        if self._bus is not None:
            self._bus.publish_event(event)
        fields = dataclasses.asdict(event)
        fields.pop("nhs_number", None)  # never in a log line
        fields.pop("call_id", None)  # bound in the call's log context already
        log.info(type(event).__name__, **fields)
