"""What the default strategy learns from leg results: pick-up odds by hour of day, and when a
silent member will probably not answer (from their own answer delays)."""

from __future__ import annotations

from callrouter.core.domain import LegResult
from callrouter.core.learning import MemberStats
from callrouter.core.strategies import give_up_on

NINE = 9 * 3600.0  # 09:00 UTC on day 0
TWO = 14 * 3600.0


class TestByHour:
    """A member in clinic every morning and free every afternoon is judged by the hour."""

    def test_mornings_and_afternoons_apart(self) -> None:
        stats = MemberStats()
        for day in range(10):
            base = day * 86_400.0
            for n in range(3):
                stats.record("m", LegResult.NO_ANSWER, 0.0, base + NINE + 60 * n)
                stats.record("m", LegResult.ACCEPTED, 5.0, base + TWO + 60 * n)
        overall = stats.answer_rate("m")
        morning = stats.answer_rate("m", 10 * 86_400.0 + NINE + 1800)
        afternoon = stats.answer_rate("m", 10 * 86_400.0 + TWO + 1800)
        assert 0.4 < overall < 0.6
        assert morning < 0.3 < 0.8 < afternoon
        # An hour never seen falls back on the member's overall rate.
        assert stats.answer_rate("m", 3 * 3600.0) == overall


class TestGiveUp:
    """The next leg is added once the ringing member would probably not answer any more."""

    def test_a_slow_answerer_is_given_longer(self) -> None:
        stats = MemberStats()
        for n in range(30):
            stats.record("quick", LegResult.ACCEPTED, 3.0, float(n))
            stats.record("slow", LegResult.ACCEPTED, 15.0, float(n))
            if n % 3 == 0:
                stats.record("quick", LegResult.NO_ANSWER, 0.0, float(n))
                stats.record("slow", LegResult.NO_ANSWER, 0.0, float(n))
        quick = give_up_on("quick", stats, 0.2)
        slow = give_up_on("slow", stats, 0.2)
        assert 2.0 <= quick <= 10.0  # past their usual 3 s (and the prior), silence means no
        assert 14.0 <= slow <= 18.0  # they do answer at 15 s: worth waiting for
        assert give_up_on("quick", stats, 0.9) == 0.0  # a bar above their pick-up rate: at once
