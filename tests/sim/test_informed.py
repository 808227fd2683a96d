"""The informed reference: true habits, not the draws; a dial from serial to all at once."""

from __future__ import annotations

import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate
from callrouter.sim.bound import BOUND
from callrouter.sim.draws import AwaySpells
from callrouter.sim.informed import Informed, parse_informed
from callrouter.sim.runner import prepare, run_seed
from callrouter.sim.scenario import Behaviour
from callrouter.sim.verdict import fixed_strategies, informed_reach
from tests.sim.test_cli import simulate

LONDON = ZoneInfo("Europe/London")
NOON = 1_772_452_800.0  # 2026-03-02 12:00 London (GMT)


SLOW = Candidate("slow", "Slow", "sip:1", "rota")
KEEN = Candidate("keen", "Keen", "sip:2", "rota")


def informed(theta: float, away: dict[str, AwaySpells] | None = None) -> Informed:
    habits = {
        "slow": Behaviour(0.3, math.log(12.0), 0.5, 0.95),
        "keen": Behaviour(0.9, math.log(5.0), 0.3, 0.95),
    }
    return Informed(habits, away or {}, LONDON, theta)


class TestNames:
    """``informed`` and ``informed@THETA`` name it; anything else does not."""

    @pytest.mark.parametrize(
        ("name", "theta"),
        [("informed", 0.2), ("informed@0", 0.0), ("informed@0.35", 0.35), ("informed@1", 1.0)],
    )
    def test_parsed(self, name: str, theta: float) -> None:
        assert parse_informed(name) == theta

    @pytest.mark.parametrize("name", ["linear", "informed@", "informed@x", "informed@1.5", "inf"])
    def test_not_informed(self, name: str) -> None:
        assert parse_informed(name) is None


class TestOrderAndPace:
    """The best member by true odds first; theta moves the give-up time."""

    def test_keen_first(self) -> None:
        tier = [SLOW, KEEN]
        order = informed(0.2).order(tier, MemberStats(), NOON)
        assert [c.member_id for c in order] == ["keen", "slow"]

    def test_away_member_last_and_given_up_at_once(self) -> None:
        away = {"keen": AwaySpells([NOON - 60], [NOON + 3600])}
        strategy = informed(0.2, away)
        tier = [KEEN, SLOW]
        assert strategy.order(tier, MemberStats(), NOON)[0] is SLOW
        assert strategy.give_up("keen", NOON) == 0.0
        assert strategy.pick_up("keen", NOON) == 0.0
        assert strategy.pick_up("keen", NOON + 3600) > 0.8

    def test_theta_zero_never_gives_up_and_one_at_once(self) -> None:
        assert informed(0.0).give_up("keen", NOON) == math.inf
        assert informed(1.0).give_up("keen", NOON) == 0.0
        assert 0.0 < informed(0.2).give_up("keen", NOON) < informed(0.05).give_up("keen", NOON)


def test_the_dial_trades_rings_for_connection_time(tiny: Path) -> None:
    """Serial rings fewest legs, all at once connects soonest; both within the bound."""
    results = run_seed(prepare(tiny), ["informed@0", "informed@1"])
    serial, at_once = results["informed@0"], results["informed@1"]
    assert serial.rings_per_connected < at_once.rings_per_connected
    assert at_once.connect_mean_s < serial.connect_mean_s
    assert at_once.tier_violations == serial.tier_violations == 0


class TestOnTheCommandLine:
    """``--strategy informed@THETA`` runs beside the others; a theta outside 0-1 is refused."""

    def test_runs_and_is_judged_apart(self, tiny: Path) -> None:
        done = simulate(
            "--workload", str(tiny), "--strategy", "linear", "--strategy", "informed@0.5"
        )
        assert done.returncode == 0, done.stderr
        assert any(line.startswith("informed@0.5 ") for line in done.stdout.splitlines())

    def test_theta_out_of_range(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny), "--strategy", "informed@2")
        assert done.returncode == 2
        assert "unknown strategy 'informed@2'" in done.stderr
        assert "informed@THETA" in done.stderr


def test_the_verdict_keeps_it_apart_and_reports_its_reach(tiny: Path) -> None:
    """Not a fixed strategy for the FTCR goal; its reach is its fastest pace within linear's
    rings, measured against the bound."""
    names = ["linear", "adaptive", "informed@0", "informed@0.5", "informed@1"]
    runs = [run_seed(prepare(tiny), names)]
    assert fixed_strategies([BOUND, *names], "adaptive") == ["linear"]
    reach = informed_reach(runs, "adaptive")
    assert reach.name.startswith("informed@")
    within = runs[0][reach.name]
    assert within.rings_per_connected <= runs[0]["linear"].rings_per_connected
    assert reach.connect_ratio == within.connect_mean_s / runs[0][BOUND].connect_mean_s
    assert reach.connect_ratio >= 1.0  # never sooner than the bound
    assert informed_reach([run_seed(prepare(tiny), ["linear", "adaptive"])], "adaptive").name == ""
