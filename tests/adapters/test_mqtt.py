"""The MQTT bus against a real mosquitto on loopback: presence, events, availability, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from callrouter import __version__
from callrouter.adapters.mqtt import (
    MAX_AVAILABILITY_MARKS,
    MqttBus,
    RejectedPayload,
    event_payload,
    event_type_name,
    parse_availability,
)
from callrouter.core import domain as d
from tests.adapters.mosquitto_broker import MosquittoBroker, free_port

WAIT = 15.0  # upper bound on any one wait; loopback normally answers in milliseconds
PREFIX = "cr-test"
CALLER = "07700900123"
NHS_NUMBER = "9434765919"


def offered(call_id: str = "c1", caller: str = CALLER) -> d.CallOffered:
    return d.CallOffered(call_id, 1.0, "north", caller, "Riverside Surgery", "Dr Jane Smith")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    server = MosquittoBroker(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_bus(port: int, **kwargs: object) -> MqttBus:
    options: dict[str, object] = {"backoff_initial": 0.05, "backoff_max": 0.2, "timeout": 5.0}
    options.update(kwargs)
    return MqttBus("127.0.0.1", port, PREFIX, "node-a", **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(bus: MqttBus) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(bus.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def next_message(
    client: aiomqtt.Client,
    match: Callable[[aiomqtt.Message], bool] = lambda _m: True,
    timeout: float = WAIT,
) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            if match(message):
                return message
    raise AssertionError("the message stream ended")


def body(message: aiomqtt.Message) -> dict[str, object]:
    assert isinstance(message.payload, bytes)
    decoded = json.loads(message.payload)
    assert isinstance(decoded, dict)
    return decoded


def state_is(state: str) -> Callable[[aiomqtt.Message], bool]:
    return lambda message: body(message).get("state") == state


def observer(port: int) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, timeout=5.0)


class TestPayloads:
    """What the bus may say: topics without names, masked callers, no NHS numbers."""

    def test_event_type_names_are_snake_case(self) -> None:
        assert event_type_name(offered()) == "call_offered"
        assert event_type_name(d.NhsNumberCaptured("c1", 1.0, NHS_NUMBER)) == "nhs_number_captured"

    def test_caller_masked_and_clinician_name_left_out(self) -> None:
        payload = event_payload(offered(), "node-a", 7)
        assert payload["caller"] == "********123"
        assert payload["clinician_known"] is True
        assert "clinician" not in payload
        assert payload["type"] == "call_offered"
        assert payload["seq"] == 7
        assert "Jane" not in json.dumps(payload)

    def test_nhs_number_and_contact_uri_never_published(self) -> None:
        captured = event_payload(d.NhsNumberCaptured("c1", 1.0, NHS_NUMBER), "n", 1)
        leg = d.LegStarted("c1", 1.0, "l1", "dr-a", "sip:07700900999@pbx", "local", "rota")
        assert NHS_NUMBER not in json.dumps(captured)
        assert "uri" not in event_payload(leg, "n", 2)
        assert event_payload(leg, "n", 2)["member_id"] == "dr-a"

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (b"available", True),
            (b" Unavailable\n", False),
            (b'{"available": false}', False),
            (b'{"available": true}', True),
            (b"", None),
        ],
    )
    def test_availability_payloads(self, raw: bytes, expected: bool | None) -> None:
        assert parse_availability(raw) is expected

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"yes", "bad_shape"),
            (b'{"available": "no"}', "bad_shape"),
            (b'{"available": true, "x": 1}', "bad_shape"),
            (b"[1]", "bad_shape"),
            (b"\xff", "not_utf8"),
            (b"{" + b"[" * 200, "bad_json"),
            (b"[" * 100_000, "too_large"),
            (b'{"available": ' + b"[" * 100 + b"]" * 100 + b"}", "bad_shape"),
        ],
    )
    def test_unknown_availability_payloads_rejected(self, raw: bytes, reason: str) -> None:
        with pytest.raises(RejectedPayload) as caught:
            parse_availability(raw)
        assert caught.value.reason == reason

    def test_nesting_under_the_size_cap_is_a_shape_error(self) -> None:
        # The size cap keeps nesting far below the parser's recursion limit.
        raw = b"{\"a\":" * 40 + b"1" + b"}" * 40
        assert len(raw) <= 256
        with pytest.raises(RejectedPayload, match="bad_shape"):
            parse_availability(raw)

    def test_names_with_topic_syntax_rejected(self) -> None:
        with pytest.raises(ValueError, match="node id"):
            MqttBus("127.0.0.1", 1, PREFIX, "node/+")
        with pytest.raises(ValueError, match="prefix"):
            MqttBus("127.0.0.1", 1, "a/#", "n")

    def test_full_queue_drops_oldest_and_counts(self) -> None:
        bus = MqttBus("127.0.0.1", 1, PREFIX, "n", queue_size=3)
        for index in range(5):
            bus.publish_event(offered(f"c{index}"))
        assert (bus.pending, bus.dropped) == (3, 2)
        assert "DISCONNECTED" in repr(bus)
        assert bus.is_available("anyone")


class TestNodeStatus:
    """The node's retained presence: online on connect, offline on a clean stop."""

    def test_retained_online_seen_by_a_second_client(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port)
            async with running(bus):
                await wait_until(lambda: bus.connected)
                async with observer(broker.port) as watcher:
                    await watcher.subscribe(bus.status_topic, qos=1)
                    message = await next_message(watcher)
            status = body(message)
            assert message.retain
            assert status["state"] == "online"
            assert status["version"] == __version__
            assert isinstance(status["started_at"], str)
            assert status["started_at"].endswith("+00:00")

        asyncio.run(scenario())

    def test_clean_stop_publishes_offline(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port)
            async with observer(broker.port) as watcher:
                await watcher.subscribe(bus.status_topic, qos=1)
                async with running(bus):
                    await next_message(watcher, state_is("online"))
                stopped = await next_message(watcher, state_is("offline"))
            assert body(stopped)["reason"] == "stopped"
            assert not bus.connected

        asyncio.run(scenario())


class TestEvents:
    """Domain events reach subscribers, in order, with nothing identifying in them."""

    def test_events_arrive_masked(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port)
            async with observer(broker.port) as watcher, running(bus):
                await watcher.subscribe(f"{PREFIX}/events/#", qos=1)
                await wait_until(lambda: bus.connected)
                bus.publish_event(offered())
                bus.publish_event(d.NhsNumberCaptured("c1", 2.0, NHS_NUMBER))
                first = await next_message(watcher)
                second = await next_message(watcher)
            assert first.topic.value == f"{PREFIX}/events/call_offered"
            assert second.topic.value == f"{PREFIX}/events/nhs_number_captured"
            assert body(first)["caller"] == "********123"
            for message in (first, second):
                assert isinstance(message.payload, bytes)
                assert CALLER.encode() not in message.payload
                assert NHS_NUMBER.encode() not in message.payload
                assert CALLER not in message.topic.value
            assert body(second)["call_id"] == "c1"
            assert bus.published == 2

        asyncio.run(scenario())

    def test_overflow_while_away_keeps_the_newest(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port, queue_size=3)
            for index in range(5):  # before any connection: the broker is "away"
                bus.publish_event(offered(f"c{index}"))
            async with observer(broker.port) as watcher:
                await watcher.subscribe(f"{PREFIX}/events/#", qos=1)
                async with running(bus):
                    received = [body(await next_message(watcher)) for _ in range(3)]
            assert [m["call_id"] for m in received] == ["c2", "c3", "c4"]
            assert [m["seq"] for m in received] == [3, 4, 5]
            assert bus.dropped == 2

        asyncio.run(scenario())


class TestAvailability:
    """Retained availability marks flip is_available; junk and clears behave."""

    def test_marks_flip_availability(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port)
            topic = f"{PREFIX}/availability/dr-a"
            async with observer(broker.port) as rota_app:
                # A mark retained before the engine starts is honoured on connect.
                await rota_app.publish(topic, "unavailable", qos=1, retain=True)
                async with running(bus):
                    await wait_until(lambda: not bus.is_available("dr-a"))
                    assert bus.is_available("dr-b")
                    await rota_app.publish(topic, '{"available": true}', qos=1, retain=True)
                    await wait_until(lambda: bus.is_available("dr-a"))
                    await rota_app.publish(topic, "unavailable", qos=1, retain=True)
                    await wait_until(lambda: not bus.is_available("dr-a"))
                    await rota_app.publish(topic, "maybe", qos=1, retain=True)  # ignored
                    await rota_app.publish(f"{PREFIX}/availability/dr-c", "unavailable", qos=1)
                    await wait_until(lambda: not bus.is_available("dr-c"))
                    assert not bus.is_available("dr-a")
                    await rota_app.publish(topic, b"", qos=1, retain=True)  # cleared
                    await wait_until(lambda: "dr-a" not in bus.availability())
                    assert bus.is_available("dr-a")

        asyncio.run(scenario())


class RecordingObserver:
    """Our BusObserver port, recording what operators would see."""

    def __init__(self) -> None:
        self.states: list[bool] = []
        self.rejected: list[str] = []

    def mqtt_connected(self, connected: bool) -> None:  # the port's signature
        self.states.append(connected)

    def mqtt_payload_rejected(self, reason: str) -> None:
        self.rejected.append(reason)


class TestHostilePayloads:
    """Nothing published on the availability topics can stop the bus or grow it without bound."""

    def test_json_bomb_and_junk_are_counted_and_the_bus_keeps_working(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            seen = RecordingObserver()
            bus = make_bus(broker.port, observer=seen)
            base = f"{PREFIX}/availability"
            async with observer(broker.port) as attacker, running(bus) as task:
                await wait_until(lambda: bus.connected)
                await attacker.publish(f"{base}/dr-a", b"[" * 100_000, qos=1)
                await attacker.publish(f"{base}/dr-a", b'{"available":' + b"[" * 120, qos=1)
                await attacker.publish(f"{base}/dr-a", b"\xfe\xff", qos=1)
                await attacker.publish(f"{base}/dr a", b"unavailable", qos=1)
                # The bus is still listening: a good mark after the junk is applied.
                await attacker.publish(f"{base}/dr-a", b"unavailable", qos=1)
                await wait_until(lambda: not bus.is_available("dr-a"))
                assert not task.done()
                assert bus.connected
                assert bus.connections == 1  # never dropped the session
            assert sorted(seen.rejected) == ["bad_json", "bad_topic", "not_utf8", "too_large"]
            assert bus.rejected == {"too_large": 1, "bad_json": 1, "not_utf8": 1, "bad_topic": 1}
            assert seen.states[0] is True
            assert seen.states[-1] is False  # cancelled: reported disconnected

        asyncio.run(scenario())

    def test_invented_member_ids_are_capped(self) -> None:
        bus = make_bus(1)
        for n in range(MAX_AVAILABILITY_MARKS + 5):
            bus._on_availability(f"{PREFIX}/availability/m{n}", b"unavailable")
        assert len(bus.availability()) == MAX_AVAILABILITY_MARKS
        assert bus.rejected == {"too_many_members": 5}
        # A member already known can still change state at the cap.
        bus._on_availability(f"{PREFIX}/availability/m0", b"available")
        assert bus.is_available("m0")


class TestReconnect:
    """A broker that dies and comes back on the same port gets the node and its events again."""

    def test_broker_restart(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            bus = make_bus(broker.port)
            async with running(bus):
                await wait_until(lambda: bus.connected)
                broker.kill()
                await wait_until(lambda: not bus.connected)
                bus.publish_event(offered("while-away"))
                assert bus.pending == 1
                broker.start()
                await wait_until(lambda: bus.connections == 2 and bus.pending == 0)
                assert bus.published == 1  # the queued event, acknowledged by the new broker
                async with observer(broker.port) as watcher:
                    # persistence is off, so this retained status is the reconnect's own.
                    await watcher.subscribe(bus.status_topic, qos=1)
                    status = await next_message(watcher)
                    await watcher.subscribe(f"{PREFIX}/events/#", qos=1)
                    bus.publish_event(offered("after"))
                    event = await next_message(watcher)
            assert body(status)["state"] == "online"
            assert body(event)["call_id"] == "after"
            assert broker.starts == 2

        asyncio.run(scenario())


CHILD = """
import asyncio, sys
from callrouter.adapters.mqtt import MqttBus
asyncio.run(MqttBus("127.0.0.1", int(sys.argv[1]), sys.argv[2], "node-child").run())
"""


class TestLastWill:
    """A node that dies without a word is reported offline by the broker."""

    def test_sigkilled_node_goes_offline(self, broker: MosquittoBroker) -> None:
        async def scenario(child: subprocess.Popen[bytes]) -> dict[str, object]:
            topic = f"{PREFIX}/node/node-child/status"
            async with observer(broker.port) as watcher:
                await watcher.subscribe(topic, qos=1)
                await next_message(watcher, state_is("online"))
                os.kill(child.pid, signal.SIGKILL)
                await next_message(watcher, state_is("offline"))
            async with observer(broker.port) as late_comer:  # the will is retained too
                await late_comer.subscribe(topic, qos=1)
                retained = await next_message(late_comer)
                assert retained.retain
                return body(retained)

        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(broker.port), PREFIX],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            will = asyncio.run(scenario(child))
        finally:
            child.kill()
            child.wait(timeout=10)
        assert will["reason"] == "lost"
        assert will["node"] == "node-child"
        assert child.returncode == -signal.SIGKILL


class TestNoBroker:
    """With nothing listening the bus keeps trying and keeps queueing, and still stops cleanly."""

    def test_retries_without_raising(self) -> None:
        async def scenario() -> MqttBus:
            bus = make_bus(free_port())
            async with running(bus) as task:
                bus.publish_event(offered())
                await asyncio.sleep(0.3)  # several refused attempts
                assert not task.done()
            return bus

        bus = asyncio.run(scenario())
        assert (bus.connections, bus.pending, bus.connected) == (0, 1, False)
