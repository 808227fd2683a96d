"""Busy state shared between engine nodes over a real mosquitto on loopback (adapters.mqtt_busy):
a claim of one node makes the member busy for another, a release frees them, a race is settled
the same way on both nodes, and a dead node's claims do not stick."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from callrouter.adapters.mqtt import MqttBus
from callrouter.adapters.mqtt_busy import BusyShare, claim_payload, parse_claim
from callrouter.adapters.mqtt_payloads import RejectedPayload
from callrouter.core.claims import Claim, Phase
from tests.adapters.mosquitto_broker import MosquittoBroker, running_broker

WAIT = 10.0
PREFIX = "busy-test"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path) as server:
        yield server


class Clock:
    """A wall clock the test can move forward."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def node(
    port: int,
    name: str,
    clock: Callable[[], float],
    ttl: float = 60.0,
    on_race_lost: Callable[[], None] | None = None,
) -> MqttBus:
    share = BusyShare(PREFIX, name, ttl=ttl, clock=clock, on_race_lost=on_race_lost)
    return MqttBus(
        "127.0.0.1",
        port,
        PREFIX,
        name,
        backoff_initial=0.05,
        backoff_max=0.2,
        timeout=5.0,
        channels=[share],
    )


def share_of(bus: MqttBus) -> BusyShare:
    found = [c for c in bus._channels if isinstance(c, BusyShare)]  # the test's own wiring
    return found[0]


@contextlib.asynccontextmanager
async def running(*buses: MqttBus) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(bus.run()) for bus in buses]
    try:
        await wait_until(lambda: all(bus.connected for bus in buses))
        yield
    finally:
        for task in tasks:
            task.cancel()
        done, _ = await asyncio.wait(tasks, timeout=WAIT)
        assert len(done) == len(tasks), "a bus did not stop when cancelled"


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def subscribed(bus: MqttBus, raw: aiomqtt.Client, clock: Callable[[], float]) -> None:
    """Until ``bus`` hears claims (``connected`` comes before its subscriptions are in place)."""
    probe = Claim("node-probe", "dr-probe", Phase.RINGING, clock(), clock() + 60)
    topic = f"{PREFIX}/busy/node-probe/dr-probe"  # retained: heard however late it subscribes
    await raw.publish(topic, claim_payload(probe), qos=1, retain=True)
    await wait_until(lambda: share_of(bus).busy_elsewhere("dr-probe"))


@contextlib.asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", port, identifier="busy-test-raw") as client:
        yield client


class TestPayload:
    """What goes on the wire, and what is refused."""

    def test_a_claim_round_trips(self) -> None:
        claim = Claim("a", "m", Phase.ANSWERED, 12.5, 72.5)
        assert parse_claim("a", "m", claim_payload(claim)) == claim
        assert parse_claim("a", "m", b"") is None

    @pytest.mark.parametrize(
        "payload",
        [
            b'{"phase": "ringing", "at": 1}',
            b'{"phase": "dancing", "at": 1, "until": 2}',
            b'{"phase": "ringing", "at": true, "until": 2}',
            b'{"phase": "ringing", "at": "1", "until": 2}',
            b'{"phase": "ringing", "at": 1, "until": 2, "extra": 0}',
            b"ringing",
        ],
    )
    def test_other_shapes_are_refused(self, payload: bytes) -> None:
        with pytest.raises(RejectedPayload, match="bad_shape"):
            parse_claim("a", "m", payload)

    def test_nan_and_huge_payloads_are_refused(self) -> None:
        with pytest.raises(RejectedPayload, match="bad_shape"):
            parse_claim("a", "m", b'{"phase": "ringing", "at": NaN, "until": 2}')
        with pytest.raises(RejectedPayload, match="too_large"):
            parse_claim("a", "m", b"{" + b" " * 400 + b"}")


class TestSharing:
    """Two nodes on one broker."""

    def test_a_claim_on_one_node_is_busy_on_the_other_until_released(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            clock = Clock()
            a, b = node(broker.port, "node-a", clock), node(broker.port, "node-b", clock)
            async with running(a, b):
                assert not share_of(a).hold("dr-x", Phase.RINGING)
                await wait_until(lambda: share_of(b).busy_elsewhere("dr-x"))
                assert not share_of(a).busy_elsewhere("dr-x")  # its own claim is no obstacle
                share_of(a).hold("dr-x", Phase.TALKING)
                share_of(a).release("dr-x")
                await wait_until(lambda: not share_of(b).busy_elsewhere("dr-x"))
                assert share_of(b).claims_elsewhere() == {}

        asyncio.run(scenario())

    def test_a_node_that_connects_later_sees_the_claims_in_force(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            clock = Clock()
            a, b = node(broker.port, "node-a", clock), node(broker.port, "node-b", clock)
            async with running(a):
                share_of(a).hold("dr-x", Phase.TALKING)
                await wait_until(lambda: a.pending == 0)
                async with running(b):  # retained: delivered on subscribing
                    await wait_until(lambda: share_of(b).busy_elsewhere("dr-x"))
                    assert share_of(b).claims_elsewhere() == {"dr-x": ["node-a"]}

        asyncio.run(scenario())

    def test_a_race_is_lost_by_exactly_one_node_the_later_claim(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            clock = Clock()
            races_lost: list[str] = []
            a = node(broker.port, "node-a", clock, on_race_lost=lambda: races_lost.append("a"))
            b = node(broker.port, "node-b", clock, on_race_lost=lambda: races_lost.append("b"))
            lost: dict[str, list[str]] = {"node-a": [], "node-b": []}
            share_of(a).on_yield = lost["node-a"].append
            share_of(b).on_yield = lost["node-b"].append
            async with running(a, b):
                # Both claim before either hears of the other (no await in between).
                assert not share_of(b).hold("dr-x", Phase.RINGING)
                clock.now += 0.003
                assert not share_of(a).hold("dr-x", Phase.RINGING)
                await wait_until(lambda: bool(lost["node-a"] or lost["node-b"]))
                await wait_until(
                    lambda: (
                        share_of(a).busy_elsewhere("dr-x") and share_of(b).busy_elsewhere("dr-x")
                    )
                )
                share_of(b).on_connected()  # b republishes its claim: no second verdict
                await asyncio.sleep(0.1)  # room for a wrong or repeated verdict to arrive
            assert lost == {"node-a": ["dr-x"], "node-b": []}  # b claimed first and keeps it
            assert (share_of(a).yielded, share_of(b).yielded) == (1, 0)
            assert races_lost == ["a"]  # the metric's hook, once

        asyncio.run(scenario())

    def test_a_claim_already_beaten_is_given_up_at_once(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            clock = Clock()
            a, b = node(broker.port, "node-a", clock), node(broker.port, "node-b", clock)
            async with running(a, b):
                share_of(a).hold("dr-x", Phase.TALKING)
                await wait_until(lambda: share_of(b).busy_elsewhere("dr-x"))
                # b's hunt would skip dr-x; a leg started anyway (in the same instant) must yield
                assert share_of(b).hold("dr-x", Phase.RINGING)

        asyncio.run(scenario())


class TestNoStaleClaims:
    """A dead node, an expired claim or one left by an earlier run does not keep anyone busy."""

    def test_a_killed_nodes_claims_go_with_its_last_will(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            b = node(broker.port, "node-b", time.time)
            async with running(b):
                child = subprocess.Popen(  # node-a in a process of its own, killed -9 below
                    [sys.executable, "-c", CHILD, str(broker.port), PREFIX],
                    env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
                )
                try:
                    await wait_until(lambda: share_of(b).busy_elsewhere("dr-x"))
                    os.kill(child.pid, signal.SIGKILL)
                finally:
                    child.kill()
                    child.wait()
                await wait_until(lambda: not share_of(b).busy_elsewhere("dr-x"))
                assert share_of(b).claims_elsewhere() == {}

        asyncio.run(scenario())

    def test_an_unrefreshed_claim_expires_and_a_held_one_is_refreshed(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            clock = Clock()
            a = node(broker.port, "node-a", clock, ttl=0.6)
            b = node(broker.port, "node-b", clock, ttl=0.6)
            async with running(a, b), raw_client(broker.port) as raw:
                stale = Claim("node-z", "dr-z", Phase.TALKING, clock.now, clock.now + 0.6)
                await raw.publish(
                    f"{PREFIX}/busy/node-z/dr-z", claim_payload(stale), qos=1, retain=True
                )
                share_of(a).hold("dr-x", Phase.TALKING)
                await wait_until(lambda: share_of(b).claims_elsewhere().keys() == {"dr-x", "dr-z"})
                for _ in range(10):  # 2 s by the clock: a's refreshes keep dr-x busy
                    clock.now += 0.2
                    await asyncio.sleep(0.15)  # a refreshes every ttl/6 = 0.1 s
                assert share_of(b).busy_elsewhere("dr-x")
                assert not share_of(b).busy_elsewhere("dr-z")

        asyncio.run(scenario())

    def test_a_claim_left_by_an_earlier_run_of_this_node_is_cleared(
        self, broker: MosquittoBroker
    ) -> None:
        async def scenario() -> None:
            clock = Clock()
            topic = f"{PREFIX}/busy/node-a/dr-x"
            async with raw_client(broker.port) as raw:
                old = Claim("node-a", "dr-x", Phase.TALKING, clock.now, clock.now + 60)
                await raw.publish(topic, claim_payload(old), qos=1, retain=True)
                a = node(broker.port, "node-a", clock)
                async with running(a):
                    await wait_until(lambda: a.pending == 0)
                    await asyncio.sleep(0.2)
                await raw.subscribe(topic, qos=1)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):  # a retained claim would arrive at once
                        async for message in raw.messages:
                            pytest.fail(f"still retained: {message.payload!r}")

        asyncio.run(scenario())

    def test_hostile_claims_are_counted_and_the_bus_goes_on(self, broker: MosquittoBroker) -> None:
        async def scenario() -> None:
            clock = Clock()
            b = node(broker.port, "node-b", clock)
            async with running(b), raw_client(broker.port) as raw:
                await subscribed(b, raw, clock)
                await raw.publish(f"{PREFIX}/busy/node-a/dr-x", b"[" * 5000, qos=1)
                await raw.publish(f"{PREFIX}/busy/node-a/dr-x", b'{"phase": 1}', qos=1)
                await raw.publish(f"{PREFIX}/node/node-a/status", b'{"state": "?"}', qos=1)
                good = Claim("node-a", "dr-x", Phase.RINGING, clock.now, clock.now + 60)
                await raw.publish(f"{PREFIX}/busy/node-a/dr-x", claim_payload(good), qos=1)
                await wait_until(lambda: share_of(b).busy_elsewhere("dr-x"))
                assert b.rejected == {"too_large": 1, "bad_shape": 2}
                assert b.connections == 1

        asyncio.run(scenario())


CHILD = """
import asyncio, sys
from callrouter.adapters.mqtt import MqttBus
from callrouter.adapters.mqtt_busy import BusyShare
from callrouter.core.claims import Phase
share = BusyShare(sys.argv[2], "node-a")
share.hold("dr-x", Phase.TALKING)
asyncio.run(MqttBus("127.0.0.1", int(sys.argv[1]), sys.argv[2], "node-a", channels=[share]).run())
"""


def test_the_claim_payload_is_plain_json() -> None:
    claim = Claim("a", "m", Phase.TALKING, 1.5, 61.5)
    assert json.loads(claim_payload(claim)) == {"phase": "talking", "at": 1.5, "until": 61.5}
