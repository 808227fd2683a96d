"""The simulated world's realism: arrival profiles, behaviour by hour and by tier, availability
sessions, patience as a spread, weekends; each feature changes what it should and nothing else."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from callrouter.sim.bound import BOUND
from callrouter.sim.draws import AwaySpells, draw_away, service_days
from callrouter.sim.runner import prepare, run_seed, run_strategy
from callrouter.sim.scenario import LONDON, behaviour_of
from callrouter.sim.tables import to_json
from callrouter.sim.workload import Away, Consultants, Spread, read_workload

ONE_TEAM = """\
seed: 21
start: 2026-03-02
days: {days}
hours: ["08:00", "18:00"]
calls_per_hour: {{renal: {rate}}}
teams: {{renal: {{local: 2, ncn: 1}}}}
consultants:
  answer_probability: 0.8
  answer_delay_seconds: {{median: 6, p90: 12}}
{extra}call_length_seconds: {{median: 120, p90: 240}}
"""


def workload(write, *, days: int = 5, rate: float = 3.0, extra: str = "", tail: str = "") -> Path:
    return write(ONE_TEAM.format(days=days, rate=rate, extra=extra) + tail)


class TestArrivalProfile:
    """Calls per hour follow the hour and weekday factors."""

    def test_an_hour_with_factor_zero_gets_no_calls(self, write) -> None:
        path = workload(write, tail="arrivals: {by_hour: {12: 0, 14: 1}}\n")
        hours = Counter(prepare(path).arrivals.hours)
        assert hours[12] == 0
        assert hours[13] == 0
        assert hours[11] > 0
        assert hours[14] > 0

    def test_busy_mondays(self, write) -> None:
        path = workload(write, days=20, rate=4.0, tail="arrivals: {by_weekday: {mon: 3}}\n")
        prepared = prepare(path)
        days = Counter(
            datetime.fromtimestamp(t, UTC).astimezone(LONDON).weekday()
            for t in prepared.arrivals.times
        )
        others = (days[1] + days[2] + days[3] + days[4]) / 4
        assert 2.4 < days[0] / others < 3.6  # 160 Monday calls expected against 53 a day

    def test_weekends_are_simulated_when_asked(self, write) -> None:
        assert service_days(date(2026, 3, 2), 7, weekends=True)[-1] == date(2026, 3, 8)
        assert service_days(date(2026, 3, 2), 7)[-1] == date(2026, 3, 10)
        path = workload(write, days=7, tail="weekends: true\n")
        weekdays = {
            datetime.fromtimestamp(t, UTC).astimezone(LONDON).weekday()
            for t in prepare(path).arrivals.times
        }
        assert weekdays == set(range(7))


class TestBehaviourByHourAndTier:
    """Habits come from the member, else their tier, else the workload, and change by hour."""

    def test_member_over_tier_over_workload(self, tiny: Path) -> None:
        consultants = Consultants.model_validate(
            {
                "answer_probability": 0.5,
                "accept_probability": 0.9,
                "by_hour": {9: 0.5},
                "tiers": {"ncn": {"answer_probability": 0.2, "by_hour": {12: 2.0}}},
                "overrides": {"x": {"answer_probability": 0.7}},
            }
        )
        local = behaviour_of(consultants, "local", "someone")
        ncn = behaviour_of(consultants, "ncn", "someone")
        member = behaviour_of(consultants, "ncn", "x")
        assert (local.answer_probability, ncn.answer_probability) == (0.5, 0.2)
        assert member.answer_probability == 0.7  # the member's own figure wins
        assert member.by_hour == ncn.by_hour  # … and the rest comes from the tier
        assert member.accept_probability == 0.9
        assert local.answers_at(8) == 0.5
        assert local.answers_at(10) == 0.25  # from 09:00 on, half as often
        assert ncn.answers_at(11) == 0.2
        assert ncn.answers_at(13) == 0.4

    def test_nobody_answers_in_a_closed_hour(self, write) -> None:
        # Everyone answers nothing from 12:00 to 13:00: calls of that hour never connect.
        path = workload(write, days=8, extra="  by_hour: {12: 0, 13: 1}\n")
        prepared = prepare(path)
        results = run_seed(prepared, ["linear", "adaptive"])
        hours = prepared.arrivals.hours
        for name, summary in results.items():
            connected = Counter(hours[i] for i in summary.connect_by_call)
            assert connected[12] == 0, name
            assert connected[11] > 10, name


class TestAvailabilitySessions:
    """Away for a spell (answering nothing), then back."""

    def test_spells_merge_and_say_when_the_member_is_back(self) -> None:
        spells = AwaySpells([10.0, 50.0], [20.0, 60.0])
        assert not spells.away_at(9.9)
        assert spells.away_at(10.0)
        assert not spells.away_at(20.0)
        assert spells.back_at(15.0) == 20.0
        assert spells.back_at(30.0) == 30.0
        drawn = draw_away(
            1,
            "m",
            Away(per_day=12, minutes=Spread(median=90, p90=180)),
            [date(2026, 3, 2)],
            opens=(8, 0),
            closes=(18, 0),
            zone=LONDON,
        )
        assert drawn.starts == sorted(drawn.starts)
        assert all(e > s for s, e in zip(drawn.starts, drawn.ends, strict=True))
        assert all(
            e < s for e, s in zip(drawn.ends, drawn.starts[1:], strict=False)
        )  # merged: no overlap

    def test_spells_follow_the_member_not_the_team(self) -> None:
        away = Away(per_day=2)
        days = service_days(date(2026, 3, 2), 3)
        one = draw_away(5, "renal-local-1", away, days, opens=(8, 0), closes=(18, 0), zone=LONDON)
        two = draw_away(5, "renal-local-1", away, days, opens=(8, 0), closes=(18, 0), zone=LONDON)
        other = draw_away(5, "renal-local-2", away, days, opens=(8, 0), closes=(18, 0), zone=LONDON)
        assert one == two
        assert one != other

    def test_a_member_always_away_connects_nothing(self, write) -> None:
        always = (
            "  overrides:\n"
            "    renal-local-1: {away: {per_day: 24, minutes: {median: 600, p90: 900}}}\n"
        )
        prepared = prepare(workload(write, extra=always))
        spells = prepared.away["renal-local-1"]
        assert "renal-local-2" not in prepared.away  # never away: no spells drawn
        day = prepared.arrivals.times[0]
        assert all(spells.away_at(day + minute * 60) for minute in range(600))
        results = run_seed(prepared, ["linear", "adaptive"])
        for name, summary in results.items():
            assert summary.per_consultant["renal-local-1"] == 0, name
        assert results["linear"].per_consultant["renal-local-2"] > 50

    def test_sessions_away_cost_connections(self, write) -> None:
        base = run_strategy(prepare(workload(write, days=8)), "linear")
        spell = "  away: {per_day: 3, minutes: {median: 90, p90: 150}}\n"
        away = run_strategy(prepare(workload(write, days=8, extra=spell)), "linear")
        assert away.calls == base.calls
        assert away.connect_mean_s > base.connect_mean_s + 3


class TestPatience:
    """Patience is drawn per call from a spread; a fixed figure is a spread of zero width."""

    def test_fixed_patience_is_a_zero_width_spread(self, write) -> None:
        fixed = read_workload(workload(write, tail="gp_patience_seconds: 90\n")).model
        assert fixed.patience() == Spread(median=90, p90=90)
        assert fixed.patience().sigma == 0.0

    def test_impatient_gps_abandon_more(self, write) -> None:
        slow = "  overrides: {renal-local-1: {answer_probability: 0.2}, "
        slow += "renal-local-2: {answer_probability: 0.3}}\n"
        patient = run_strategy(prepare(workload(write, days=6, extra=slow)), "linear")
        hasty = run_strategy(
            prepare(
                workload(
                    write,
                    days=6,
                    extra=slow,
                    tail="gp_patience_seconds: {median: 25, p90: 40}\n",
                )
            ),
            "linear",
        )
        assert hasty.abandoned > patient.abandoned + 20
        assert hasty.ftcr < patient.ftcr


class TestDeterminismWithEveryFeature:
    """Same seed, same figures, with profiles, hours, tiers, sessions and patience spreads."""

    def test_same_seed_same_json(self) -> None:
        path = Path(__file__).resolve().parents[2] / "workloads" / "clinic-sessions.yaml"
        first = prepare(path).rerun(days=3)
        second = prepare(path).rerun(days=3)
        names = ["adaptive", "staggered"]
        assert to_json([run_seed(first, names)], [17]) == to_json([run_seed(second, names)], [17])
        assert first.away  # the workload's locals do go away
        assert run_seed(first, names)[BOUND].calls > 50


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seed_rerun_changes_spells_and_arrivals(write, seed: int) -> None:
    path = workload(write, extra="  away: {per_day: 2}\n")
    prepared = prepare(path)
    other = prepared.rerun(seed=seed)
    assert other.arrivals.times != prepared.arrivals.times
    assert other.away != prepared.away
    assert other.workload.seed == seed
