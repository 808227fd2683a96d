"""The engine with busy state shared between nodes (callrouter.shared_presence), against our fake
SIP port: another node's claim is honoured in the hunt, our legs are claimed and released, and a
race lost to another node cancels our ringing leg without blaming the consultant. The other node
speaks through the bus channel's own message handler (the wire itself: tests/adapters)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from callrouter.adapters.mqtt_busy import BusyShare, claim_payload
from callrouter.core import domain as d
from callrouter.core.claims import Claim, Phase
from callrouter.engine import Engine, EngineLimits
from callrouter.shared_presence import SharedPresence, bind_presence
from callrouter.sip import protocol as p
from tests.core.harness import Harness, dialplan
from tests.engine.test_engine import FakeSip, Plans, Prompts, Recorder, incoming, settle

PREFIX = "cr"
Published = list[tuple[str, bytes]]


def other_node_claims(share: BusyShare, member_id: str, phase: Phase, at: float) -> None:
    claim = Claim("node-b", member_id, phase, at, time.time() + 60)
    share.on_message(share.topic(member_id, "node-b"), claim_payload(claim))


def run(scenario: object) -> tuple[FakeSip, Recorder, Published]:
    h = Harness(dialplan())
    sip, sink, published = FakeSip(), Recorder(), []
    share = BusyShare(PREFIX, "node-a")
    share.attach(lambda topic, payload, _retain: published.append((topic, payload)), print)
    presence = SharedPresence(share)

    async def main() -> None:
        engine = Engine(
            sip=sip,
            dialplans=Plans(h.dialplan),
            env=dataclasses.replace(h.env, presence=presence),
            presence=presence,
            prompts=Prompts(),
            sink=sink,
            limits=EngineLimits(max_concurrent_calls=5, trunk_allows=lambda _host: True),
        )
        bind_presence(presence, engine.give_up_leg)
        serving = asyncio.create_task(engine.serve())
        await scenario(sip, share)  # type: ignore[operator]
        await sip.events.put(None)
        await asyncio.wait_for(serving, 5)

    asyncio.run(main())
    return sip, sink, published


def phases(published: Published, member_id: str) -> list[str | None]:
    """What we said about ``member_id`` on the bus, in order (None: released)."""
    topic = f"{PREFIX}/busy/node-a/{member_id}"
    return [json.loads(body)["phase"] if body else None for t, body in published if t == topic]


async def choose(sip: FakeSip, leg: str) -> None:
    await sip.events.put(incoming(leg))
    await settle()
    await sip.events.put(p.Digit(leg, "1", "info"))
    await settle()


class TestHonoured:
    """A consultant another node claims is not rung here."""

    def test_the_hunt_skips_a_member_claimed_elsewhere(self) -> None:
        async def scenario(sip: FakeSip, share: BusyShare) -> None:
            other_node_claims(share, "a1", Phase.TALKING, time.time())
            await choose(sip, "in-1")
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, _, published = run(scenario)
        assert [x.uri for x in sip.of(p.Dial)] == ["sip:a2@127.0.0.1"]  # type: ignore[attr-defined]
        assert phases(published, "a2") == ["ringing", None]  # claimed, released at the end
        assert phases(published, "a1") == []


class TestClaims:
    """Our legs are claimed as they progress and released when the last one ends."""

    def test_ringing_answered_talking_then_released(self) -> None:
        async def scenario(sip: FakeSip, share: BusyShare) -> None:
            await choose(sip, "in-1")
            (dial,) = sip.of(p.Dial)
            leg = dial.leg  # type: ignore[attr-defined]
            await sip.events.put(p.Answered(leg))
            await settle()
            await sip.events.put(p.Digit(leg, "1", "info"))
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        _, sink, published = run(scenario)
        assert any(isinstance(x, d.Connected) for x in sink.events)
        assert phases(published, "a1") == ["ringing", "answered", "talking", None]


class TestRaceLost:
    """Another node claimed the member first: our ringing leg is cancelled, ends as busy, and
    the hunt goes on to the next member."""

    def test_the_leg_is_given_up_and_the_next_member_rung(self) -> None:
        async def scenario(sip: FakeSip, share: BusyShare) -> None:
            await choose(sip, "in-1")
            (dial,) = sip.of(p.Dial)
            other_node_claims(share, "a1", Phase.RINGING, at=time.time() - 1)  # earlier: wins
            await settle()
            hangups = sip.of(p.Hangup)
            assert [h.leg for h in hangups] == [dial.leg]  # type: ignore[attr-defined]
            await sip.events.put(p.Failed(dial.leg, 487, "cancelled"))  # type: ignore[attr-defined]
            await settle()
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, sink, published = run(scenario)
        uris = [x.uri for x in sip.of(p.Dial)]  # type: ignore[attr-defined]
        assert uris == ["sip:a1@127.0.0.1", "sip:a2@127.0.0.1"]
        ended = [x for x in sink.events if isinstance(x, d.LegEnded) and x.member_id == "a1"]
        assert [(x.result, x.status) for x in ended] == [(d.LegResult.BUSY, 486)]
        assert phases(published, "a1") == ["ringing", None]

    def test_a_later_claim_elsewhere_changes_nothing_here(self) -> None:
        async def scenario(sip: FakeSip, share: BusyShare) -> None:
            await choose(sip, "in-1")
            other_node_claims(share, "a1", Phase.RINGING, at=time.time() + 1)  # later: loses
            await settle()
            assert sip.of(p.Hangup) == []
            await sip.events.put(p.HungUp("in-1", 0))
            await settle()

        sip, _, _ = run(scenario)
        assert [x.uri for x in sip.of(p.Dial)] == ["sip:a1@127.0.0.1"]  # type: ignore[attr-defined]
