"""The MQTT bus (aiomqtt 2.x): node presence and call events out, consultant availability in.

Topics, under a configured prefix (no names or phone numbers ever go in a topic):

- ``<prefix>/node/<node_id>/status`` — retained JSON ``{"state": "online", ...}``; the Last Will
  puts ``"offline"`` (reason ``lost``) there if the connection dies, and a clean stop publishes
  ``"offline"`` (reason ``stopped``) itself.
- ``<prefix>/events/<event_type>`` — one JSON message per domain event (``call_offered``,
  ``connected``...). The caller number is masked and the NHS number never leaves the engine.
- ``<prefix>/availability/<member_id>`` — retained, written by a rota app or a consultant's own
  status button: ``available`` / ``unavailable`` or ``{"available": bool}``, optionally with
  ``"until"`` (ISO 8601 with an offset: the mark expires then) and ``"by"`` (who set it, for the
  audit); an empty retained message clears the mark. Each change is handed to
  ``on_availability`` (the audit trail); a retained message redelivered on reconnect changes
  nothing and is not. Anyone who may publish there can take a consultant out of the hunt,
  so restrict it with the broker's ACLs. Marks are kept across reconnects and refreshed by the
  retained messages that re-subscribing brings; a mark *cleared* while we were away is not
  redelivered (MQTT has nothing to send), so it stays until the next message for that member.

- ``<prefix>/commands/override`` — live cover commands (only with a ``commands`` handler,
  ``callrouter.live_cover``): each is answered on ``<prefix>/commands/override/response``.
  Anyone who may publish there can change who is rung: the broker's ACLs must allow it only to
  the rota app's account (README, "Live cover and audit").

Events are queued (bounded, oldest dropped and counted) so that a slow or absent broker never
blocks or slows a call. Nothing a publisher sends can stop the bus: an availability message that is
too long, not UTF-8, not one of the accepted shapes, nested (a JSON bomb) or for a topic level we
would not write is rejected and counted by reason, and any other failure inside a session ends
only that session (logged, counted as a disconnect), after which the bus reconnects.

Delivery is at least once (QoS 1): an event in flight when the
connection drops is sent again after the reconnect, so consumers de-duplicate on ``node``+``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import aiomqtt
import structlog

from callrouter import __version__
from callrouter.adapters.masking import mask_all_digits
from callrouter.adapters.mqtt_payloads import (
    MAX_AVAILABILITY_BYTES,
    MAX_BY_CHARS,
    REJECT_REASONS,
    RejectedPayload,
    decode_json_object,
    parse_availability,
    parse_by,
    parse_instant,
    parse_mark,
)
from callrouter.core import domain as d
from callrouter.core.availability import AvailabilityMarks, Mark, TooManyMarksError

__all__ = [  # the payload rules live in mqtt_payloads; importable from here as before
    "MAX_AVAILABILITY_BYTES",
    "MAX_AVAILABILITY_MARKS",
    "MAX_BY_CHARS",
    "REJECT_REASONS",
    "BusObserver",
    "CommandHandler",
    "MqttBus",
    "RejectedPayload",
    "decode_json_object",
    "event_payload",
    "event_type_name",
    "parse_availability",
    "parse_by",
    "parse_instant",
    "parse_mark",
]

log = structlog.get_logger("callrouter.mqtt")

QOS: Final = 1
DEFAULT_QUEUE_SIZE: Final = 10_000
STOP_PUBLISH_TIMEOUT: Final = 2.0  # seconds the "offline" message may take on a clean stop
# Marks are kept per member id taken from the topic: a publisher inventing ids must not be able
# to grow the table without bound. Far above any real rota (the shipped one has 216 members).
MAX_AVAILABILITY_MARKS: Final = 10_000
# One topic level: no separators, no wildcards, nothing a name or number would need.
_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def event_type_name(event: d.DomainEvent) -> str:
    """``NhsNumberCaptured`` → ``nhs_number_captured``: the last level of the event's topic."""
    return _CAMEL_HUMP.sub("_", type(event).__name__).lower()


def event_payload(event: d.DomainEvent, node_id: str, seq: int) -> dict[str, Any]:
    """The event as the bus may see it: caller masked; NHS number, clinician name and the
    consultant's contact URI left out (the member id already says who was rung)."""
    fields = dataclasses.asdict(event)
    fields.pop("nhs_number", None)
    fields.pop("uri", None)
    if "clinician" in fields:
        fields["clinician_known"] = fields.pop("clinician") is not None
    if "caller" in fields:
        fields["caller"] = mask_all_digits(str(fields["caller"]))
    return {"type": event_type_name(event), "node": node_id, "seq": seq, **fields}


class BusObserver(Protocol):
    """What the bus reports to operators (the metrics adapter implements it)."""

    def mqtt_connected(self, connected: bool) -> None: ...  # a state, not a flag

    def mqtt_payload_rejected(self, reason: str) -> None: ...


class CommandHandler(Protocol):
    """Carries out one command message; returns the response's body (``"ok"`` says how it went).
    Raises RejectedPayload for a message that is not a command at all."""

    def __call__(self, topic: str, payload: bytes) -> Awaitable[dict[str, Any]]: ...


AvailabilityListener = Callable[[str, str, Mark | None], None]  # topic, member id, mark


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


class MqttBus:
    """Publishes node status and domain events; tracks consultant availability.

    ``run()`` is the whole connection lifetime: start it as a task, cancel it to stop.
    ``publish_event`` and ``is_available`` may be called at any time, connected or not, from the
    event loop's thread.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic_prefix: str,
        node_id: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        observer: BusObserver | None = None,
        clock: Callable[[], float] = time.time,
        on_availability: AvailabilityListener | None = None,
        commands: CommandHandler | None = None,
    ) -> None:
        if not _PREFIX.match(topic_prefix):
            raise ValueError(f"topic prefix {topic_prefix!r}: use levels of [A-Za-z0-9_.-]")
        if not _LEVEL.match(node_id):
            raise ValueError(f"node id {node_id!r}: one topic level of [A-Za-z0-9_.-]")
        if queue_size < 1 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("queue_size >= 1 and 0 < backoff_initial <= backoff_max")
        self._host = host
        self._port = port
        self._prefix = topic_prefix
        self.node_id = node_id
        self._client_id = client_id or f"callrouter-{node_id}"
        self._username = username
        self._password = password
        self._keepalive = keepalive
        self._timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._started_at = datetime.fromtimestamp(time.time(), tz=UTC).isoformat()
        self._pending: deque[tuple[str, bytes]] = deque(maxlen=queue_size)
        self._wakeup = asyncio.Event()
        self._marks = AvailabilityMarks(MAX_AVAILABILITY_MARKS)
        self._clock = clock
        self._availability_listener = on_availability
        self._commands = commands
        self._seq = 0
        self._connected = False
        self._observer = observer
        self.rejected: dict[str, int] = {}  # availability messages refused, by reason
        self.session_failures = 0  # sessions ended by something other than the broker
        self.dropped = 0  # events dropped because the queue was full (broker away too long)
        self.published = 0  # events the broker acknowledged
        self.connections = 0  # successful connects, the first one included

    def __repr__(self) -> str:
        state = "CONNECTED" if self._connected else "DISCONNECTED"
        return (
            f"<MqttBus {self._host}:{self._port} node={self.node_id} [{state}]"
            f" pending={len(self._pending)} dropped={self.dropped}>"
        )

    # -- topics -----------------------------------------------------------------------------

    @property
    def status_topic(self) -> str:
        return f"{self._prefix}/node/{self.node_id}/status"

    def event_topic(self, event: d.DomainEvent) -> str:
        return f"{self._prefix}/events/{event_type_name(event)}"

    @property
    def availability_filter(self) -> str:
        return f"{self._prefix}/availability/+"

    @property
    def command_topic(self) -> str:
        return f"{self._prefix}/commands/override"

    @property
    def response_topic(self) -> str:
        return f"{self._prefix}/commands/override/response"

    # -- what the engine calls ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        return len(self._pending)

    def is_available(self, member_id: str) -> bool:
        """False only when the bus has an "unavailable" mark for the member that has not
        expired (``until``, by the injected clock); unknown or expired → True."""
        return self._marks.is_available(member_id, self._clock())

    def availability(self) -> dict[str, bool]:
        """A copy of every mark in force (for the health page and tests); expired ones dropped."""
        return self._marks.snapshot(self._clock())

    def mark_of(self, member_id: str) -> Mark | None:
        return self._marks.current(member_id, self._clock())

    def publish_event(self, event: d.DomainEvent) -> None:
        """Queue the event for the bus. Never blocks and never raises: a call must not notice."""
        try:
            self._seq += 1
            payload = json.dumps(event_payload(event, self.node_id, self._seq)).encode()
            topic = self.event_topic(event)
        except Exception:  # a bad event must not reach the caller's call
            log.exception("bus_event_unserialisable", event_type=type(event).__name__)
            return
        self._enqueue(topic, payload)

    def _enqueue(self, topic: str, payload: bytes) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1  # the deque drops the oldest on append
        self._pending.append((topic, payload))
        self._wakeup.set()

    # -- the connection -----------------------------------------------------------------------

    def _status(self, state: str, reason: str | None = None) -> bytes:
        body: dict[str, object] = {
            "state": state,
            "node": self.node_id,
            "version": __version__,
            "started_at": self._started_at,
        }
        if reason is not None:
            body["reason"] = reason
        return json.dumps(body).encode()

    def _client(self) -> aiomqtt.Client:
        # A fresh client per attempt: aiomqtt must be built inside the running loop, and a new
        # one carries no state from the connection that failed.
        return aiomqtt.Client(
            self._host,
            self._port,
            identifier=self._client_id,
            username=self._username,
            password=self._password,
            keepalive=self._keepalive,
            timeout=self._timeout,
            will=aiomqtt.Will(
                self.status_topic, self._status("offline", "lost"), qos=QOS, retain=True
            ),
        )

    def _set_connected(self, connected: bool) -> None:  # a state, not a flag
        self._connected = connected
        self._tell_observer(lambda seen: seen.mqtt_connected(connected))

    def _tell_observer(self, report: Callable[[BusObserver], None]) -> None:
        # Reporting is never worth the bus: a failing observer is logged and otherwise ignored.
        if self._observer is None:
            return
        try:
            report(self._observer)
        except Exception:
            log.exception("bus_observer_failed")

    async def run(self) -> None:
        """Connect, and reconnect with capped exponential backoff, until cancelled.

        Only cancellation ends it: a broker that goes away, and any bug or resource failure
        inside a session, end that session and start the backoff.
        """
        delay = self._backoff_initial
        while True:
            try:
                async with self._client() as client:
                    self._set_connected(True)
                    self.connections += 1
                    delay = self._backoff_initial
                    log.info("bus_connected", host=self._host, port=self._port)
                    await self._session(client)
            except* aiomqtt.MqttError as failure:
                log.warning("bus_disconnected", error=str(failure.exceptions[0]))
            except* Exception as failure:  # the bus outlives any one failure
                self.session_failures += 1
                log.error("bus_session_failed", error=repr(failure.exceptions[0])[:200])
            finally:
                self._set_connected(False)
            # Full jitter keeps a fleet of nodes from reconnecting in step after a broker restart.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff_max)

    async def _session(self, client: aiomqtt.Client) -> None:
        try:
            await client.publish(self.status_topic, self._status("online"), qos=QOS, retain=True)
            if self._commands is not None:
                # First: once a retained availability mark arrives, commands are heard too.
                await client.subscribe(self.command_topic, qos=QOS)
            await client.subscribe(self.availability_filter, qos=QOS)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._pump(client))
                tasks.create_task(self._listen(client))
        except asyncio.CancelledError:
            # A clean stop: say so ourselves, then DISCONNECT (which discards the Last Will).
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(
                    self.status_topic,
                    self._status("offline", "stopped"),
                    qos=QOS,
                    retain=True,
                    timeout=STOP_PUBLISH_TIMEOUT,
                )
            raise

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            while self._pending:
                item = self._pending[0]
                await client.publish(item[0], item[1], qos=QOS)
                # Only pop what was sent: if the queue overflowed meanwhile, the head moved on.
                if self._pending and self._pending[0] is item:
                    self._pending.popleft()
                self.published += 1
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _listen(self, client: aiomqtt.Client) -> None:
        # Also the connection's watchman: it raises MqttError when the broker goes away, which
        # ends the session (and wakes a publish that would otherwise wait for its PUBACK).
        async for message in client.messages:
            topic = message.topic.value
            if topic == self.command_topic:
                await self._on_command(topic, _as_bytes(message.payload))
            else:
                self._on_availability(topic, _as_bytes(message.payload))

    def _reject(self, reason: str, size: int) -> None:
        first = reason not in self.rejected
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self._tell_observer(lambda seen: seen.mqtt_payload_rejected(reason))
        # A flood of bad messages must not flood the log: every power of two is enough to see it.
        count = self.rejected[reason]
        if first or count & (count - 1) == 0:
            log.warning("bus_availability_rejected", reason=reason, size=size, count=count)

    def _on_availability(self, topic: str, payload: bytes) -> None:
        member_id = topic.rsplit("/", 1)[-1]
        if not _LEVEL.match(member_id):
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
        if changed and self._availability_listener is not None:
            listener = self._availability_listener
            self._tell(lambda: listener(topic, member_id, mark))

    def _tell(self, report: Callable[[], None]) -> None:
        try:
            report()
        except Exception:  # the audit's failure is logged by it; the bus goes on
            log.exception("bus_listener_failed")

    async def _on_command(self, topic: str, payload: bytes) -> None:
        """Carry out a command and answer it on the response topic, whatever happens."""
        assert self._commands is not None
        try:
            answer = await self._commands(topic, payload)
        except RejectedPayload as rejected:
            self._reject(rejected.reason, len(payload))
            answer = {"ok": False, "request_id": None, "reason": str(rejected)}
        except Exception as error:  # a bug must not end the session: answer and log it
            log.exception("bus_command_failed")
            answer = {"ok": False, "request_id": None, "reason": f"internal error: {error!r}"[:200]}
        else:
            if answer.get("ok") is False:
                self._reject("refused_command", len(payload))
        answer = {**answer, "node": self.node_id}
        self._enqueue(self.response_topic, json.dumps(answer, ensure_ascii=False).encode())
