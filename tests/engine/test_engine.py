"""The engine against a fake of our own SIP port: admission, id mapping, commands, presence."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.settings.dialplan import Dialplan
from callrouter.sip import protocol as p
from tests.core.harness import GP_NUMBER, Harness, dialplan


class FakeSip:
    """Records commands; tests push worker events. Worker "w0" holds every leg."""

    def __init__(self, slots: int = 3) -> None:
        self.sent: list[tuple[p.Command, str | None]] = []
        self.events: asyncio.Queue[p.Event | None] = asyncio.Queue()
        self.free = slots
        self.reserved: list[str] = []

    def send(self, command: p.Command, *, near: str | None = None) -> None:
        self.sent.append((command, near))

    def free_for(self, gp_leg: str) -> int:
        return self.free

    def reserve(self, gp_leg: str) -> bool:
        if self.free < 1:
            return False
        self.reserved.append(gp_leg)
        return True

    async def next_event(self, timeout: float | None = None) -> p.Event:
        event = await self.events.get()
        if event is None:
            raise EOFError
        return event

    def of(self, kind: type) -> list[p.Command]:
        return [cmd for cmd, _ in self.sent if isinstance(cmd, kind)]


class Plans:
    def __init__(self, plan: Dialplan) -> None:
        self.plan = plan

    def dialplan_for(self, called: str) -> Dialplan | None:
        return self.plan if called in self.plan.numbers else None


@dataclass
class Recorder:
    events: list[d.DomainEvent] = field(default_factory=list)

    async def handle(self, event: d.DomainEvent) -> None:
        self.events.append(event)


class Prompts:
    def path_for(self, prompt: c.Prompt) -> str:
        return f"/prompts/{prompt.text[:12]}.wav"


def incoming(leg: str, source: str = "127.0.0.1", to: str = "02080000001") -> p.Incoming:
    return p.Incoming(leg, GP_NUMBER, "GP", to, source, 5060, f"sip-{leg}")


Scenario = Callable[[FakeSip, Recorder, Engine], Awaitable[None]]


@dataclass
class SlowRecorder(Recorder):
    """Records as a real store does: each event takes a few turns of the loop to write."""

    async def handle(self, event: d.DomainEvent) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        self.events.append(event)


def run_engine(
    scenario: Scenario, *, max_calls: int = 5, slots: int = 3, sink: Recorder | None = None
) -> tuple[FakeSip, Recorder]:
    h = Harness(dialplan())
    sip = FakeSip(slots)
    sink = Recorder() if sink is None else sink
    presence = EnginePresence()

    async def main() -> None:
        env = dataclasses.replace(h.env, presence=presence)
        engine = Engine(
            sip=sip,
            dialplans=Plans(h.dialplan),
            env=env,
            presence=presence,
            prompts=Prompts(),
            sink=sink,
            limits=EngineLimits(
                max_concurrent_calls=max_calls,
                trunk_allows=lambda host: host.startswith("127."),
            ),
        )
        serving = asyncio.create_task(engine.serve())
        await scenario(sip, sink, engine)
        await sip.events.put(None)
        await asyncio.wait_for(serving, 5)

    asyncio.run(main())
    return sip, sink


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class TestAdmission:
    """Calls the engine must not take get the right status and never a leg."""

    def test_disallowed_source_gets_403_and_no_leg(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1", source="192.0.2.7"))
            await settle()

        sip, sink = run_engine(scenario)
        assert [cmd for cmd, _ in sip.sent] == [p.Reject("in-1", 403, None, "source not allowed")]
        assert sink.events == []

    def test_unknown_number_gets_404(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1", to="0999"))
            await settle()

        sip, _ = run_engine(scenario)
        [reject] = sip.of(p.Reject)
        assert reject.status == 404  # type: ignore[attr-defined]

    def test_full_house_gets_503_with_retry_after(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await sip.events.put(incoming("in-2"))
            await settle()
            assert engine.active_calls == 1
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, _ = run_engine(scenario, max_calls=1)
        [reject] = sip.of(p.Reject)
        assert (reject.leg, reject.status, reject.retry_after) == ("in-2", 503, 30)  # type: ignore[attr-defined]

    def test_no_free_slot_gets_503(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()

        sip, _ = run_engine(scenario, slots=0)
        assert sip.of(p.Reject)[0].status == 503  # type: ignore[attr-defined]

    def test_each_admitted_gp_reserves_a_consultant_slot(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await sip.events.put(incoming("in-2", source="192.0.2.7"))  # refused: no reservation
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, _ = run_engine(scenario)
        assert sip.reserved == ["in-1"]

    def test_draining_engine_refuses(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            engine.stop_accepting()
            await sip.events.put(incoming("in-1"))
            await settle()

        sip, _ = run_engine(scenario)
        assert sip.of(p.Reject)[0].reason == "shutting down"  # type: ignore[attr-defined]


class TestCall:
    """A call through the engine: ids mapped both ways, commands in order, records kept."""

    def test_connected_call(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.Digit("in-1", "1", "rfc4733"))
            await settle()
            [dial] = sip.of(p.Dial)
            leg = dial.leg  # type: ignore[attr-defined]
            await sip.events.put(p.Ringing(leg, 180))
            await sip.events.put(p.Answered(leg))
            await settle()
            await sip.events.put(p.PlayDone(leg))
            await sip.events.put(p.Digit(leg, "1", "rfc4733"))
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, sink = run_engine(scenario)
        commands = [cmd for cmd, _ in sip.sent]
        assert isinstance(commands[0], p.Answer)
        assert isinstance(commands[1], p.Play)
        assert commands[1].files == ("/prompts/Welcome to t.wav",)
        [dial] = sip.of(p.Dial)
        assert dial.uri == "sip:a1@127.0.0.1"  # type: ignore[attr-defined]
        assert ("in-1" in [near for cmd, near in sip.sent if isinstance(cmd, p.Dial)])
        [bridge] = sip.of(p.Bridge)
        assert bridge == p.Bridge("in-1", dial.leg)  # type: ignore[attr-defined]
        assert p.Hangup(dial.leg, 0) in commands  # type: ignore[attr-defined]
        kinds = [type(ev).__name__ for ev in sink.events]
        assert kinds[:3] == ["CallOffered", "CallAnswered", "SpecialtyChosen"]
        assert "Connected" in kinds
        assert kinds[-1] == "CallEnded"

    def test_stale_play_done_after_stop_is_dropped(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.PlayDone("in-1"))  # greeting done → menu plays
            await settle()
            await sip.events.put(p.Digit("in-1", "9", "info"))  # barge-in: StopPlay, submenu
            await settle()
            await sip.events.put(p.PlayDone("in-1"))  # the submenu's end
            await sip.events.put(p.PlayDone("in-1"))  # a stale duplicate: must be dropped
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, sink = run_engine(scenario)
        assert len(sip.of(p.StopPlay)) == 1
        assert len(sip.of(p.Play)) == 3  # greeting, menu, submenu: nothing replayed
        assert sink.events[-1].reason is d.EndReason.GP_HANGUP_IVR  # type: ignore[union-attr]

    def test_member_on_a_call_is_skipped_by_the_next_call(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.Digit("in-1", "1", "info"))
            await settle()
            await sip.events.put(incoming("in-2"))
            await settle()
            await sip.events.put(p.Digit("in-2", "1", "info"))
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await sip.events.put(p.HungUp("in-2", 0))
            await settle()

        sip, _ = run_engine(scenario)
        dials = sip.of(p.Dial)
        assert [x.uri for x in dials] == ["sip:a1@127.0.0.1", "sip:a2@127.0.0.1"]  # type: ignore[attr-defined]

    def test_two_hunts_at_once_never_ring_one_consultant(self) -> None:
        """The busy mark lands before the records are written: with a store that takes a
        moment, the second hunt starting in the same instant still skips the first's member."""

        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            for leg in ("in-1", "in-2"):
                await sip.events.put(incoming(leg))
            await settle()
            await sip.events.put(p.Digit("in-1", "1", "info"))  # both choose in one instant
            await sip.events.put(p.Digit("in-2", "1", "info"))
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await sip.events.put(p.HungUp("in-2", 0))
            await settle()

        sip, _ = run_engine(scenario, sink=SlowRecorder())
        dials = [x.uri for x in sip.of(p.Dial)]  # type: ignore[attr-defined]
        assert len(dials) == 2
        assert len(set(dials)) == 2, dials

    def test_gp_cancel_before_answer_ends_call(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.Failed("in-1", 487, "cancelled"))
            await settle()
            assert engine.active_calls == 0

        _, sink = run_engine(scenario)
        assert isinstance(sink.events[-1], d.CallEnded)


class TestWorkerDeath:
    """A worker that dies ends its calls as interrupted; the engine does not hang."""

    def test_calls_of_a_dead_worker_are_interrupted(self) -> None:
        async def scenario(sip: FakeSip, sink: Recorder, engine: Engine) -> None:
            await sip.events.put(incoming("in-1"))
            await settle()
            await sip.events.put(p.Digit("in-1", "1", "info"))
            await settle()
            [dial] = sip.of(p.Dial)
            leg = dial.leg  # type: ignore[attr-defined]
            # What the pool reports when the worker process dies holding both legs:
            await sip.events.put(p.WorkerDied("w0", ("in-1", leg), -9))
            await sip.events.put(p.LegClosed("in-1"))
            await sip.events.put(p.LegClosed(leg))
            await settle()
            assert engine.active_calls == 0

        _, sink = run_engine(scenario)
        end = sink.events[-1]
        assert isinstance(end, d.CallEnded)
        assert end.reason is d.EndReason.LOST
        [leg_end] = [ev for ev in sink.events if isinstance(ev, d.LegEnded)]
        assert leg_end.result is d.LegResult.CANCELLED


@pytest.mark.parametrize("live", [0, 1])
def test_presence_counts_live_legs(live: int) -> None:
    """A member is busy exactly while a leg to them is live."""
    presence = EnginePresence(lambda member: member != "away")
    started = d.LegStarted("c", 0, "L1", "m1", "sip:m1@x", "local", "")
    presence.observe(started)
    if not live:
        presence.observe(d.LegEnded("c", 1, "L1", "m1", "local", d.LegResult.BUSY, 486, 0.1))
    assert presence.is_available("m1") is (not live)
    assert presence.is_available("away") is False
