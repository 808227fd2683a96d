"""The shipped rotas: every specialty staffed in both areas, and the features they show off."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrouter.oncall.planner import RotaPlanSource
from callrouter.oncall.rota import explain, on_call
from callrouter.settings.loader import Settings, load_settings
from callrouter.settings.rota import BankHolidays, TeamKind
from callrouter.settings.rota_checks import dst_gap_problems, reference_problems
from tests.rota.helpers import ids, london

REPO = Path(__file__).resolve().parents[2]
SPECIALTIES = (
    "cardiology", "dermatology", "mental-health", "paediatrics", "gastroenterology",
    "respiratory", "diabetes-endocrinology", "neurology", "rheumatology", "urology",
    "gynaecology", "haematology", "renal", "elderly-care", "ent", "ophthalmology",
    "general-surgery", "oncology",
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "config.yaml")


class TestShape:
    """Three teams per specialty, sized as briefed, all reachable only on loopback."""

    def test_teams(self, settings: Settings) -> None:
        teams = settings.rotas.teams
        assert len(SPECIALTIES) == 18
        for slug in SPECIALTIES:
            assert teams[f"barnet-{slug}"].kind is TeamKind.LOCAL
            assert teams[f"enfield-{slug}"].kind is TeamKind.LOCAL
            assert teams[f"ncn-{slug}"].kind is TeamKind.NCN
            assert {t.specialty for t in settings.rotas.teams_for(slug)} == {slug}
        assert len(teams) == 54

    def test_team_sizes(self, settings: Settings) -> None:
        for team in settings.rotas.teams.values():
            people = {m for layer in team.layers for m in layer.members}
            low, high = (4, 6) if team.kind is TeamKind.NCN else (3, 4)
            assert low <= len(people) <= high, team.id

    def test_loopback_uris_and_names(self, settings: Settings) -> None:
        for member in settings.rotas.members.values():
            assert member.uri == f"sip:{member.id}@127.0.0.1:5070"
            assert member.name.startswith("Dr ")

    def test_no_rota_problems(self, settings: Settings) -> None:
        assert reference_problems(settings.rotas) == []
        assert dst_gap_problems(settings.rotas) == []

    def test_features_are_shown(self, settings: Settings) -> None:
        layers = [layer for team in settings.rotas.teams.values() for layer in team.layers]
        assert any(layer.bank_holidays is BankHolidays.ONLY for layer in layers)
        assert any(layer.ics is not None and layer.ics.shifts for layer in layers)
        assert any(team.overrides for team in settings.rotas.teams.values())


class TestWhoIsOnCall:
    """On an ordinary weekday everyone has cover; on a bank holiday only the holiday layers."""

    @pytest.mark.parametrize("area", ["barnet", "enfield"])
    def test_every_specialty_staffed_on_a_weekday(self, settings: Settings, area: str) -> None:
        source = RotaPlanSource(settings.dialplans, settings.rotas)
        now = london("2026-03-04 10:00").timestamp()
        for slug in SPECIALTIES:
            plan = source.plan(area, slug, now)
            assert [tier.team for tier in plan.tiers] == [f"{area}-{slug}", f"ncn-{slug}"]
            assert all(tier.members for tier in plan.tiers), (area, slug)

    def test_early_may_bank_holiday(self, settings: Settings) -> None:
        at = london("2026-05-04 10:00")
        assert on_call(settings.rotas, "barnet-cardiology", at) == ()
        found = on_call(settings.rotas, "ncn-cardiology", at)
        assert [c.why for c in found] == [
            "layer bank-holidays (primary)",
            "layer bank-holidays (backup 1)",
        ]
        assert on_call(settings.rotas, "ncn-dermatology", at) == ()

    def test_annual_leave_override(self, settings: Settings) -> None:
        before = ids(on_call(settings.rotas, "barnet-dermatology", london("2026-03-02 07:59")))
        during = on_call(settings.rotas, "barnet-dermatology", london("2026-03-02 08:00"))
        assert before == []  # Monday before the weekday window opens
        assert "m-derm-barnet-3" not in ids(during)
        assert ids(on_call(settings.rotas, "barnet-dermatology", london("2026-03-09 08:00")))

    def test_winter_cover_goes_first(self, settings: Settings) -> None:
        found = on_call(settings.rotas, "enfield-cardiology", london("2026-12-21 08:00"))
        assert found[0].member_id == "m-card-ncn-2"
        assert found[0].why == "override 2026-12-21 added: winter pressures cover"
        after = on_call(settings.rotas, "enfield-cardiology", london("2026-12-24 18:30"))
        assert after == ()

    def test_tuesday_clinic_from_the_calendar(self, settings: Settings) -> None:
        result = explain(settings.rotas, "barnet-dermatology", london("2026-03-17 09:00"))
        assert result.candidates[0].member_id == "m-derm-barnet-3"
        assert result.candidates[0].why == (
            "layer tuesday-clinic (ics barnet-dermatology-clinic.ics)"
        )
        assert result.layers[0].applies
