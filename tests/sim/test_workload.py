"""Workload files: what they accept, and errors that point at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrouter.settings.errors import ConfigError
from callrouter.sim.runner import prepare
from callrouter.sim.workload import read_workload
from tests.sim.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        prepare(path)
    return [str(issue) for issue in caught.value.issues]


class TestValidWorkloads:
    """Shipped and minimal workloads load with the values written."""

    def test_shipped_example_loads(self) -> None:
        source = read_workload(ROOT / "workloads" / "example.yaml")
        assert source.model.teams is not None
        assert source.model.consultants.overrides

    def test_values_and_synthetic_member_names(self, tiny: Path) -> None:
        workload = read_workload(tiny).model
        assert workload.traffic() == [(None, "dermatology", 3.0), (None, "cardiology", 1.5)]
        assert workload.synthetic_members()["cardiology"] == [
            "cardiology-local-1",
            "cardiology-local-2",
            "cardiology-ncn-1",
        ]

    def test_area_prefixed_traffic(self, write) -> None:
        path = write(TINY.replace("  dermatology: 3\n", "  barnet/dermatology: 3\n"))
        prepared = prepare(path)
        assert {line.area for line in prepared.scenario.lines} == {"barnet", "sim"}


class TestWorkloadErrors:
    """Every problem is reported at its own file:line:col with the field's path."""

    def test_unknown_key(self, write) -> None:
        path = write(TINY + "gp_patiense: 3\n")
        [issue] = issues_of(path)
        assert issue.endswith(
            ":20:1: gp_patiense: unknown field (did you mean 'gp_patience_seconds'?)"
        )

    def test_bad_numbers_all_reported(self, write) -> None:
        text = TINY.replace("answer_probability: 0.5", "answer_probability: 1.5").replace(
            "dermatology: 3\n", "dermatology: lots\n"
        )
        found = issues_of(write(text))
        assert any(":6:16: calls_per_hour.dermatology:" in issue for issue in found)
        assert any(":12:23: consultants.answer_probability:" in issue for issue in found)
        assert len(found) == 2

    def test_p90_below_median(self, write) -> None:
        path = write(TINY.replace("{median: 300, p90: 600}", "{median: 300, p90: 60}"))
        [issue] = issues_of(path)
        assert ":18:41:" in issue
        assert "call_length_seconds.p90: must be at least the median" in issue

    def test_unknown_member_in_overrides(self, write) -> None:
        path = write(TINY.replace("dermatology-local-1:", "dermatology-local-9:"))
        [issue] = issues_of(path)
        assert ":16:5: consultants.overrides.dermatology-local-9: no member with this id" in issue

    def test_traffic_without_a_team(self, write) -> None:
        path = write(TINY.replace("  cardiology: 1.5\n", "  cardiology: 1.5\n  renal: 1\n"))
        [issue] = issues_of(path)
        assert ":8:3: calls_per_hour.renal: no team for 'renal'" in issue

    def test_no_teams_and_no_config(self, write) -> None:
        start = TINY.index("teams:")
        end = TINY.index("consultants:")
        path = write(
            TINY[:start]
            + TINY[end:]
            .replace("    dermatology-local-1", "    x-1")
            .replace("    dermatology-local-2", "    x-2")
        )
        found = issues_of(path)
        assert any("teams: no 'teams' here and no --config given" in issue for issue in found)


class TestNewKeysErrors:
    """The realism keys are checked like the rest: each problem at its file:line:col."""

    def test_every_problem_reported(self, write) -> None:
        text = (
            TINY.replace("gp_patience_seconds: 120\n", "gp_patience_seconds: -5\n")
            + "arrivals:\n  by_weekday: {funday: 2}\n  by_hour: {25: 1}\n"
        ).replace(
            "  accept_probability: 0.95\n",
            "  accept_probability: 0.95\n  tiers: {remote: {answer_probability: 0.5}}\n"
            "  away: {per_day: -1}\n",
        )
        found = issues_of(write(text))
        assert len(found) == 5
        joined = "\n".join(found)
        assert (
            ":21:22: gp_patience_seconds: must be more than 0 and at most 86400 seconds" in joined
        )
        assert "arrivals.by_weekday.funday: 'funday' is not a weekday" in joined
        assert "arrivals.by_hour.25: Input should be less than or equal to 23" in joined
        assert ":15:11: consultants.tiers.remote: String should match pattern" in joined
        assert "consultants.away.per_day: Input should be greater than or equal to 0" in joined
