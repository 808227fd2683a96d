"""The informed reference: true habits, not the draws; a dial from serial to all at once."""

from __future__ import annotations

import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callrouter.core.domain import LegResult
from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPolicy
from callrouter.core.strategies import ADD_FAIR_BELOW
from callrouter.sim.bound import BOUND
from callrouter.sim.draws import AwaySpells
from callrouter.sim.informed import Informed, InformedSetting, parse_informed
from callrouter.sim.runner import prepare, run_seed
from callrouter.sim.scenario import Behaviour
from callrouter.sim.verdict import fixed_strategies, informed_reach, share_margin
from tests.sim.test_cli import simulate

LONDON = ZoneInfo("Europe/London")
NOON = 1_772_452_800.0  # 2026-03-02 12:00 London (GMT)


SLOW = Candidate("slow", "Slow", "sip:1", "rota")
KEEN = Candidate("keen", "Keen", "sip:2", "rota")


def informed(
    theta: float, away: dict[str, AwaySpells] | None = None, *, fair: bool = False
) -> Informed:
    habits = {
        "slow": Behaviour(0.3, math.log(12.0), 0.5, 0.95),
        "keen": Behaviour(0.9, math.log(5.0), 0.3, 0.95),
    }
    return Informed(habits, away or {}, LONDON, theta, fair=fair)


class TestNames:
    """``informed`` and ``informed@THETA`` name it; anything else does not."""

    @pytest.mark.parametrize(
        ("name", "theta", "fair"),
        [
            ("informed", 0.2, False),
            ("informed@0", 0.0, False),
            ("informed@0.35", 0.35, False),
            ("informed@1", 1.0, False),
            ("informed-fair", 0.2, True),
            ("informed-fair@0.5", 0.5, True),
        ],
    )
    def test_parsed(self, name: str, theta: float, fair: bool) -> None:
        assert parse_informed(name) == InformedSetting(theta, fair)

    @pytest.mark.parametrize(
        "name", ["linear", "informed@", "informed@x", "informed@1.5", "inf", "informed-fai@0.2"]
    )
    def test_not_informed(self, name: str) -> None:
        assert parse_informed(name) is None

    def test_names_itself_as_parsed(self) -> None:
        assert informed(0.5).name == "informed@0.5"
        assert informed(0.5, fair=True).name == "informed-fair@0.5"


def keen_took_every_call() -> MemberStats:
    stats = MemberStats()
    for n in range(6):
        stats.record("keen", LegResult.ACCEPTED, 4.0, NOON - 3600 + 60 * n)
    return stats


class TestFair:
    """``informed-fair`` keeps the default's fairness guard; plain ``informed`` ignores it."""

    def test_a_member_over_their_share_goes_last(self) -> None:
        stats = keen_took_every_call()
        assert [c.member_id for c in informed(0.5).order([SLOW, KEEN], stats, NOON)] == [
            "keen",
            "slow",
        ]
        fair = informed(0.5, fair=True)
        assert [c.member_id for c in fair.order([SLOW, KEEN], stats, NOON)] == ["slow", "keen"]

    def test_the_member_before_them_rings_nearly_in_full(self) -> None:
        stats = keen_took_every_call()
        plain, fair = informed(0.5), informed(0.5, fair=True)
        args = (SLOW, HuntPolicy(tiers=("t",)), stats)
        unfair = fair.stagger_seconds(*args, tier=[SLOW, KEEN], now=NOON)
        assert unfair == min(fair.give_up("slow", NOON, ADD_FAIR_BELOW), 18.0)
        assert unfair > plain.stagger_seconds(*args, tier=[SLOW, KEEN], now=NOON)

    def test_with_nobody_over_their_share_it_is_plain_informed(self) -> None:
        stats = MemberStats()
        plain, fair = informed(0.5), informed(0.5, fair=True)
        assert fair.order([SLOW, KEEN], stats, NOON) == plain.order([SLOW, KEEN], stats, NOON)
        args = (SLOW, HuntPolicy(tiers=("t",)), stats)
        assert fair.stagger_seconds(*args, tier=[SLOW, KEEN], now=NOON) == plain.stagger_seconds(
            *args, tier=[SLOW, KEEN], now=NOON
        )


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


def test_with_the_share_cap_only_settings_that_keep_it_count(tiny: Path) -> None:
    """``keep_share``: the reach is also held to every specialty's max(linear's share, 50%)."""
    names = ["linear", "adaptive", "informed@1", "informed-fair@0", "informed-fair@1"]
    runs = [run_seed(prepare(tiny), names)]
    assert fixed_strategies([BOUND, *names], "adaptive") == ["linear"]
    reach = informed_reach(runs, "adaptive", keep_share=True)
    kept = [n for n in names[2:] if share_margin(runs[0], n) >= 0.0]
    within = [
        n for n in kept if runs[0][n].rings_per_connected <= runs[0]["linear"].rings_per_connected
    ]
    assert "informed@1" not in kept  # ignores fairness: over linear's share here
    assert within  # informed-fair@0 keeps both
    assert reach.name in within
    assert reach.connect_ratio == min(
        runs[0][n].connect_mean_s / runs[0][BOUND].connect_mean_s for n in within
    )
