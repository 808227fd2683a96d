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
        done = simulate(
            "--workload", str(tiny), "--json", "--strategy", "linear", "--strategy", "oracle"
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert list(report) == ["strategies"]
        assert list(report["strategies"]) == ["linear", "oracle"]
        for figures in report["strategies"].values():
            assert set(figures) == JSON_KEYS
            assert 0 < figures["ftcr"] <= 1
        assert done.stderr == ""  # no progress bar when stderr is not a terminal

    def test_table_marks_default_and_reports_goals(self, tiny: Path) -> None:
        done = simulate("--workload", str(tiny))
        assert done.returncode == 0, done.stderr
        assert "adaptive*" in done.stdout
        for name in ("oracle", "linear", "ringall", "staggered", "least_recent"):
            assert f"\n{name}" in done.stdout
        assert "Goals for the default strategy (adaptive):" in done.stdout

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
