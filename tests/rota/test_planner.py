"""Hunt plans: the policy's tiers in order, named by team kind, with who is on call and why."""

from __future__ import annotations

from typing import Any

import pytest

from callrouter.core.plan import Candidate
from callrouter.oncall.planner import (
    RotaPlanSource,
    UnknownAreaError,
    UnknownSpecialtyError,
    build_hunt_plan,
)
from callrouter.oncall.rota import UnknownTeamError
from callrouter.settings.dialplan import Dialplan, Strategy
from tests.rota.helpers import MEMBERS, london, rotas

TEAMS = (
    MEMBERS
    + """
teams:
  - id: barnet-dermatology
    specialty: dermatology
    kind: local
    name: Barnet dermatology
    layers:
      - name: weekday-days
        members: [ann, bob, cat]
        rotation: {start: "2026-01-05 08:00", turn: weekly}
        restrictions:
          - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:30"}
        bank_holidays: skip
  - id: ncn-dermatology
    specialty: dermatology
    kind: ncn
    name: NCN dermatology
    layers:
      - name: days
        members: [dan, eve]
        rotation: {start: "2026-01-05 08:00", turn: daily}
"""
)


def dialplan(**specialties: Any) -> Dialplan:
    return Dialplan.model_validate(
        {
            "area": "barnet",
            "name": "Barnet",
            "numbers": ["02080000001"],
            "prompts": {"greeting": "Hello."},
            "menu": {"options": [{"digits": "1", "specialty": "dermatology"}]},
            "specialties": specialties
            or {
                "dermatology": {
                    "tiers": ["barnet-dermatology", "ncn-dermatology"],
                    "strategy": "linear",
                    "ring_seconds": 20,
                }
            },
        }
    )


R = rotas(TEAMS)


class TestBuildHuntPlan:
    """Tiers follow the policy; each tier holds its team's on-call members in rota order."""

    def test_local_then_ncn(self) -> None:
        # Tuesday 3 March 2026: week 8 -> cat, ann, bob; NCN day 57 -> 57 % 2 = 1 -> eve, dan.
        plan = build_hunt_plan(dialplan(), R, "dermatology", london("2026-03-03 10:00"))
        assert [(tier.name, tier.team) for tier in plan.tiers] == [
            ("local", "barnet-dermatology"),
            ("ncn", "ncn-dermatology"),
        ]
        assert plan.tiers[0].members[0] == Candidate(
            "cat", "Dr C. Cedar", "sips:cat@example.org", "layer weekday-days (primary)"
        )
        assert [c.member_id for c in plan.tiers[1].members] == ["eve", "dan"]
        assert [c.why for c in plan.tiers[1].members] == [
            "layer days (primary)",
            "layer days (backup 1)",
        ]
        assert plan.policy.strategy is Strategy.LINEAR
        assert plan.policy.ring_seconds == 20
        assert (plan.area, plan.specialty) == ("barnet", "dermatology")
        assert not plan.is_empty()

    def test_policy_order_is_kept_even_ncn_first(self) -> None:
        plan = build_hunt_plan(
            dialplan(dermatology={"tiers": ["ncn-dermatology", "barnet-dermatology"]}),
            R,
            "dermatology",
            london("2026-03-03 10:00"),
        )
        assert [tier.name for tier in plan.tiers] == ["ncn", "local"]

    def test_empty_local_tier_stays_in_the_plan(self) -> None:
        plan = build_hunt_plan(dialplan(), R, "dermatology", london("2026-03-07 10:00"))
        assert plan.tiers[0].members == ()
        assert plan.tiers[1].members != ()

    def test_unknown_specialty(self) -> None:
        with pytest.raises(UnknownSpecialtyError, match="renal"):
            build_hunt_plan(dialplan(), R, "renal", london("2026-03-03 10:00"))

    def test_unknown_team(self) -> None:
        plan_for = dialplan(dermatology={"tiers": ["enfield-dermatology"]})
        with pytest.raises(UnknownTeamError, match="enfield-dermatology"):
            build_hunt_plan(plan_for, R, "dermatology", london("2026-03-03 10:00"))


class TestRotaPlanSource:
    """POSIX ``now`` in, the same plan as for that instant in London out."""

    source = RotaPlanSource({"barnet": dialplan()}, R)

    def test_same_plan_as_for_the_instant(self) -> None:
        at = london("2026-03-30 08:00")  # 07:00 UTC, the first Monday in BST
        assert self.source.plan("barnet", "dermatology", at.timestamp()) == build_hunt_plan(
            dialplan(), R, "dermatology", at
        )

    def test_minute_before_a_handoff(self) -> None:
        before = london("2026-03-30 08:00").timestamp() - 60
        plan = self.source.plan("barnet", "dermatology", before)
        assert plan.tiers[0].members == ()  # 07:59 Monday: before the weekday window

    def test_unknown_area(self) -> None:
        with pytest.raises(UnknownAreaError, match="enfield"):
            self.source.plan("enfield", "dermatology", 0.0)

    def test_repr_shows_what_it_serves(self) -> None:
        assert repr(self.source) == (
            "<RotaPlanSource areas=['barnet'] teams=2 zone=Europe/London>"
        )
