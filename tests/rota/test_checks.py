"""DST-gap and reference checks, and the wall-clock to instant rule they rest on."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from callrouter.core.localtime import Gap, gaps, instant, is_gap
from callrouter.oncall.rota import on_call
from callrouter.settings.rota_checks import (
    RotaProblem,
    dst_gap_problems,
    reference_problems,
    specialty_problems,
)
from tests.rota.helpers import DAILY, LONDON, WEEKDAY_DAYS, ids, rotas, team, utc


def layer(rotation: str, restrictions: str = "") -> str:
    text = f"""\
    - name: odd
      members: [ann, bob]
      rotation: {rotation}
"""
    if restrictions:
        text += f"      restrictions:\n        - {restrictions}\n"
    return text


class TestLocalTime:
    """A wall-clock boundary is the first instant the clock reads it or later."""

    def test_london_gap_2026(self) -> None:
        assert gaps(LONDON, 2026) == (Gap(datetime(2026, 3, 29, 1), datetime(2026, 3, 29, 2)),)
        assert gaps(ZoneInfo("UTC"), 2026) == ()

    def test_gap_in_another_zone(self) -> None:
        (gap,) = gaps(ZoneInfo("America/New_York"), 2026)
        assert gap == Gap(datetime(2026, 3, 8, 2), datetime(2026, 3, 8, 3))

    def test_ordinary_time(self) -> None:
        assert instant(datetime(2026, 3, 29, 8), LONDON) == utc("2026-03-29 07:00")

    def test_time_in_the_gap_is_the_end_of_the_gap(self) -> None:
        assert is_gap(datetime(2026, 3, 29, 1, 30), LONDON)
        assert instant(datetime(2026, 3, 29, 1, 30), LONDON) == utc("2026-03-29 01:00")

    def test_repeated_time_is_its_first_occurrence(self) -> None:
        assert not is_gap(datetime(2026, 10, 25, 1, 30), LONDON)
        assert instant(datetime(2026, 10, 25, 1, 30), LONDON) == utc("2026-10-25 00:30")


class TestDstGapProblems:
    """A handoff or window edge that never happens on a day it would take effect is flagged."""

    def test_daily_handoff_at_0130_is_flagged(self) -> None:
        r = rotas(team(layer('{start: "2026-01-05 01:30", turn: daily, handoff: "01:30"}')))
        (problem,) = dst_gap_problems(r)
        assert problem.team_id == "t"
        assert problem.loc == ("layers", 0, "rotation", "handoff")
        assert "01:30 does not exist on Sun 2026-03-29" in problem.message
        assert "01:00-02:00 is skipped" in problem.message
        assert problem.message.startswith("layer odd: the handoff at")

    def test_without_handoff_the_start_is_blamed(self) -> None:
        r = rotas(team(layer('{start: "2026-01-05 01:30", turn: daily}')))
        assert [p.loc for p in dst_gap_problems(r)] == [("layers", 0, "rotation", "start")]

    def test_weekly_sunday_0130_is_flagged_but_monday_is_not(self) -> None:
        sunday = rotas(team(layer('{start: "2026-01-04 01:30", turn: weekly}')))
        monday = rotas(team(layer('{start: "2026-01-05 01:30", turn: weekly}')))
        assert len(dst_gap_problems(sunday)) == 1
        assert dst_gap_problems(monday) == []

    def test_times_outside_the_gap_and_in_the_autumn_hour_pass(self) -> None:
        for clock in ("00:59", "02:00", "08:00"):
            r = rotas(team(layer(f'{{start: "2026-01-05 {clock}", turn: daily}}')))
            assert dst_gap_problems(r) == [], clock
        assert dst_gap_problems(rotas(team(WEEKDAY_DAYS))) == []

    def test_restriction_edges(self) -> None:
        rotation = '{start: "2026-01-05 08:00", turn: daily}'
        starts = rotas(team(layer(rotation, '{days: [sun], from: "01:30", to: "06:00"}')))
        ends = rotas(team(layer(rotation, '{days: [sat], from: "22:00", to: "01:15"}')))
        weekday = rotas(team(layer(rotation, '{days: [mon], from: "01:30", to: "06:00"}')))
        assert [p.loc for p in dst_gap_problems(starts)] == [
            ("layers", 0, "restrictions", 0, "from")
        ]
        (problem,) = dst_gap_problems(ends)
        assert problem.loc == ("layers", 0, "restrictions", 0, "to")
        assert "window end 01:15" in problem.message
        assert dst_gap_problems(weekday) == []

    def test_override_in_the_gap(self) -> None:
        r = rotas(team(DAILY, '    - {from: "2026-03-29 01:30", to: "2026-03-29 09:00", '
                              "member: dan}\n"))
        assert [p.loc for p in dst_gap_problems(r)] == [("overrides", 0, "from")]

    def test_a_zone_without_dst_has_no_problems(self) -> None:
        r = rotas(team(layer('{start: "2026-01-05 01:30", turn: daily}')))
        assert dst_gap_problems(r, ZoneInfo("UTC")) == []

    def test_gap_handoff_still_resolves_at_the_end_of_the_gap(self) -> None:
        """Refused by the loader, but defined: the 01:30 handoff happens at 02:00 BST."""
        r = rotas(team(layer('{start: "2026-01-05 01:30", turn: daily}')))
        before = ids(on_call(r, "t", utc("2026-03-29 00:59")))
        after = ids(on_call(r, "t", utc("2026-03-29 01:00")))
        assert before != after


class TestReferenceProblems:
    """Member ids must exist; a member listing specialties must list the team's."""

    def test_unknown_members_in_layers_and_overrides(self) -> None:
        r = rotas(
            team(
                """\
    - name: days
      members: [ann, zed]
      rotation: {start: "2026-01-05 08:00", turn: daily}
""",
                '    - {from: "2026-03-02 08:00", to: "2026-03-03 08:00", member: yan, '
                "replaces: xi}\n",
            )
        )
        assert reference_problems(r) == [
            RotaProblem("t", ("layers", 0, "members", 1), "no member has id 'zed'"),
            RotaProblem("t", ("overrides", 0, "member"), "no member has id 'yan'"),
            RotaProblem("t", ("overrides", 0, "replaces"), "no member has id 'xi'"),
        ]

    def test_specialty_mismatch(self) -> None:
        text = team(DAILY).replace(
            '{id: bob, name: Dr B. Birch, uri: "sip:bob@127.0.0.1:5070"}',
            '{id: bob, name: Dr B. Birch, uri: "sip:bob@127.0.0.1:5070", specialties: [renal]}',
        )
        (problem,) = reference_problems(rotas(text))
        assert problem.loc == ("layers", 0, "members", 1)
        assert "lists specialties renal, not dermatology" in problem.message

    def test_unread_calendar_is_a_problem(self) -> None:
        r = rotas(team("    - {name: cal, ics: cover.ics}\n"))
        (problem,) = reference_problems(r)
        assert problem.loc == ("layers", 0, "ics")
        assert "was not read" in problem.message

    def test_specialty_catalogue(self) -> None:
        r = rotas(team(DAILY))
        assert specialty_problems(r, {"dermatology"}) == []
        (problem,) = specialty_problems(r, {"cardiology"})
        assert problem.loc == ("specialty",)
