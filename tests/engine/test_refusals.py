"""Refused calls: every one is counted (real Metrics), the log gets the first per (reason,
source network) and then one summary line per interval, on a hand-advanced clock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from callrouter.adapters.metrics import Metrics
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.refusal_log import RefusalLimiter
from callrouter.sip import protocol as p
from tests.core.harness import Harness, dialplan
from tests.engine.fake_clock import FakeClock
from tests.engine.test_engine import FakeSip, Plans, Prompts, Recorder, incoming, settle


def refused_count(metrics: Metrics, reason: str, status: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "callrouter_calls_refused_total" and sample.labels == {
                "reason": reason,
                "status": status,
            }:
                return sample.value
    raise AssertionError(f"no series for {reason} {status}")


Scenario = Callable[[FakeSip, FakeClock, Engine], Awaitable[None]]


def run(
    scenario: Scenario, *, max_calls: int = 5, slots: int = 3, interval: float = 10.0
) -> tuple[Metrics, list[dict[str, Any]]]:
    h = Harness(dialplan())
    sip, clock, metrics = FakeSip(slots), FakeClock(), Metrics("test")
    presence = EnginePresence()

    async def main() -> None:
        engine = Engine(
            sip=sip,
            dialplans=Plans(h.dialplan),
            env=dataclasses.replace(h.env, presence=presence),
            presence=presence,
            prompts=Prompts(),
            sink=Recorder(),
            limits=EngineLimits(
                max_concurrent_calls=max_calls, trunk_allows=lambda h: h.startswith("127.")
            ),
            clock=clock,
            refusals=metrics,
            refusal_log=RefusalLimiter(interval=interval),
        )
        serving = asyncio.create_task(engine.serve())
        await scenario(sip, clock, engine)
        await sip.events.put(None)
        await asyncio.wait_for(serving, 5)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(main())
    return metrics, [dict(entry) for entry in logs if "refused" in entry["event"]]


class TestCounted:
    """Each admission refusal is counted under its own bounded reason and status."""

    def test_every_reason(self) -> None:
        async def scenario(sip: FakeSip, clock: FakeClock, engine: Engine) -> None:
            await sip.events.put(incoming("a", source="192.0.2.7"))  # 403
            await sip.events.put(incoming("b", to="0999"))  # 404
            await sip.events.put(incoming("c"))  # taken: the one call allowed
            await sip.events.put(incoming("d"))  # 503 full
            await sip.events.put(p.Refused(486, "0123", "0208", "127.0.0.1"))  # pjsua's own
            await settle()
            sip.free = 0
            await sip.events.put(p.HungUp("c", 0))
            await settle()
            await sip.events.put(incoming("e"))  # 503: no free slot
            await settle()
            engine.stop_accepting()
            await sip.events.put(incoming("f"))  # 503: shutting down
            await settle()

        metrics, _ = run(scenario, max_calls=1)
        assert refused_count(metrics, "forbidden", "403") == 1
        assert refused_count(metrics, "unknown_number", "404") == 1
        assert refused_count(metrics, "full", "503") == 1
        assert refused_count(metrics, "no_slot", "503") == 1
        assert refused_count(metrics, "draining", "503") == 1
        assert refused_count(metrics, "worker_busy", "486") == 1


class TestRateLimitedLog:
    """A scan is counted in full but logged as first lines plus summaries."""

    def test_scan_from_one_network(self) -> None:
        async def scenario(sip: FakeSip, clock: FakeClock, engine: Engine) -> None:
            for n in range(100):  # 100 refusals in 1 s, rotating hosts inside one /24
                await sip.events.put(incoming(f"s{n}", source=f"192.0.2.{n % 250}"))
                await settle()
                clock.now += 0.01
            clock.now += 10  # the interval has passed; the next refusal brings the summary
            await sip.events.put(incoming("late", source="192.0.2.9"))
            await settle()

        metrics, logs = run(scenario)
        assert refused_count(metrics, "forbidden", "403") == 101
        firsts = [entry for entry in logs if entry["event"] == "call_refused"]
        assert len(firsts) == 1
        assert firsts[0]["network"] == "192.0.2.0/24"
        assert firsts[0]["source"] == "192.0.2.0"
        summaries = [entry for entry in logs if entry["event"] == "calls_refused_summary"]
        # 99 held in the first window; the late one opens a window flushed at shutdown.
        assert [s["refused"] for s in summaries] == [99, 1]
        assert summaries[0]["by_reason"] == {"forbidden": 99}
        assert summaries[0]["since"] == pytest.approx(1000.01)  # the first one held back
        assert len(logs) == 3

    def test_each_reason_and_network_logged_once(self) -> None:
        async def scenario(sip: FakeSip, clock: FakeClock, engine: Engine) -> None:
            for n in range(3):
                await sip.events.put(incoming(f"a{n}", source="192.0.2.7"))
                await sip.events.put(incoming(f"b{n}", source="198.51.100.7"))
                await sip.events.put(incoming(f"c{n}", to="0999"))
            await settle()

        metrics, logs = run(scenario)
        firsts = [(e["reason"], e["network"]) for e in logs if e["event"] == "call_refused"]
        assert firsts == [
            ("forbidden", "192.0.2.0/24"),
            ("forbidden", "198.51.100.0/24"),
            ("unknown_number", "127.0.0.0/24"),
        ]
        (summary,) = [e for e in logs if e["event"] == "calls_refused_summary"]
        assert summary["by_reason"] == {"forbidden": 4, "unknown_number": 2}
        assert refused_count(metrics, "forbidden", "403") == 6

    def test_summary_comes_on_its_own_when_the_scan_stops(self) -> None:
        """The engine's timer writes the summary; no later refusal or shutdown is needed."""
        seen: list[str] = []

        async def scenario(sip: FakeSip, clock: FakeClock, engine: Engine) -> None:
            for n in range(3):
                await sip.events.put(incoming(f"s{n}", source="192.0.2.7"))
            await settle()
            with structlog.testing.capture_logs() as inner:
                clock.advance(0.049)
                assert inner == []  # not due yet
                clock.advance(0.001)  # the timer was armed for the interval after the first
            seen.extend(entry["event"] for entry in inner)

        run(scenario, interval=0.05)
        assert seen == ["calls_refused_summary"]
