"""``callrouter simulate`` end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from callrouter.cli_simulate import main

ROOT = Path(__file__).resolve().parents[2]
JSON_KEYS = {
    "calls",
    "ftcr",
    "connect_mean_s",
    "connect_p50_s",
    "connect_p90_s",
    "rings_per_connected",
    "abandoned",
    "max_calls_per_consultant",
    "mean_call_length_s",
    "mean_calls_per_consultant",
    "system_ended",
    "tier_violations",
    "top_share",
    "per_specialty",
    "per_consultant",
}


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callrouter.cli_simulate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCommandLine:
    """The JSON shape, the table, and errors, as printed."""

    def test_json_has_the_issue_shape(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny), "--json", "--strategy", "linear")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert list(report) == ["seed", "strategies"]
        assert list(report["strategies"]) == ["bound", "linear"]
        for figures in report["strategies"].values():
            assert set(figures) == JSON_KEYS
            assert 0 < figures["ftcr"] <= 1
            assert figures["tier_violations"] == 0
            assert set(figures["per_specialty"]) == {"cardiology", "dermatology"}
            assert figures["per_specialty"]["cardiology"]["calls"] > 0
            assert "dermatology-local-1" in figures["per_consultant"]
        assert done.stderr == ""  # no progress bar when stderr is not a terminal

    def test_seed_and_days(self, tiny: Path) -> None:
        base = json.loads(
            simulate("--workload", str(tiny), "--json", "--strategy", "linear").stdout
        )
        again = simulate("--workload", str(tiny), "--json", "--strategy", "linear", "--seed", "3")
        assert json.loads(again.stdout) == base  # the workload's own seed is 3
        other = json.loads(
            simulate(
                "--workload", str(tiny), "--json", "--strategy", "linear", "--seed", "9"
            ).stdout
        )
        assert other["seed"] == 9
        assert other["strategies"] != base["strategies"]
        longer = json.loads(
            simulate(
                "--workload", str(tiny), "--json", "--strategy", "linear", "--days", "10"
            ).stdout
        )
        calls = base["strategies"]["linear"]["calls"]
        assert 1.6 * calls < longer["strategies"]["linear"]["calls"] < 2.4 * calls

    def test_several_seeds_give_intervals(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny), "--json", "--strategy", "linear", "--seeds", "3")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["seeds"] == [3, 4, 5]
        assert len(report["runs"]) == 3
        ftcr = report["mean"]["linear"]["ftcr"]
        values = [run["linear"]["ftcr"] for run in report["runs"]]
        assert min(values) < ftcr["mean"] < max(values)
        assert ftcr["ci95"] > 0
        table = simulate("--workload", str(tiny), "--strategy", "linear", "--seeds", "2")
        assert "seeds 3-4 (mean ±95% CI)" in table.stdout
        assert "±" in table.stdout

    def test_table_marks_default_and_reports_goals(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny))
        assert done.returncode == 0, done.stderr
        assert "adaptive*" in done.stdout
        for name in ("bound", "linear", "ringall", "staggered", "least_recent"):
            assert f"\n{name}" in done.stdout
        assert "Goals for the default strategy (adaptive), margin" in done.stdout

    def test_workload_error_exits_2_with_file_line(self, write) -> None:
        bad = write(
            "seed: 1\nstart: 2026-03-02\ndays: 0\ncalls_per_hour: {renal: 1}\n"
            "teams: {renal: {local: 1}}\n"
        )
        done = simulate("--workload", str(bad))
        assert done.returncode == 2
        assert f"{bad}:3:7: days: Input should be greater than or equal to 1" in done.stderr
        assert done.stdout == ""

    def test_unknown_strategy(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny), "--strategy", "fastest")
        assert done.returncode == 2
        assert "unknown strategy 'fastest'" in done.stderr


class TestPlot:
    """--plot writes a PNG."""

    def test_png_written(self, tiny: Path, tmp_path: Path, capsys) -> None:
        png = tmp_path / "times.png"
        status = main(
            [
                "--workload",
                str(tiny),
                "--strategy",
                "linear",
                "--strategy",
                "adaptive",
                "--plot",
                str(png),
                "--json",
            ]
        )
        assert status == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads(capsys.readouterr().out)["strategies"]["adaptive"]["calls"] > 0


class TestPlanAndRotas:
    """--plan as a service manager reads it; a rota workload finds its config tree."""

    def test_plan_says_the_team_already_meets(self, tiny: Path) -> None:
        done = simulate(
            "--workload", str(tiny), "--plan", "--target-ftcr", "0.3", "--target-connect", "200"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("the current team already meets the targets") == 2
        assert "new members behave like their tier: local 50% pick-up" in done.stdout

    def test_rota_workload_uses_its_config(self) -> None:
        done = simulate(
            "--workload",
            "workloads/shipped-rotas.yaml",
            "--days",
            "2",
            "--strategy",
            "linear",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)["strategies"]["linear"]
        assert set(figures["per_specialty"]) == {
            "cardiology",
            "dermatology",
            "paediatrics",
            "respiratory",
        }
        assert any(member.startswith("m-derm-") for member in figures["per_consultant"])
