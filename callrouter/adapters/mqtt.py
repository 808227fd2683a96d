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
  audit); an empty retained message clears the mark (callrouter.adapters.mqtt_availability).
  Anyone who may publish there can take a consultant out of the hunt, so restrict it with the
  broker's ACLs.
- ``<prefix>/busy/<node_id>/<member_id>`` — with ``channels=[BusyShare(...)]``: the consultants
  each engine node is ringing or talking to, so other nodes do not ring them
  (callrouter.adapters.mqtt_busy).
- ``<prefix>/commands/override`` — live cover commands (only with a ``commands`` handler,
  ``callrouter.live_cover``): each is answered on ``<prefix>/commands/override/response``.
  Anyone who may publish there can change who is rung: the broker's ACLs must allow it only to
  the rota app's account (README, "Live cover and audit").

Events are queued (bounded, oldest dropped and counted) so that a slow or absent broker never
blocks or slows a call; retained busy claims have a queue of their own, sent first. Nothing a
publisher sends can stop the bus: a message that is too long, not UTF-8, not one of the accepted
shapes, nested (a JSON bomb) or for a topic level we would not write is rejected and counted by
reason, and any other failure inside a session ends only that session (logged, counted as a
disconnect), after which the bus reconnects. Delivery is at least once (QoS 1): an event in
flight when the connection drops is sent again after the reconnect, so consumers de-duplicate
on ``node``+``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import aiomqtt
import structlog

from callrouter import __version__
from callrouter.adapters.mqtt_availability import (
    MAX_AVAILABILITY_MARKS,
    AvailabilityChannel,
    AvailabilityListener,
)
from callrouter.adapters.mqtt_channel import (
    LEVEL,
    PREFIX,
    BusObserver,
    Channel,
    Rejections,
    as_bytes,
)
from callrouter.adapters.mqtt_events import event_payload, event_type_name
from callrouter.adapters.mqtt_payloads import REJECT_REASONS, RejectedPayload, parse_availability
from callrouter.core import domain as d
from callrouter.core.availability import Mark

__all__ = [  # importable from here as before the bus was split by job
    "MAX_AVAILABILITY_MARKS",
    "REJECT_REASONS",
    "BusObserver",
    "Channel",
    "CommandHandler",
    "MqttBus",
    "RejectedPayload",
    "event_payload",
    "event_type_name",
    "parse_availability",
]

log = structlog.get_logger("callrouter.mqtt")

QOS: Final = 1
DEFAULT_QUEUE_SIZE: Final = 10_000
STOP_PUBLISH_TIMEOUT: Final = 2.0  # seconds the "offline" message may take on a clean stop


class CommandHandler(Protocol):
    """Carries out one command message; returns the response's body (``"ok"`` says how it went).
    Raises RejectedPayload for a message that is not a command at all."""

    def __call__(self, topic: str, payload: bytes) -> Awaitable[dict[str, Any]]: ...


class MqttBus:
    """Publishes node status and domain events; tracks consultant availability; carries the
    messages of any other ``channels`` (busy state shared between nodes).

    ``run()`` is the whole connection lifetime: start it as a task, cancel it to stop.
    ``publish_event`` and ``is_available`` may be called at any time, connected or not, from the
    event loop's thread.
    """

    def __init__(  # every option is a config.yaml setting or a test's knob
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
        channels: Sequence[Channel] = (),
    ) -> None:
        if not PREFIX.match(topic_prefix):
            raise ValueError(f"topic prefix {topic_prefix!r}: use levels of [A-Za-z0-9_.-]")
        if not LEVEL.match(node_id):
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
        self._state: deque[tuple[str, bytes]] = deque(maxlen=queue_size)  # retained, sent first
        self._wakeup = asyncio.Event()
        self._commands = commands
        self._seq = 0
        self._connected = False
        self._observer = observer
        self._rejections = Rejections(
            lambda reason: self._tell_observer(lambda seen: seen.mqtt_payload_rejected(reason))
        )
        self._availability = AvailabilityChannel(
            topic_prefix, clock=clock, listener=on_availability
        )
        self._channels: tuple[Channel, ...] = (self._availability, *channels)
        for channel in self._channels:
            channel.attach(self._enqueue_state, self._rejections)
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
        return self._availability.filters[0]

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
        return len(self._pending) + len(self._state)

    @property
    def rejected(self) -> dict[str, int]:
        """Messages refused (availability, busy claims, commands), by reason."""
        return self._rejections.counts

    def is_available(self, member_id: str) -> bool:
        """False only when the bus has an "unavailable" mark for the member that has not
        expired (``until``, by the injected clock); unknown or expired → True."""
        return self._availability.is_available(member_id)

    def availability(self) -> dict[str, bool]:
        """A copy of every mark in force (for the health page and tests); expired ones dropped."""
        return self._availability.snapshot()

    def mark_of(self, member_id: str) -> Mark | None:
        return self._availability.mark_of(member_id)

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

    def _enqueue_state(
        self, topic: str, payload: bytes, retain: bool
    ) -> None:  # the Publish signature
        if not retain:
            self._enqueue(topic, payload)
            return
        if len(self._state) == self._state.maxlen:
            self.dropped += 1
        self._state.append((topic, payload))
        self._wakeup.set()

    def _on_availability(self, topic: str, payload: bytes) -> None:
        self._availability.on_message(topic, payload)

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
            for channel in self._channels:
                for topic_filter in channel.filters:
                    await client.subscribe(topic_filter, qos=QOS)
                channel.on_connected()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._pump(client))
                tasks.create_task(self._listen(client))
                for channel in self._channels:
                    tasks.create_task(channel.maintain())
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
            while self._state or self._pending:
                # Retained state first: a busy claim must not wait behind a backlog of events.
                queue, retain = (self._state, True) if self._state else (self._pending, False)
                item = queue[0]
                await client.publish(item[0], item[1], qos=QOS, retain=retain)
                _raise_if_cancelled()
                # Only pop what was sent: if the queue overflowed meanwhile, the head moved on.
                if queue and queue[0] is item:
                    queue.popleft()
                if not retain:
                    self.published += 1
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _listen(self, client: aiomqtt.Client) -> None:
        # Also the connection's watchman: it raises MqttError when the broker goes away, which
        # ends the session (and wakes a publish that would otherwise wait for its PUBACK).
        async for message in client.messages:
            topic = message.topic.value
            payload = as_bytes(message.payload)
            if topic == self.command_topic:
                await self._on_command(topic, payload)
                continue
            for channel in self._channels:
                if channel.wants(topic):
                    channel.on_message(topic, payload)
                    break

    async def _on_command(self, topic: str, payload: bytes) -> None:
        """Carry out a command and answer it on the response topic, whatever happens."""
        assert self._commands is not None
        try:
            answer = await self._commands(topic, payload)
        except RejectedPayload as rejected:
            self._rejections(rejected.reason, len(payload))
            answer = {"ok": False, "request_id": None, "reason": str(rejected)}
        except Exception as error:  # a bug must not end the session: answer and log it
            log.exception("bus_command_failed")
            answer = {"ok": False, "request_id": None, "reason": f"internal error: {error!r}"[:200]}
        else:
            if answer.get("ok") is False:
                self._rejections("refused_command", len(payload))
        answer = {**answer, "node": self.node_id}
        self._enqueue(self.response_topic, json.dumps(answer, ensure_ascii=False).encode())


def _raise_if_cancelled() -> None:
    """Honour a cancellation that was swallowed: on Python 3.11, ``asyncio.wait_for`` (inside
    aiomqtt's publish) loses one that lands as the PUBACK arrives, and the pump would wait on
    for ever, holding up the session's end. Only in a task of our own that nothing uncancels
    (3.11's TaskGroup leaves its parent's count raised after a child fails)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
