"""One call's task in the engine: a failure inside a call still ends it (legs hung up, records
closed in a real SQLite store, the consultant free), and its timers run on the engine's clock
(a hand-advanced fake: nothing here sleeps)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from callrouter.adapters.store_sqlite import CallStore
from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core.callflow import PlanSource
from callrouter.core.plan import HuntPlan
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.engine_ports import EventSink
from callrouter.sip import protocol as p
from tests.core.harness import T0, Harness, dialplan
from tests.engine.fake_clock import FakeClock
from tests.engine.test_engine import FakeSip, Plans, Prompts, Recorder, incoming, settle

RING_SECONDS = 18.0  # the harness dialplan's linear hunt


class WhisperFails(Prompts):
    """Prompt files, until ``broken``: then making one raises, as a full disk would."""

    broken = False

    def path_for(self, prompt: c.Prompt) -> str:
        if self.broken:
            raise OSError(28, "No space left on device")
        return super().path_for(prompt)


class StoreFailsOnce:
    """A sink that fails writing the first LegStarted, then records everything."""

    def __init__(self, inner: Recorder) -> None:
        self.inner = inner
        self.failed = False

    async def handle(self, event: d.DomainEvent) -> None:
        if isinstance(event, d.LegStarted) and not self.failed:
            self.failed = True
            raise OSError(5, "I/O error")
        await self.inner.handle(event)


Scenario = Callable[[FakeSip, Engine], Awaitable[None]]


async def serve(
    scenario: Scenario,
    *,
    sink: EventSink,
    prompts: Prompts | None = None,
    clock: FakeClock | None = None,
    plans: PlanSource | None = None,
) -> tuple[FakeSip, EnginePresence]:
    h = Harness(dialplan())
    sip, presence = FakeSip(), EnginePresence()
    env = dataclasses.replace(h.env, presence=presence)
    engine = Engine(
        sip=sip,
        dialplans=Plans(h.dialplan),
        env=env if plans is None else dataclasses.replace(env, plans=plans),
        presence=presence,
        prompts=Prompts() if prompts is None else prompts,
        sink=sink,
        limits=EngineLimits(max_concurrent_calls=5, trunk_allows=lambda _host: True),
        clock=FakeClock(wall=T0) if clock is None else clock,
    )
    serving = asyncio.create_task(engine.serve())
    await scenario(sip, engine)
    await sip.events.put(None)
    await asyncio.wait_for(serving, 5)
    return sip, presence


def run(
    scenario: Scenario,
    *,
    sink: EventSink,
    prompts: Prompts | None = None,
    clock: FakeClock | None = None,
    plans: PlanSource | None = None,
) -> tuple[FakeSip, EnginePresence]:
    return asyncio.run(serve(scenario, sink=sink, prompts=prompts, clock=clock, plans=plans))


def dials(sip: FakeSip) -> list[p.Dial]:
    return [cmd for cmd in sip.of(p.Dial) if isinstance(cmd, p.Dial)]


async def until(done: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for writes to a real store to land; not a speed assertion."""
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 5 s: {what}")


async def hunt(sip: FakeSip, gp: str) -> p.Dial:
    """A GP calls and chooses cardiology: the first consultant's leg is dialled."""
    before = len(dials(sip))
    await sip.events.put(incoming(gp))
    await until(lambda: p.Answer(gp) in [cmd for cmd, _ in sip.sent], "answered")
    await sip.events.put(p.Digit(gp, "1", "rfc4733"))
    await until(lambda: len(dials(sip)) > before, "a consultant dialled")
    await settle()
    return dials(sip)[-1]


class TestFailureEndsTheCall:
    """An exception inside a call ends it as interrupted, exactly as a worker's death would."""

    def test_a_step_that_raises_closes_the_records_and_frees_the_consultant(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "records.sqlite3"
        prompts = WhisperFails()

        async def scenario(sip: FakeSip, engine: Engine) -> None:
            first = await hunt(sip, "in-1")
            assert not engine.presence.is_available("a1")
            prompts.broken = True  # the whisper for the consultant cannot be made
            await sip.events.put(p.Answered(first.leg))
            await until(lambda: engine.active_calls == 0, "the failed call ended")
            assert engine.presence.is_available("a1")
            prompts.broken = False
            second = await hunt(sip, "in-2")  # the next GP's hunt rings a1 again
            assert second.uri == first.uri
            await sip.events.put(p.HungUp("in-2", 0))
            await until(lambda: engine.active_calls == 0, "the second call ended")

        async def with_store() -> tuple[FakeSip, EnginePresence]:
            async with await CallStore.open(db) as store:
                return await serve(scenario, sink=store, prompts=prompts)

        sip, presence = asyncio.run(with_store())
        first = dials(sip)[0]
        assert p.Hangup("in-1", 500) in [cmd for cmd, _ in sip.sent]
        assert p.Hangup(first.leg, 500) in [cmd for cmd, _ in sip.sent]
        assert presence.live == {}
        with sqlite3.connect(db) as con:
            calls = con.execute("SELECT end_reason, ended_at FROM calls ORDER BY offered_at")
            rows = calls.fetchall()
            legs = con.execute("SELECT member_id, result, ended_at FROM legs ORDER BY started_at")
            leg_rows = legs.fetchall()
        assert [reason for reason, _ in rows] == ["interrupted", "gp_hangup_hunt"]
        assert all(ended is not None for _, ended in rows)  # no record left open
        assert [(m, r) for m, r, _ in leg_rows] == [("a1", "cancelled"), ("a1", "cancelled")]
        assert all(ended is not None for *_, ended in leg_rows)

    def test_a_failed_write_still_ends_the_call_once(self) -> None:
        recorder = Recorder()
        sink = StoreFailsOnce(recorder)

        async def scenario(sip: FakeSip, engine: Engine) -> None:
            await hunt(sip, "in-1")  # LegStarted cannot be written: the call fails
            await settle()
            assert engine.active_calls == 0
            assert engine.presence.is_available("a1")

        sip, _ = run(scenario, sink=sink)
        ends = [ev for ev in recorder.events if isinstance(ev, d.CallEnded)]
        assert [end.reason for end in ends] == [d.EndReason.INTERRUPTED]
        [leg_end] = [ev for ev in recorder.events if isinstance(ev, d.LegEnded)]
        assert (leg_end.member_id, leg_end.result) == ("a1", d.LegResult.CANCELLED)
        assert {cmd.leg for cmd in sip.of(p.Hangup)} == {"in-1", dials(sip)[0].leg}  # type: ignore[attr-defined]


    def test_an_exception_in_the_core_ends_the_call_after_its_choice(self) -> None:
        """The rota cannot be resolved (a bug, a broken source): the GP who chose a specialty
        is hung up and the call recorded as interrupted. The facts of the step that raised
        (its SpecialtyChosen) are lost with it: the record has no specialty."""
        recorder = Recorder()

        class BrokenRota:
            def plan(self, area: str, specialty: str, now: float) -> HuntPlan:
                raise RuntimeError("rota source broken")

        async def scenario(sip: FakeSip, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.Digit("in-1", "1", "rfc4733"))
            await settle()
            assert engine.active_calls == 0

        sip, presence = run(scenario, sink=recorder, plans=BrokenRota())
        assert sip.of(p.Hangup) == [p.Hangup("in-1", 500)]
        end = recorder.events[-1]
        assert isinstance(end, d.CallEnded)
        assert (end.reason, end.specialty, end.connected) == (
            d.EndReason.INTERRUPTED,
            None,
            False,
        )
        assert presence.live == {}


class TestTimers:
    """Deadlines become timers on the engine's monotonic clock; records carry wall time."""

    def test_ring_time_runs_out_on_the_fake_clock(self) -> None:
        clock = FakeClock(wall=T0)
        recorder = Recorder()

        async def scenario(sip: FakeSip, engine: Engine) -> None:
            first = await hunt(sip, "in-1")
            clock.advance(RING_SECONDS - 0.5)
            await settle()
            assert sip.of(p.Hangup) == []  # not yet
            clock.advance(0.5)
            await settle()
            assert p.Hangup(first.leg, 0) in sip.of(p.Hangup)  # no answer: cancelled
            assert dials(sip)[-1].uri == "sip:a2@127.0.0.1"  # and the next one rung
            learned = engine.env.stats.get("a1")  # learning is fed from the LegEnded
            assert learned is not None
            assert (learned.rung, learned.last_missed) == (1.0, T0 + RING_SECONDS)
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        run(scenario, sink=recorder, clock=clock)
        [ended, _second] = [ev for ev in recorder.events if isinstance(ev, d.LegEnded)]
        assert ended.result is d.LegResult.NO_ANSWER
        assert ended.ring_seconds == RING_SECONDS
        assert clock.armed == []  # the call's timer went with it

    def test_a_stepped_wall_clock_moves_no_deadline(self) -> None:
        clock = FakeClock(wall=T0)
        recorder = Recorder()

        async def scenario(sip: FakeSip, engine: Engine) -> None:
            first = await hunt(sip, "in-1")
            clock.step_wall(+3600.0)  # NTP steps the wall clock an hour on
            await settle()
            assert sip.of(p.Hangup) == []  # the ring time is measured, not read off the wall
            clock.advance(RING_SECONDS)
            await settle()
            assert p.Hangup(first.leg, 0) in sip.of(p.Hangup)
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        run(scenario, sink=recorder, clock=clock)
        offered = recorder.events[0]
        assert isinstance(offered, d.CallOffered)
        assert offered.at == T0  # records: the wall time when the call came in
        [ended, *_] = [ev for ev in recorder.events if isinstance(ev, d.LegEnded)]
        assert ended.at == T0 + RING_SECONDS  # ... advanced by the call's own measured time
