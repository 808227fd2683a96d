"""The engine with a real MQTT bus under attack or gone dead (issue 9): a JSON bomb on an
availability topic is refused and counted, the bus keeps working, and SIGTERM still exits 0 in
the drain time; a broker that hangs never keeps the engine from stopping."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.adapters.mosquitto_broker import MosquittoBroker, running_broker

from .conftest import E2E, member, needs_tools
from .running_engine import RunningEngine
from .tree import MQTT_PREFIX, TreeSpec

pytestmark = [needs_tools, pytest.mark.timeout(120)]

DRAIN_SECONDS = 1.0  # what running_engine passes as --drain-seconds
# Exit after SIGTERM may take the drain, the hang-up grace and the bounded close of each
# adapter; a hung broker costs at most its own close step (app.CLOSE_STEP_SECONDS).
STOP_BOUND = 14.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path) as server:
        yield server


def publish(port: int, *messages: tuple[str, bytes]) -> None:
    async def send() -> None:
        async with aiomqtt.Client("127.0.0.1", port, identifier="e2e-attacker") as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)

    asyncio.run(send())


def wait_for_log(
    engine: RunningEngine, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in engine.log_events():
            if match(event):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no such log line within {timeout}s:\n{engine.log()}")


def sigterm_and_time(engine: RunningEngine) -> tuple[int, float]:
    process = engine.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    return code, time.monotonic() - started


def start_with_bus(e2e: E2E, broker: MosquittoBroker) -> RunningEngine:
    engine = e2e.start(TreeSpec(members=(member("dr-a"),), mqtt_port=broker.port))
    wait_for_log(engine, lambda e: e.get("event") == "bus_connected")
    return engine


class TestHostileBusMessage:
    """100,000 '[' on an availability topic once killed the bus task and then blocked SIGTERM."""

    def test_bomb_is_refused_counted_and_the_bus_lives_on(
        self, e2e: E2E, broker: MosquittoBroker
    ) -> None:
        engine = start_with_bus(e2e, broker)
        base = f"{MQTT_PREFIX}/availability"
        publish(
            broker.port,
            (f"{base}/dr-a", b"[" * 100_000),
            (f"{base}/dr-a", b'{"available": ' + b"[" * 150),
            (f"{base}/dr-a", b"unavailable"),
        )
        mark = wait_for_log(engine, lambda e: e.get("event") == "bus_availability")
        assert mark["member_id"] == "dr-a"
        assert mark["available"] is False
        rejected = [e for e in engine.log_events() if e.get("event") == "bus_availability_rejected"]
        assert sorted(e["reason"] for e in rejected) == ["bad_json", "too_large"]
        scrape = engine.scrape()
        assert 'callrouter_mqtt_payloads_rejected_total{reason="too_large"} 1.0' in scrape
        assert 'callrouter_mqtt_payloads_rejected_total{reason="bad_json"} 1.0' in scrape
        assert "callrouter_mqtt_connected 1.0" in scrape
        assert not any(e.get("event") == "bus_session_failed" for e in engine.log_events())

        code, took = sigterm_and_time(engine)
        print(f"SIGTERM to exit after the bomb: {took:.2f}s")  # the closing note's figure (-s)
        assert code == 0, engine.log()
        assert took < STOP_BOUND, f"took {took:.1f}s to stop"
        events = [e.get("event") for e in engine.log_events()]
        assert "close_failed" not in events
        assert events[-1] == "stopped"


class TestDeadBroker:
    """A broker that stops answering (SIGSTOP: the socket stays open, nothing replies)."""

    def test_sigterm_still_stops_the_engine(self, e2e: E2E, broker: MosquittoBroker) -> None:
        engine = start_with_bus(e2e, broker)
        assert broker.process is not None
        os.kill(broker.process.pid, signal.SIGSTOP)
        code, took = sigterm_and_time(engine)
        print(f"SIGTERM to exit with a frozen broker: {took:.2f}s")
        assert code == 0, engine.log()
        assert took < STOP_BOUND, f"took {took:.1f}s to stop"
        events = [e.get("event") for e in engine.log_events()]
        assert events[-1] == "stopped"  # the records were closed after the bus was given up
