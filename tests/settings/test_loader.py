"""load_settings on copies of the shipped tree: the result, and the checks across files."""

from __future__ import annotations

from pathlib import Path

from callrouter.settings.errors import ConfigIssue
from tests.settings.conftest import Tree

EXTRA_ROTA = """\
members:
  - id: m-extra-1
    name: Dr Extra
    uri: "sip:m-extra-1@127.0.0.1:5070"
teams:
  - id: barnet-extra
    specialty: cardiology
    kind: local
    name: Extra cover
    layers:
      - name: nights
        members: [m-extra-1]
        rotation: {start: "2026-01-05 08:00", turn: daily}
"""


def at(issues: tuple[ConfigIssue, ...], name: str) -> list[tuple[int | None, str, str]]:
    """(line, field, message) of the issues in the file called ``name``."""
    return [(i.line, i.field, i.message) for i in issues if i.path.name == name]


class TestLoadedSettings:
    """A good tree gives frozen settings with resolved paths and every file."""

    def test_contents(self, tree: Tree) -> None:
        settings = tree.load()
        assert sorted(settings.dialplans) == ["barnet", "enfield"]
        assert settings.base_dir == tree.root.resolve()
        assert settings.config.paths.rotas == tree.root.resolve() / "rotas"
        assert settings.config.database.path == tree.root.resolve() / "var/callrouter.sqlite3"
        assert "barnet-cardiology" in settings.rotas.teams
        assert "ncn-oncology" in settings.rotas.teams
        assert settings.warnings == ()
        names = [source.path.name for source in settings.sources]
        assert names[:3] == ["config.yaml", "barnet.yaml", "enfield.yaml"]
        assert len(names) == 3 + len(list((tree.root / "rotas").glob("*.yaml")))

    def test_dialplan_for_any_written_form(self, tree: Tree) -> None:
        settings = tree.load()
        for called in ("02080000001", "+442080000001", "00442080000001"):
            found = settings.dialplan_for(called)
            assert found is not None
            assert found.area == "barnet"
        enfield = settings.dialplan_for("+44 20 8000 0002")
        assert enfield is not None
        assert enfield.area == "enfield"
        assert settings.dialplan_for("02080000009") is None

    def test_ics_layers_are_read(self, tree: Tree) -> None:
        team = tree.load().rotas.teams["barnet-dermatology"]
        calendars = [layer.ics for layer in team.layers if layer.ics is not None]
        assert calendars
        assert all(calendar.shifts is not None for calendar in calendars)

    def test_editor_backups_and_dotfiles_ignored(self, tree: Tree) -> None:
        tree.write("dialplans/.#barnet.yaml", "not: [valid\n")
        tree.write("dialplans/barnet.yaml~", "not: [valid\n")
        assert sorted(tree.load().dialplans) == ["barnet", "enfield"]


class TestDialplanChecks:
    """Dialplans must agree with the catalogue, the rotas and each other."""

    def test_team_of_another_specialty(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/barnet.yaml",
            "cardiology: {tiers: [barnet-cardiology,",
            "cardiology: {tiers: [barnet-dermatology,",
        )
        assert at(tree.issues(), "barnet.yaml") == [
            (
                line,
                "specialties.cardiology.tiers[0]",
                "team 'barnet-dermatology' answers 'dermatology', not 'cardiology'",
            )
        ]

    def test_team_twice_in_tiers(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/enfield.yaml",
            "renal: {tiers: [enfield-renal, ncn-renal]}",
            "renal: {tiers: [enfield-renal, enfield-renal]}",
        )
        assert at(tree.issues(), "enfield.yaml") == [
            (line, "specialties.renal.tiers[1]", "team 'enfield-renal' is already a tier")
        ]

    def test_two_dialplans_serve_one_number(self, tree: Tree) -> None:
        barnet_line = tree.line_of("dialplans/barnet.yaml", '"02080000001"')
        line = tree.replace("dialplans/enfield.yaml", '"02080000002"', '"+442080000001"')
        assert at(tree.issues(), "enfield.yaml") == [
            (line, "numbers[0]", f"number also served by barnet.yaml:{barnet_line}")
        ]

    def test_one_number_twice_in_one_dialplan_warns(self, tree: Tree) -> None:
        line = tree.replace("dialplans/barnet.yaml", '"02080000011"', '"+442080000001"')
        settings = tree.load()
        assert [(w.path.name, w.line, w.message) for w in settings.warnings] == [
            ("barnet.yaml", line, "the same number as numbers[0] once normalised")
        ]

    def test_same_area_twice(self, tree: Tree) -> None:
        line = tree.replace("dialplans/enfield.yaml", "area: enfield", "area: barnet")
        issues = at(tree.issues(), "enfield.yaml")
        assert (line, "area", "area also defined at barnet.yaml:2") in issues

    def test_menu_option_without_policy(self, tree: Tree) -> None:
        tree.replace("dialplans/barnet.yaml", "  renal: {tiers: [barnet-renal, ncn-renal]}\n", "")
        line = tree.line_of("dialplans/barnet.yaml", "specialty: renal}")
        assert at(tree.issues(), "barnet.yaml") == [
            (
                line,
                "menu.options[8].submenu.options[4].specialty",
                "no hunt policy for 'renal': add it under 'specialties'",
            )
        ]

    def test_policy_for_unknown_specialty(self, tree: Tree) -> None:
        tree.replace("config.yaml", "  oncology: Oncology\n", "")
        menu_line = tree.line_of("dialplans/enfield.yaml", "specialty: oncology}")
        policy_line = tree.line_of("dialplans/enfield.yaml", "  oncology: {tiers")
        issues = tree.issues()
        enfield = [(line, field) for line, field, _ in at(issues, "enfield.yaml")]
        assert enfield == [
            (menu_line, "menu.options[17].specialty"),
            (policy_line, "specialties.oncology"),
        ]
        rota_messages = [message for _, _, message in at(issues, "oncology.yaml")]
        assert rota_messages
        assert all(m.startswith("unknown specialty 'oncology'") for m in rota_messages)

    def test_practice_number_listed_twice(self, tree: Tree) -> None:
        first = tree.line_of("dialplans/barnet.yaml", '"02079460121"')
        line = tree.replace("dialplans/barnet.yaml", '"02079460141"', '"+442079460121"')
        assert at(tree.issues(), "barnet.yaml") == [
            (
                line,
                "practices[4].numbers[0]",
                f"caller number already listed at barnet.yaml:{first}",
            )
        ]


class TestRotaChecks:
    """Rota files must agree with each other; the rota helper's checks land on their lines."""

    def test_member_defined_in_two_files(self, tree: Tree) -> None:
        first = tree.line_of("rotas/cardiology.yaml", "- id: m-card-barnet-1")
        tree.write("rotas/zz-extra.yaml", EXTRA_ROTA.replace("m-extra-1", "m-card-barnet-1"))
        assert at(tree.issues(), "zz-extra.yaml") == [
            (
                2,
                "members[0].id",
                f"member 'm-card-barnet-1' is also defined at cardiology.yaml:{first}",
            )
        ]

    def test_team_defined_in_two_files(self, tree: Tree) -> None:
        tree.write("rotas/zz-extra.yaml", EXTRA_ROTA.replace("barnet-extra", "ncn-renal"))
        (issue,) = at(tree.issues(), "zz-extra.yaml")
        assert issue[:2] == (6, "teams[0].id")
        assert issue[2].startswith("team 'ncn-renal' is also defined at renal.yaml:")

    def test_unknown_member(self, tree: Tree) -> None:
        tree.write("rotas/zz-extra.yaml", EXTRA_ROTA.replace("[m-extra-1]", "[m-nobody]"))
        assert at(tree.issues(), "zz-extra.yaml") == [
            (12, "teams[0].layers[0].members[0]", "no member has id 'm-nobody'")
        ]

    def test_handoff_in_the_dst_gap(self, tree: Tree) -> None:
        tree.write(
            "rotas/zz-extra.yaml", EXTRA_ROTA.replace("2026-01-05 08:00", "2026-03-20 01:30")
        )
        (issue,) = at(tree.issues(), "zz-extra.yaml")
        assert issue[:2] == (13, "teams[0].layers[0].rotation.start")
        assert "01:30 does not exist on Sun 2026-03-29" in issue[2]

    def test_missing_calendar(self, tree: Tree) -> None:
        line = tree.replace(
            "rotas/dermatology.yaml",
            "ics: barnet-dermatology-clinic.ics",
            "ics: missing.ics",
        )
        (issue,) = at(tree.issues(), "dermatology.yaml")
        assert issue[:2] == (line, "teams[0].layers[0].ics")
        assert "missing.ics" in issue[2]


class TestWholeTree:
    """Errors in every file come back together; a missing directory is named in config.yaml."""

    def test_bad_config_does_not_hide_dialplan_errors(self, tree: Tree) -> None:
        tree.replace("config.yaml", "timezone: Europe/London", "timezone: Mars/Olympus")
        tree.replace("dialplans/enfield.yaml", "nhs_number: off", "nhs_number: sometimes")
        files = {issue.path.name for issue in tree.issues()}
        assert files == {"config.yaml", "enfield.yaml"}

    def test_missing_rota_directory(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "rotas: rotas", "rotas: nowhere")
        assert at(tree.issues(), "config.yaml") == [
            (line, "paths.rotas", f"not a directory: {Path(tree.root.resolve(), 'nowhere')}")
        ]

    def test_empty_dialplan_directory(self, tree: Tree) -> None:
        (tree.root / "empty").mkdir()
        tree.replace("config.yaml", "dialplans: dialplans", "dialplans: empty")
        (issue,) = at(tree.issues(), "config.yaml")
        assert issue[1:] == ("paths.dialplans", f"no *.yaml files in {tree.root.resolve()}/empty")

    def test_rota_checks_run_despite_a_dialplan_error(self, tree: Tree) -> None:
        tree.replace("dialplans/enfield.yaml", "nhs_number: off", "nhs_number: sometimes")
        tree.write("rotas/zz-extra.yaml", EXTRA_ROTA.replace("[m-extra-1]", "[m-nobody]"))
        files = {issue.path.name for issue in tree.issues()}
        assert files == {"enfield.yaml", "zz-extra.yaml"}
