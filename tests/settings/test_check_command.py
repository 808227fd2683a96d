"""`callrouter check` as an operator runs it: a real subprocess on real files."""

from __future__ import annotations

from pathlib import Path

from tests.settings.conftest import REPO, Tree, run_cli


class TestShippedTree:
    """The files in the repository pass, with one summary line per file."""

    def test_default_config_in_working_directory(self) -> None:
        result = run_cli("check", cwd=REPO)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "config.yaml: ok, 18 specialties"
        assert "dialplans/barnet.yaml: ok, 2 numbers, 18 specialties, 6 practices" in lines
        assert "dialplans/enfield.yaml: ok, 1 number, 18 specialties, 7 practices" in lines
        rota_lines = [line for line in lines if line.startswith("rotas/")]
        assert rota_lines, result.stdout
        assert all(": ok, " in line and " members, " in line for line in rota_lines)
        assert result.stderr == ""

    def test_config_named_from_elsewhere(self, tmp_path: Path) -> None:
        result = run_cli("check", "--config", str(REPO / "config.yaml"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0].endswith("config.yaml: ok, 18 specialties")

    def test_missing_config_file(self, tmp_path: Path) -> None:
        result = run_cli("check", "--config", "nowhere.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert "nowhere.yaml: file not found" in result.stderr


class TestBrokenCopies:
    """Each kind of mistake exits 2 and names the file and the exact line it was made on."""

    def test_duplicated_key(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/barnet.yaml",
            "name: Barnet GP advice line\n",
            "name: Barnet GP advice line\nname: Barnet again\n",
        )
        result = tree.check()
        assert result.returncode == 2
        assert f"dialplans/barnet.yaml:{line + 1}:1: duplicate key 'name'" in result.stderr

    def test_unknown_field(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/enfield.yaml", "  max_attempts: 3\n", "  max_attempts: 3\n  max_attemps: 4\n"
        )
        result = tree.check()
        assert result.returncode == 2
        assert (
            f"dialplans/enfield.yaml:{line + 1}:3: ivr.max_attemps: unknown field "
            "(did you mean 'max_attempts'?)" in result.stderr
        )

    def test_bad_ring_time(self, tree: Tree) -> None:
        line = tree.replace("dialplans/barnet.yaml", "ring_seconds: 20}", "ring_seconds: 2}")
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("dialplans/barnet.yaml", line, "2}")
        assert (
            f"dialplans/barnet.yaml:{line}:{col}: specialties.paediatrics.ring_seconds: "
            "Input should be greater than or equal to 5, not '2'" in result.stderr
        )

    def test_unknown_specialty(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/barnet.yaml", "specialty: cardiology}", "specialty: cardiolgy}"
        )
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("dialplans/barnet.yaml", line, "cardiolgy")
        assert (
            f"dialplans/barnet.yaml:{line}:{col}: menu.options[0].specialty: unknown specialty "
            "'cardiolgy' (did you mean 'cardiology'?)" in result.stderr
        )

    def test_unknown_team(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/enfield.yaml", "[enfield-renal, ncn-renal]", "[enfield-renl, ncn-renal]"
        )
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("dialplans/enfield.yaml", line, "enfield-renl")
        assert (
            f"dialplans/enfield.yaml:{line}:{col}: specialties.renal.tiers[0]: unknown team "
            "'enfield-renl' (did you mean 'enfield-renal'?)" in result.stderr
        )

    def test_two_options_on_one_digit(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/barnet.yaml",
            '{digits: "4", specialty: haematology}',
            '{digits: "3", specialty: haematology}',
        )
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("dialplans/barnet.yaml", line, '"3"')
        assert (
            f"dialplans/barnet.yaml:{line}:{col}: menu.options[8].submenu.options[3].digits: "
            "two options on digits '3'" in result.stderr
        )

    def test_invalid_contact_uri(self, tree: Tree) -> None:
        line = tree.replace(
            "rotas/cardiology.yaml",
            '"sip:m-card-ncn-2@127.0.0.1:5070"',
            '"http://m-card-ncn-2.example/"',
        )
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("rotas/cardiology.yaml", line, '"http')
        assert f"rotas/cardiology.yaml:{line}:{col}: members[8].uri: " in result.stderr
        assert "sip:user@host" in result.stderr

    def test_yaml_syntax_error(self, tree: Tree) -> None:
        line = tree.replace(
            "dialplans/enfield.yaml", "name: Enfield GP advice line", "name: Enfield: GP line"
        )
        result = tree.check()
        assert result.returncode == 2
        col = tree.col("dialplans/enfield.yaml", line, ": GP")
        assert (
            f"dialplans/enfield.yaml:{line}:{col}: YAML syntax: mapping values are not allowed "
            "in this context" in result.stderr
        )


class TestManyErrors:
    """One run reports every error in every file, each on its own line."""

    def test_errors_in_three_files_all_reported(self, tree: Tree) -> None:
        config_line = tree.replace("config.yaml", "listen_port: 5061 ", "listen_port: 99999")
        dup_line = tree.replace(
            "dialplans/barnet.yaml", "area: barnet\n", "area: barnet\narea: enfield\n"
        )
        ring_line = tree.replace("dialplans/barnet.yaml", "ring_seconds: 20}", "ring_seconds: 2}")
        uri_line = tree.replace(
            "rotas/cardiology.yaml", '"sip:m-card-ncn-2@127.0.0.1:5070"', '"ftp://x"'
        )
        result = tree.check()
        assert result.returncode == 2
        assert result.stdout == ""
        errors = result.stderr.splitlines()
        assert errors[-1] == "4 errors: configuration not loaded"
        ring_col = tree.col("dialplans/barnet.yaml", ring_line, "2}")
        expected = [
            f"config.yaml:{config_line}:16: sip.listen_port:",
            f"dialplans/barnet.yaml:{dup_line + 1}:1: duplicate key 'area'",
            f"dialplans/barnet.yaml:{ring_line}:{ring_col}: specialties.paediatrics.ring_seconds:",
            f"rotas/cardiology.yaml:{uri_line}:10: members[8].uri:",
        ]
        # In reading order: config, then dialplans, then rotas; by line within a file.
        assert len(errors) == len(expected) + 1
        for error, prefix in zip(errors, expected, strict=False):
            assert error.startswith(prefix), (error, prefix)


class TestWarnings:
    """A warning is printed but does not fail the check."""

    def test_policy_the_menu_cannot_reach(self, tree: Tree) -> None:
        tree.replace("dialplans/enfield.yaml", '    - {digits: "27", specialty: oncology}\n', "")
        policy_line = tree.line_of("dialplans/enfield.yaml", "  oncology: {tiers:")
        result = tree.check()
        assert result.returncode == 0, result.stderr
        assert (
            f"dialplans/enfield.yaml:{policy_line}:3: warning: specialties.oncology: "
            "no menu option reaches 'oncology'" in result.stderr
        )
        assert "dialplans/enfield.yaml: ok, 1 number, 17 specialties" in result.stdout
