"""Consultant availability from the bus: ``<prefix>/availability/<member_id>``, retained, written
by a rota app or a consultant's own status button (the payload rules: mqtt_payloads).

Each change is handed to the listener (the audit trail); a retained message redelivered on
reconnect changes nothing and is not. Marks are kept across reconnects and refreshed by the
retained messages that re-subscribing brings; a mark *cleared* while we were away is not
redelivered (MQTT has nothing to send), so it stays until the next message for that member.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import structlog

from callrouter.adapters.mqtt_channel import LEVEL, Publish, Reject
from callrouter.adapters.mqtt_payloads import RejectedPayload, parse_mark
from callrouter.core.availability import AvailabilityMarks, Mark, TooManyMarksError

log = structlog.get_logger("callrouter.mqtt")

# Marks are kept per member id taken from the topic: a publisher inventing ids must not be able
# to grow the table without bound. Far above any real rota (the shipped one has 216 members).
MAX_AVAILABILITY_MARKS: Final = 10_000

AvailabilityListener = Callable[[str, str, Mark | None], None]  # topic, member id, mark


class AvailabilityChannel:
    """The availability marks in force, by member id."""

    def __init__(
        self,
        prefix: str,
        *,
        clock: Callable[[], float] = time.time,
        listener: AvailabilityListener | None = None,
    ) -> None:
        self._base = f"{prefix}/availability/"
        self._marks = AvailabilityMarks(MAX_AVAILABILITY_MARKS)
        self._clock = clock
        self._listener = listener
        self._reject: Reject = lambda _reason, _size: None

    @property
    def filters(self) -> tuple[str, ...]:
        return (self._base + "+",)

    def attach(self, publish: Publish, reject: Reject) -> None:  # reads only
        self._reject = reject

    def wants(self, topic: str) -> bool:
        return topic.startswith(self._base)

    def on_connected(self) -> None:
        pass

    async def maintain(self) -> None:
        pass

    # -- what the engine asks ------------------------------------------------------------------

    def is_available(self, member_id: str) -> bool:
        return self._marks.is_available(member_id, self._clock())

    def snapshot(self) -> dict[str, bool]:
        return self._marks.snapshot(self._clock())

    def mark_of(self, member_id: str) -> Mark | None:
        return self._marks.current(member_id, self._clock())

    # -- messages ------------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        member_id = topic.rsplit("/", 1)[-1]
        if not LEVEL.match(member_id):
            self._reject("bad_topic", len(payload))
            return
        try:
            mark = parse_mark(payload)
        except RejectedPayload as rejected:
            self._reject(rejected.reason, len(payload))
            return
        try:
            changed = self._marks.set(member_id, mark, self._clock())
        except TooManyMarksError:
            self._reject("too_many_members", len(payload))
            return
        available = None if mark is None else mark.available
        until = None if mark is None else mark.until
        log.info("bus_availability", member_id=member_id, available=available, until=until)
        if changed and self._listener is not None:
            try:
                self._listener(topic, member_id, mark)
            except Exception:  # the audit's failure is logged by it; the bus goes on
                log.exception("bus_listener_failed")
