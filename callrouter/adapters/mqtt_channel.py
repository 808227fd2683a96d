"""What one job on the MQTT bus sees of it (callrouter.adapters.mqtt): a ``Channel`` subscribes
to some topics and handles their messages, publishes retained state through the bus, and has
what it refuses counted by reason (``Rejections``, reported to the ``BusObserver``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Protocol

import structlog

log = structlog.get_logger("callrouter.mqtt")

# One topic level: no separators, no wildcards, nothing a name or number would need.
LEVEL: Final = re.compile(r"^[A-Za-z0-9_.-]+$")
PREFIX: Final = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

Publish = Callable[[str, bytes, bool], None]  # topic, payload, retain: queued, never blocks
Reject = Callable[[str, int], None]  # reason (REJECT_REASONS), payload size


class BusObserver(Protocol):
    """What the bus reports to operators (the metrics adapter implements it)."""

    def mqtt_connected(self, connected: bool) -> None: ...  # a state, not a flag

    def mqtt_payload_rejected(self, reason: str) -> None: ...


class Channel(Protocol):
    """One job on the bus. ``attach`` is called once by the bus; ``on_connected`` after each
    (re)subscription; ``maintain`` runs for the life of each session (cancelled at its end)."""

    @property
    def filters(self) -> tuple[str, ...]: ...

    def attach(self, publish: Publish, reject: Reject) -> None: ...

    def wants(self, topic: str) -> bool: ...

    def on_message(self, topic: str, payload: bytes) -> None: ...

    def on_connected(self) -> None: ...

    async def maintain(self) -> None: ...


def as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


class Rejections:
    """Messages refused, counted by reason; each reason logged the first time and then at every
    power of two, so a flood of bad messages cannot flood the log."""

    def __init__(self, tell: Callable[[str], None]) -> None:
        self.counts: dict[str, int] = {}
        self._tell = tell

    def __call__(self, reason: str, size: int) -> None:
        count = self.counts[reason] = self.counts.get(reason, 0) + 1
        self._tell(reason)
        if count & (count - 1) == 0:
            log.warning("bus_availability_rejected", reason=reason, size=size, count=count)
