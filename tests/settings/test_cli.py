"""The command-line wiring: subcommands register themselves; broken ones do not break check."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from callrouter import cli
from tests.settings.conftest import REPO


class TestMain:
    """main() returns the exit status of the chosen handler."""

    def test_no_command_prints_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main([]) == 2
        assert "check" in capsys.readouterr().err

    def test_check_in_process(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["check", "--config", str(REPO / "config.yaml")]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].endswith("config.yaml: ok, 18 specialties")

    def test_check_failure_goes_to_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "config.yaml").write_text("specialties: {}\n", encoding="utf-8")
        assert cli.main(["check", "--config", str(tmp_path / "config.yaml")]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert "config.yaml:1:1: specialties: Dictionary should have at least 1 item" in lines[0]
        assert f"config.yaml:1:1: paths.dialplans: not a directory: {tmp_path}" in lines[1]
        assert lines[-1] == "3 errors: configuration not loaded"


class TestWiring:
    """Every subcommand is registered; cdr takes its defaults from config.yaml."""

    def test_every_subcommand_is_there(self) -> None:
        parser = cli.build_parser()
        for command in ("check", "oncall", "run", "simulate", "cdr"):
            with pytest.raises(SystemExit) as exit_info:
                parser.parse_args([command, "--help"])
            assert exit_info.value.code == 0

    def test_cdr_defaults_come_from_config(self) -> None:
        argv = ["cdr", "--config", str(REPO / "config.yaml"), "purge"]
        args = cli.build_parser(argv).parse_args(argv)
        assert args.db == REPO / "var" / "callrouter.sqlite3"
        assert args.older_than_days == 2922

    def test_handlers_follow_the_convention(self) -> None:
        parser = cli.build_parser()
        args = parser.parse_args(["check"])
        assert args.func is cli.run_check
        assert args.config == Path("config.yaml")
        assert isinstance(parser, argparse.ArgumentParser)
