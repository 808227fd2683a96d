"""Properties of the hunter and every built-in strategy, over random teams, policies, presence
and leg outcomes: the rules hunt.py promises hold whatever the strategy orders or paces."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.core.domain import LegResult
from callrouter.core.hunt import Hunter, Ring
from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan, Tier
from callrouter.core.strategies import builtin_names, strategy_named
from callrouter.settings.dialplan import HuntPolicy

RESULTS = list(LegResult)


@dataclass
class Presence:
    """Who the shell says is busy right now (changed by the test between steps)."""

    busy: set[str] = field(default_factory=set)

    def is_available(self, member_id: str) -> bool:
        return member_id not in self.busy


@dataclass(frozen=True)
class Case:
    plan: HuntPlan
    strategy: str
    cap: int
    busy: frozenset[str]
    history: tuple[tuple[str, LegResult, float, float], ...]
    steps: tuple[tuple[str, int, bool, bool, float], ...]


def member(member_id: str) -> Candidate:
    return Candidate(member_id, member_id, f"sip:{member_id}@test", "test")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    local = [f"l{n}" for n in range(draw(st.integers(0, 4)))]
    ncn = [f"n{n}" for n in range(draw(st.integers(0 if local else 1, 3)))]
    everyone = local + ncn
    policy = HuntPolicy(
        tiers=("local", "ncn"),
        ring_seconds=draw(st.sampled_from([5.0, 12.0, 20.0, 30.0])),
        loops=draw(st.integers(1, 3)),
        max_parallel=draw(st.integers(1, 3)),
        stagger_seconds=draw(st.sampled_from([1.0, 4.0, 10.0])),
    )
    plan = HuntPlan(
        "area",
        "renal",
        policy,
        (
            Tier("local", "local", tuple(member(m) for m in local)),
            Tier("ncn", "ncn", tuple(member(m) for m in ncn)),
        ),
    )
    history = draw(
        st.lists(
            st.tuples(
                st.sampled_from(everyone),
                st.sampled_from(RESULTS),
                st.floats(0.0, 40.0),
                st.floats(0.0, 900.0),
            ),
            max_size=30,
        )
    )
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["tick", "tick", "end", "end", "answer", "busy", "free", "free"]),
                st.integers(0, 50),
                st.booleans(),  # declined (for "end")
                st.booleans(),  # rang out (for "end")
                st.floats(0.0, 25.0),  # seconds before the step
            ),
            max_size=60,
        )
    )
    return Case(
        plan,
        draw(st.sampled_from(builtin_names())),
        draw(st.integers(1, 3)),
        frozenset(draw(st.sets(st.sampled_from(everyone)))),
        tuple(sorted(history, key=lambda h: h[3])),
        tuple(steps),
    )


class Call:
    """One call's hunt driven step by step, every ring checked against the rules."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.plan = case.plan
        self.presence = Presence(set(case.busy))
        self.stats = MemberStats()
        for member_id, result, delay, at in case.history:
            self.stats.record(member_id, result, delay, at)
        self.strategy = strategy_named(case.strategy)
        self.hunter = Hunter(self.plan, self.strategy, self.presence, self.stats, case.cap)
        self.active: dict[str, int] = {}
        self.rung: set[str] = set()
        self.never_again: set[str] = set()
        self.tier_of = {
            c.member_id: index for index, tier in enumerate(self.plan.tiers) for c in tier.members
        }
        self.now = 1000.0
        self.legs = 0

    def check(self, rings: list[Ring]) -> None:
        limit = min(self.case.cap, self.plan.policy.max_parallel)
        for ring in rings:
            m = ring.candidate.member_id
            assert m not in self.active, f"{m} rung twice at once"
            assert m not in self.never_again, f"{m} rung again after declining"
            assert self.presence.is_available(m), f"{m} rung while busy"
            assert ring.tier == self.plan.tiers[self.tier_of[m]].name
            assert 0 < ring.ring_seconds <= self.plan.policy.ring_seconds
            for earlier in self.plan.tiers[: self.tier_of[m]]:
                for c in earlier.members:
                    untried = c.member_id not in self.rung and c.member_id not in self.active
                    assert not (untried and self.presence.is_available(c.member_id)), (
                        f"{m} of tier {ring.tier} rung before free {c.member_id} was tried"
                    )
            self.active[m] = self.tier_of[m]
            self.rung.add(m)
            self.legs += 1
        assert len(self.active) <= limit, "more legs at once than the cap"

    def step(self, kind: str, pick: int, declined: bool, rang_out: bool, wait: float) -> None:
        self.now += wait
        if kind == "tick":
            deadline = self.hunter.next_deadline()
            if deadline is not None:
                self.now = max(self.now, deadline)
            self.check(self.hunter.on_timer(self.now))
        elif kind in ("end", "answer") and self.active:
            m = sorted(self.active)[pick % len(self.active)]
            if kind == "answer":
                self.hunter.leg_answered(m)
                return
            del self.active[m]
            rang_out = rang_out and not declined
            result = (
                LegResult.DECLINED
                if declined
                else LegResult.NO_ANSWER
                if rang_out
                else LegResult.CANCELLED
            )
            self.stats.record(m, result, 3.0, self.now)
            if declined or (rang_out and not self.strategy.ring_again_after_no_answer):
                self.never_again.add(m)
            self.check(self.hunter.leg_done(m, declined, self.now, rang_out=rang_out))
        elif kind == "free" and self.presence.busy:
            self.presence.busy.discard(sorted(self.presence.busy)[pick % len(self.presence.busy)])
        elif kind == "busy":
            idle = sorted(m for m in self.tier_of if m not in self.active)
            if idle:
                self.presence.busy.add(idle[pick % len(idle)])


class TestHuntRules:
    """Whatever the strategy, team, presence and outcomes: the rules of hunt.py hold."""

    @settings(max_examples=300, deadline=None)
    @given(cases())
    def test_rules_hold_at_every_ring(self, case: Case) -> None:
        call = Call(case)
        call.check(call.hunter.start(call.now))
        for step in case.steps:
            call.step(*step)
        # Passes are bounded: never more legs than members x passes.
        members = sum(len(t.members) for t in case.plan.tiers)
        assert call.legs <= members * case.plan.policy.loops

    @settings(max_examples=200, deadline=None)
    @given(cases())
    def test_a_hunt_left_to_run_ends(self, case: Case) -> None:
        """Every leg rings out (nobody busy): the hunt exhausts within loops x members legs."""
        call = Call(case)
        call.presence.busy.clear()
        call.check(call.hunter.start(call.now))
        for _ in range(200):
            if call.hunter.exhausted():
                break
            if call.active:
                legs = call.legs
                call.now += case.plan.policy.ring_seconds
                call.step("end", 0, False, True, 0.0)  # may start the next leg at once
                assert call.legs >= legs
            else:
                deadline = call.hunter.next_deadline()
                assert deadline is not None, "neither legs nor a deadline, yet not exhausted"
                call.now = max(call.now, deadline)
                call.check(call.hunter.on_timer(call.now))
        assert call.hunter.exhausted()
        members = sum(len(t.members) for t in case.plan.tiers)
        assert call.legs <= members * case.plan.policy.loops


class TestStrategies:
    """Ordering is a permutation of the tier, and pacing is a time, for every strategy."""

    @settings(max_examples=200, deadline=None)
    @given(cases(), st.floats(0.0, 86_400.0))
    def test_order_is_a_permutation_and_pace_non_negative(self, case: Case, now: float) -> None:
        call = Call(case)
        for tier in case.plan.tiers:
            ordered = call.strategy.order(tier.members, call.stats, now)
            assert sorted(c.member_id for c in ordered) == sorted(c.member_id for c in tier.members)
            for candidate in tier.members:
                pace = call.strategy.stagger_seconds(
                    candidate, case.plan.policy, call.stats, tier=tier.members, now=now
                )
                assert pace >= 0.0
                assert not math.isnan(pace)
                ring = call.strategy.ring_seconds(candidate, case.plan.policy, call.stats)
                assert 0 < ring <= case.plan.policy.ring_seconds
