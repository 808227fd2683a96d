"""The simulator: deterministic, the same world for every strategy, the bound on top, and the
tier promise kept by every strategy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from callrouter.core.plan import Candidate, HuntPlan, Tier
from callrouter.sim.bound import BOUND
from callrouter.sim.calls import SimCall
from callrouter.sim.report import Summary
from callrouter.sim.runner import (
    all_strategies,
    prepare,
    run_all,
    run_seed,
    run_strategy,
)
from callrouter.sim.tables import to_json
from callrouter.sim.world import World
from tests.sim.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
# Busy enough that members are often on calls, so skipping and tier order are exercised.
BUSY = TINY.replace("dermatology: 3\n", "dermatology: 9\n").replace("days: 5", "days: 8")
LIGHT = (
    TINY.replace("dermatology: 3\n", "dermatology: 2\n")
    .replace("{median: 300, p90: 600}", "{median: 60, p90: 120}")
    .replace("days: 5", "days: 10")
)


NAMES = all_strategies()


def assert_bounded(results: Mapping[str, Summary]) -> None:
    """No strategy connects a call the bound does not, nor sooner; FTCR and the sum of
    connection times follow."""
    bound = results[BOUND]
    for name, summary in results.items():
        for call, seconds in summary.connect_by_call.items():
            assert call in bound.connect_by_call, (name, call)
            assert seconds >= bound.connect_by_call[call] - 1e-5, (name, call)  # float clock
        assert summary.ftcr <= bound.ftcr, name
        fastest = sorted(bound.connect_by_call.values())[: len(summary.connect_by_call)]
        assert sum(summary.connect_by_call.values()) >= sum(fastest) - 1e-6, name


@pytest.fixture(scope="module")
def busy_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("busy") / "busy.yaml"
    path.write_text(BUSY, encoding="utf-8")
    prepared = prepare(path)
    return prepared, run_seed(prepared, NAMES)


class TestDeterminism:
    """Same seed, same figures; another seed, other figures."""

    def test_same_seed_same_json(self, tiny: Path) -> None:
        first = to_json([run_seed(prepare(tiny), ["adaptive", "linear"])], [3])
        second = to_json([run_seed(prepare(tiny), ["adaptive", "linear"])], [3])
        assert first == second

    def test_other_seed_other_figures(self, tiny: Path, write) -> None:
        other = write(TINY.replace("seed: 3", "seed: 4"), "other.yaml")
        assert run_all(prepare(tiny), ["linear"]) != run_all(prepare(other), ["linear"])

    def test_order_of_strategies_changes_nothing(self, tiny: Path) -> None:
        prepared = prepare(tiny)
        alone = run_strategy(prepared, "adaptive")
        after = run_all(prepared, ["staggered", BOUND, "adaptive"])[-1]
        assert alone == after


class TestSameWorld:
    """Every strategy meets the same arrivals."""

    def test_same_calls_for_every_strategy(self, busy_results) -> None:
        _, results = busy_results
        assert len({s.calls for s in results.values()}) == 1
        assert next(iter(results.values())).calls > 300


class TestBound:
    """The bound is a bound: call by call, no strategy connects a call it does not, or sooner."""

    @pytest.mark.parametrize("seed", [1, 2])
    def test_light_load(self, write, seed: int) -> None:
        assert_bounded(run_seed(prepare(write(LIGHT.replace("seed: 3", f"seed: {seed}"))), NAMES))

    def test_busy(self, busy_results) -> None:
        _, results = busy_results
        assert_bounded(results)

    def test_bound_is_not_slack_at_light_load(self, write) -> None:
        # With members rarely busy, ringall (everyone at once) is close to the bound.
        results = run_seed(prepare(write(LIGHT)), ["ringall"])
        assert results[BOUND].ftcr - results["ringall"].ftcr < 0.03

    def test_counts_the_same_calls(self, busy_results) -> None:
        _, results = busy_results
        assert {s.calls for s in results.values()} == {results[BOUND].calls}


class TestTierPriority:
    """No NCN member is rung before every free local member has been rung."""

    def test_no_violation_for_any_strategy(self, busy_results) -> None:
        _, results = busy_results
        assert {name: s.tier_violations for name, s in results.items()} == dict.fromkeys(results, 0)

    def test_no_violation_on_the_shipped_example(self) -> None:
        trimmed = prepare(ROOT / "workloads" / "example.yaml").rerun(days=10)
        for summary in run_all(trimmed, all_strategies()):
            assert summary.tier_violations == 0, summary.name

    def test_the_check_counts_a_violation(self, tiny: Path) -> None:
        prepared = prepare(tiny)
        world = World(
            prepared.scenario,
            prepared.arrivals,
            "linear",
            seed=3,
            call_length=(5.0, 0.5),
            patience=(5.0, 0.0),
        )

        def member(mid: str) -> Candidate:
            return Candidate(mid, mid, f"sip:{mid}@x", "test")

        policy = prepared.scenario.dialplans["sim"].specialties["dermatology"]
        plan = HuntPlan(
            "sim",
            "dermatology",
            policy,
            (Tier("local", "l", (member("a"), member("b"))), Tier("ncn", "n", (member("z"),))),
        )
        call = SimCall.__new__(SimCall)
        call.plan = plan
        call.rung = {"a"}
        world._check_tiers(call, "ncn")
        assert world.tally.tier_violations == 1  # b is free and was never rung
        world.busy.legs["b"] = 1
        world._check_tiers(call, "ncn")
        assert world.tally.tier_violations == 1  # b is busy: skipping is allowed


class TestFigures:
    """The summary is consistent with itself."""

    def test_figures_are_sane(self, busy_results) -> None:
        _, results = busy_results
        for summary in results.values():
            assert 0.0 < summary.ftcr <= 1.0
            assert summary.connect_p50_s <= summary.connect_p90_s
            assert summary.rings_per_connected >= 1.0
            assert summary.max_calls_per_consultant >= summary.mean_calls_per_consultant
            if summary.name != BOUND:
                assert 150 < summary.mean_call_length_s < 700

    def test_every_call_is_accounted_for(self, busy_results) -> None:
        # Each call that chose a specialty was connected, abandoned, or ended by the system.
        _, results = busy_results
        for name, summary in results.items():
            if name == BOUND:
                continue
            ended = len(summary.connect_by_call) + summary.abandoned + summary.gave_up
            assert ended == summary.calls, name
            assert summary.gave_up > 0, name
            per = summary.per_specialty
            assert sum(s.calls for s in per.values()) == summary.calls
