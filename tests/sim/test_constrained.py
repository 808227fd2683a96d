"""The bound under the goals' rules (sim/constrained.py): a lower bound for every strategy that
keeps the rules, equal to the bound when the rules hold nobody back, and each rule binds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import pytest

from callrouter.core.plan import HuntPlan, HuntPolicy
from callrouter.sim.bound import BOUND, CallOptions, Option
from callrouter.sim.constrained import Rules, constrained_mean, rules_of_goals
from callrouter.sim.runner import all_strategies, calls_of, prepare, run_seed

ROOT = Path(__file__).resolve().parents[2]
PLAN = HuntPlan("area", "skin", HuntPolicy(tiers=()), ())
LOOSE = Rules(min_connected=0, share_caps={}, max_rings_per_connected=math.inf)


def call(index: int, *options: tuple[str, float, int], specialty: str = "skin") -> CallOptions:
    return CallOptions(
        index, specialty, PLAN, [Option(s, 0, member, legs) for member, s, legs in options]
    )


class TestByHand:
    """Four calls that A could take in 5 s and B in 10 s."""

    calls: ClassVar[list[CallOptions]] = [call(i, ("a", 5.0, 1), ("b", 10.0, 1)) for i in range(4)]

    def test_without_rules_everything_goes_to_the_fastest(self) -> None:
        rules = Rules(4, {}, math.inf)
        assert constrained_mean(self.calls, rules) == pytest.approx(5.0)

    def test_a_share_cap_sends_calls_to_the_slower_member(self) -> None:
        rules = Rules(4, {"skin": 0.5}, math.inf)
        assert constrained_mean(self.calls, rules) == pytest.approx(7.5)

    def test_the_cap_is_per_specialty(self) -> None:
        rules = Rules(4, {"heart": 0.5}, math.inf)
        assert constrained_mean(self.calls, rules) == pytest.approx(5.0)

    def test_the_rings_rule_picks_the_option_with_fewer_legs(self) -> None:
        calls = [call(i, ("a", 5.0, 3), ("b", 10.0, 1)) for i in range(4)]
        assert constrained_mean(calls, Rules(4, {}, 2.0)) == pytest.approx(7.5)
        assert constrained_mean(calls, Rules(4, {}, 1.0)) == pytest.approx(10.0)

    def test_connecting_more_calls_costs_the_slow_ones(self) -> None:
        calls = [call(0, ("a", 5.0, 1)), call(1, ("a", 20.0, 1)), call(2)]
        assert constrained_mean(calls, Rules(1, {}, math.inf)) == pytest.approx(5.0)
        assert constrained_mean(calls, Rules(2, {}, math.inf)) == pytest.approx(12.5)

    def test_rules_nobody_can_keep_give_nan(self) -> None:
        calls = [call(0, ("a", 5.0, 1)), call(1)]
        assert math.isnan(constrained_mean(calls, Rules(2, {}, math.inf)))
        assert math.isnan(constrained_mean(self.calls, Rules(4, {"skin": 0.5}, 0.5)))
        assert math.isnan(constrained_mean([], LOOSE))


@pytest.fixture(scope="module")
def world() -> tuple[list[CallOptions], dict[str, object]]:
    prepared = prepare(ROOT / "workloads" / "two-member-tiers.yaml").rerun(days=4)
    return list(calls_of(prepared)), run_seed(prepared, all_strategies())  # type: ignore[return-value]


class TestOnAWorkload:
    def test_with_rules_that_hold_nobody_back_it_is_the_bound(self, world) -> None:
        calls, runs = world
        bound = runs[BOUND]
        rules = Rules(round(bound.ftcr * bound.calls), {}, math.inf)
        assert constrained_mean(calls, rules) == pytest.approx(bound.connect_mean_s, rel=1e-6)

    @pytest.mark.parametrize("name", all_strategies())
    def test_no_strategy_keeping_the_rules_is_sooner(self, world, name: str) -> None:
        """Rules each strategy keeps by construction (its own connected calls, shares and
        rings): its mean connection is never below the constrained bound, which is above the
        bound's (the rules hold)."""
        calls, runs = world
        run = runs[name]
        connected = round(run.ftcr * run.calls)
        rules = Rules(
            connected,
            {k: s.top_share for k, s in run.per_specialty.items()},
            run.rings_per_connected,
        )
        kept = constrained_mean(calls, rules)
        assert kept <= run.connect_mean_s + 1e-6
        fastest = sorted(runs[BOUND].connect_by_call.values())[:connected]
        assert kept >= sum(fastest) / connected - 1e-6

    def test_the_goals_rules_come_from_linear_and_the_best_fixed(self, world) -> None:
        _, runs = world
        rules = rules_of_goals(runs, "ringall")
        ringall, linear = runs["ringall"], runs["linear"]
        assert rules.min_connected == math.ceil((ringall.ftcr - 0.005) * ringall.calls - 1e-9)
        assert rules.max_rings_per_connected == linear.rings_per_connected
        assert rules.share_caps == {
            k: max(s.top_share, 0.5) for k, s in linear.per_specialty.items()
        }
