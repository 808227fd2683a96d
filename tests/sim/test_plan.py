"""Capacity planning: the smallest teams that meet the targets."""

from __future__ import annotations

from pathlib import Path

from callrouter.sim.plan import plan_table, plan_teams
from callrouter.sim.runner import prepare

ONE = """\
seed: 5
start: 2026-03-02
days: 4
hours: ["09:00", "17:00"]
calls_per_hour: {renal: 2}
teams: {renal: {local: 1}}
consultants:
  tiers:
    ncn: {answer_probability: 0.2}
  answer_probability: 0.7
  answer_delay_seconds: {median: 6, p90: 12}
call_length_seconds: {median: 200, p90: 400}
"""


class TestCapacityPlanning:
    """Teams grow until the targets are met; a harder target never needs fewer members."""

    def test_meets_the_targets(self, write) -> None:
        [plan] = plan_teams(prepare(write(ONE)), "adaptive", 0.9, target_connect_s=30.0)
        assert plan.local is not None
        assert plan.ncn is not None
        assert plan.local >= 1
        assert not plan.current_meets  # one member cannot answer 90%
        assert plan.ftcr.mean >= 0.9
        assert plan.connect_mean_s.mean <= 30.0

    def test_harder_target_needs_at_least_as_many(self, write) -> None:
        prepared = prepare(write(ONE))
        [easy] = plan_teams(prepared, "adaptive", 0.6, target_connect_s=60.0)
        [hard] = plan_teams(prepared, "adaptive", 0.97, target_connect_s=60.0)
        assert easy.local is not None
        assert hard.local is not None
        assert easy.local + (easy.ncn or 0) <= hard.local + (hard.ncn or 0)

    def test_unreachable_target_is_said_so(self, write) -> None:
        never = ONE.replace("answer_probability: 0.7", "answer_probability: 0.01")
        [plan] = plan_teams(
            prepare(write(never)), "adaptive", 0.99, target_connect_s=5.0, max_team=3
        )
        assert plan.local is None
        assert "not reached with 3 members" in plan_table([plan], 0.99, 5.0, max_team=3)

    def test_table_lists_each_specialty(self, tiny: Path) -> None:
        plans = plan_teams(prepare(tiny), "adaptive", 0.5, target_connect_s=120.0)
        text = plan_table(plans, 0.5, 120.0)
        assert [p.specialty for p in plans] == ["dermatology", "cardiology"]
        assert "dermatology" in text
        assert "cardiology" in text
