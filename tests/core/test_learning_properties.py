"""Properties of learning from leg results: estimates stay probabilities and move toward what
was seen; the pacing figures made from them stay in range."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.core.domain import LegResult
from callrouter.core.learning import MemberStats, hour_of
from callrouter.core.plan import Candidate, HuntPlan, Tier
from callrouter.core.strategies import (
    MAX_PACE,
    distinct_rates,
    expected_legs,
    give_up_on,
    later_pass_budget,
    ring_budget,
)
from callrouter.settings.dialplan import HuntPolicy

MEMBERS = ["a", "b", "c"]
PICKED_UP = [LegResult.ACCEPTED, LegResult.DECLINED, LegResult.NO_CONFIRM, LegResult.HUNG_UP]
MISSED = [LegResult.NO_ANSWER, LegResult.REJECTED, LegResult.UNAVAILABLE]
NEUTRAL = [LegResult.BUSY, LegResult.ERROR, LegResult.CANCELLED]

legs = st.lists(
    st.tuples(
        st.sampled_from(MEMBERS),
        st.sampled_from(list(LegResult)),
        st.floats(0.0, 60.0),
        st.floats(0.0, 5.0 * 86_400.0),
    ),
    max_size=80,
).map(lambda found: sorted(found, key=lambda leg: leg[3]))


def learned(history: list[tuple[str, LegResult, float, float]]) -> MemberStats:
    stats = MemberStats()
    for member_id, result, delay, at in history:
        stats.record(member_id, result, delay, at)
    return stats


def candidate(member_id: str) -> Candidate:
    return Candidate(member_id, member_id, f"sip:{member_id}@test", "test")


class TestEstimatesAreProbabilities:
    """Whatever was seen, every estimate is a probability and the delay shares a survival."""

    @settings(max_examples=200, deadline=None)
    @given(legs, st.floats(0.0, 6.0 * 86_400.0))
    def test_in_range(self, history, now: float) -> None:
        stats = learned(history)
        for m in [*MEMBERS, "never-seen"]:
            for rate in (
                stats.answer_rate(m),
                stats.answer_rate(m, now),
                stats.chance_now(m, now),
            ):
                assert 0.0 <= rate <= 1.0
            after = stats.answers_after(m)
            assert after[0] == 1.0
            assert after[-1] < 1e-9  # 0 up to the sum of the bins' rounding
            assert all(0.0 <= x <= 1.0 for x in after)
            assert all(x >= y for x, y in itertools.pairwise(after))  # a survival curve
            mu, sigma = stats.log_delay(m)
            assert math.isfinite(mu)
            assert sigma > 0.0


class TestEstimatesMoveTowardResults:
    """A pick-up never lowers the estimate, a miss never raises it, a neutral result (busy,
    cancelled, error) leaves it alone."""

    @settings(max_examples=200, deadline=None)
    @given(legs, st.sampled_from(MEMBERS), st.floats(1.0, 30.0))
    def test_pick_up_raises_miss_lowers(self, history, m: str, delay: float) -> None:
        now = (history[-1][3] if history else 0.0) + 10.0
        for result, direction in [
            *((r, 1) for r in PICKED_UP),
            *((r, -1) for r in MISSED),
            *((r, 0) for r in NEUTRAL),
        ]:
            stats = learned(history)
            before = (stats.answer_rate(m), stats.answer_rate(m, now))
            stats.record(m, result, delay, now)
            after = (stats.answer_rate(m), stats.answer_rate(m, now))
            for old, new in zip(before, after, strict=True):
                if direction > 0:
                    assert new >= old - 1e-12, result
                elif direction < 0:
                    assert new <= old + 1e-12, result
                else:
                    assert new == old, result

    @settings(max_examples=100, deadline=None)
    @given(st.floats(0.05, 0.95))
    def test_converges_to_a_steady_rate(self, rate: float) -> None:
        """Rung again and again at one hour with a steady pick-up rate, the estimate ends near
        it (the evidence decays, so it follows the recent results)."""
        stats = MemberStats()
        answered = 0.0
        for n in range(400):
            answered += rate
            picked = answered >= 1.0
            answered -= 1.0 if picked else 0.0
            result = LegResult.ACCEPTED if picked else LegResult.NO_ANSWER
            stats.record("a", result, 5.0, 36_000.0 + n * 86_400.0)
        assert abs(stats.answer_rate("a") - rate) < 0.1
        assert abs(stats.answer_rate("a", 36_000.0) - rate) < 0.15
        assert hour_of(36_000.0) == 10


class TestPacingFigures:
    """Give-up times, expected legs and the ring budget stay in their ranges."""

    @settings(max_examples=200, deadline=None)
    @given(legs, st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 6.0 * 86_400.0))
    def test_give_up_falls_as_the_bar_rises(self, history, x: float, y: float, now: float) -> None:
        stats = learned(history)
        low, high = sorted((x, y))
        for m in MEMBERS:
            patient, brisk = give_up_on(m, stats, low, now), give_up_on(m, stats, high, now)
            assert brisk >= 0.0
            assert brisk <= patient

    @given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
    def test_best_first_rings_fewest(self, rates: list[float]) -> None:
        best = expected_legs(sorted(rates, reverse=True))
        assert 1.0 <= best <= len(rates)
        for order in itertools.islice(itertools.permutations(rates), 50):
            assert best <= expected_legs(order) + 1e-9

    @settings(max_examples=200, deadline=None)
    @given(legs, st.floats(0.0, 6.0 * 86_400.0), st.permutations(MEMBERS))
    def test_budget_in_range(self, history, now: float, order: list[str]) -> None:
        stats = learned(history)
        tier = [candidate(m) for m in MEMBERS]
        rates = {m: stats.chance_now(m, now) for m in MEMBERS}
        shrunk = distinct_rates(tier, stats, now)
        for m in MEMBERS:
            assert min(rates.values()) - 1e-12 <= shrunk[m] <= max(rates.values()) + 1e-12
        pace = ring_budget(tier, [candidate(m) for m in order], stats, now)
        assert 0.0 <= pace <= MAX_PACE
        assert ring_budget(tier, tier, stats, now) == 0.0  # the rota's own order saves nothing

    def test_members_alike_get_no_budget(self) -> None:
        """Same records, any order: nothing saved, so one leg at a time."""
        stats = MemberStats()
        for n, m in itertools.product(range(20), MEMBERS):
            result = LegResult.ACCEPTED if n % 4 else LegResult.NO_ANSWER
            stats.record(m, result, 6.0, 3600.0 * 10 + n)
        tier = [candidate(m) for m in MEMBERS]
        assert ring_budget(tier, tier[::-1], stats, 3600.0 * 10 + 100) == 0.0

    def test_a_much_better_member_earns_a_budget(self) -> None:
        stats = MemberStats()
        for n in range(30):
            stats.record("a", LegResult.NO_ANSWER, 0.0, 36_000.0 + 7200.0 * n)
            stats.record("b", LegResult.ACCEPTED, 4.0, 36_000.0 + 7200.0 * n + 1)
        tier = [candidate("a"), candidate("b")]
        at = 36_000.0 + 7200.0 * 31  # the same hour of day; a's last miss long ago
        assert ring_budget(tier, tier[::-1], stats, at) > 0.1


def plan_of(loops: int) -> HuntPlan:
    policy = HuntPolicy(tiers=("local", "ncn"), loops=loops)
    return HuntPlan(
        "area",
        "renal",
        policy,
        (
            Tier("local", "local", (candidate("a"), candidate("b"))),
            Tier("ncn", "ncn", (candidate("c"),)),
        ),
    )


class TestLaterPassBudget:
    """The rings a rota spends on later passes pay for a brisker pace, in proportion to how
    often a whole pass fails; one pass, nothing."""

    def test_grows_with_misses_and_needs_a_second_pass(self) -> None:
        reliable, unreliable = MemberStats(), MemberStats()
        for n, m in itertools.product(range(20), MEMBERS):
            reliable.record(m, LegResult.ACCEPTED, 5.0, 36_000.0 + n)
            unreliable.record(m, LegResult.NO_ANSWER, 0.0, 36_000.0 + n)
        at = 36_000.0 + 86_400.0  # a day later: no miss is recent
        assert later_pass_budget(plan_of(1), unreliable, at) == 0.0
        low = later_pass_budget(plan_of(2), reliable, at)
        high = later_pass_budget(plan_of(2), unreliable, at)
        assert 0.0 <= low < 0.01 < high <= MAX_PACE

    @settings(max_examples=100, deadline=None)
    @given(legs, st.floats(0.0, 6.0 * 86_400.0), st.integers(1, 4))
    def test_in_range(self, history, now: float, loops: int) -> None:
        assert 0.0 <= later_pass_budget(plan_of(loops), learned(history), now) <= MAX_PACE
