"""The ``callrouter`` command as a user meets it: bad ports, --version, pipes, the plot extra."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from callrouter import cli
from callrouter.cli_common import EXIT_BROKEN_PIPE
from callrouter.core.domain import CallOffered
from tests.adapters.scripted_calls import T0
from tests.adapters.test_store_sqlite import record
from tests.sim.conftest import TINY

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60  # seconds; a hang fails the test instead of stalling the suite


def callrouter(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callrouter", *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


class TestPorts:
    """A port outside 0-65535 (or not a number) is a usage error: exit 2, one line, no start."""

    def test_sip_port_out_of_range(self, tmp_path: Path) -> None:
        done = callrouter("run", "--sip-port", "99999", "--db", str(tmp_path / "c.sqlite3"))
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert error_lines(done.stderr) == [
            "callrouter run: error: argument --sip-port: "
            "not a port number (1-65535, or 0 for sip.listen_port): '99999'"
        ]
        assert done.stderr.splitlines()[-1] == error_lines(done.stderr)[0]
        assert not (tmp_path / "c.sqlite3").exists()  # rejected before anything was opened

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("--sip-port", "65536"),
            ("--sip-port", "-1"),
            ("--sip-port", "5060x"),
            ("--metrics-port", "70000"),
            ("--metrics-port", ""),
            ("--health-port", "-8080"),
            ("--health-port", "1e3"),
        ],
    )
    def test_rejected_by_the_parser(
        self, option: str, value: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exited:
            cli.main(["run", option, value])
        assert exited.value.code == 2
        zero = "sip.listen_port" if option == "--sip-port" else "any free port"
        assert error_lines(capsys.readouterr().err) == [
            f"callrouter run: error: argument {option}: not a port number "
            f"(1-65535, or 0 for {zero}): {value!r}"
        ]

    @pytest.mark.parametrize("option", ["--sip-port", "--metrics-port", "--health-port"])
    @pytest.mark.parametrize("value", ["0", "1", "65535"])
    def test_edges_accepted(self, option: str, value: str) -> None:
        args = cli.build_parser().parse_args(["run", option, value])
        assert getattr(args, option[2:].replace("-", "_")) == int(value)


class TestStartFailure:
    """A start that fails after the records are open still ends, with one line and status 1."""

    def test_metrics_port_taken(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = callrouter(
                "run",
                "--config",
                str(REPO / "config.yaml"),
                "--metrics-port",
                str(port),
                "--db",
                str(tmp_path / "calls.sqlite3"),
            )  # a hang here (the store's thread left running) raises TimeoutExpired
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.splitlines()[-1] == (
            "callrouter run: cannot start: [Errno 98] Address already in use"
        )
        assert (tmp_path / "calls.sqlite3").exists()  # it got as far as opening the records
        assert not (tmp_path / "calls.sqlite3-wal").exists()  # and closed them cleanly

    def test_records_cannot_be_opened(self, tmp_path: Path) -> None:
        (tmp_path / "a-file").write_text("", encoding="utf-8")
        done = callrouter(
            "run",
            "--config",
            str(REPO / "config.yaml"),
            "--metrics-port",
            "0",
            "--db",
            str(tmp_path / "a-file" / "calls.sqlite3"),  # under a file: no directory can be made
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        last = done.stderr.splitlines()[-1]
        assert last.startswith("callrouter run: cannot start: ")
        assert "a-file" in last  # names the path it could not use


class TestVersion:
    """--version prints the installed package's version."""

    def test_version(self) -> None:
        done = callrouter("--version")
        assert done.returncode == 0
        assert done.stdout == f"callrouter {metadata.version('callrouter')}\n"
        assert done.stderr == ""


def closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone, as after `| head -1` read."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


class TestBrokenPipe:
    """A reader that stops early ends the command quietly with 141, as `cat` or `grep` do."""

    def run_into_closed_pipe(self, *args: str) -> subprocess.CompletedProcess[str]:
        write_end = closed_pipe()
        try:
            return callrouter(*args, stdout=write_end)
        finally:
            os.close(write_end)

    def test_oncall_json(self) -> None:
        done = self.run_into_closed_pipe(
            "oncall",
            "--json",
            "--specialty",
            "cardiology",
            "--area",
            "barnet",
            "--at",
            "2026-03-02T10:00",
        )
        assert done.stderr == ""
        assert done.returncode == EXIT_BROKEN_PIPE

    def test_simulate(self, tmp_path: Path) -> None:
        workload = tmp_path / "tiny.yaml"
        workload.write_text(TINY, encoding="utf-8")
        done = self.run_into_closed_pipe(
            "simulate", "--workload", str(workload), "--strategy", "linear"
        )
        assert done.stderr == ""
        assert done.returncode == EXIT_BROKEN_PIPE

    def test_head_reads_one_line_of_a_long_export(self, tmp_path: Path) -> None:
        """A real `| head -1` on output longer than the pipe holds (so the write must fail)."""
        db = tmp_path / "calls.sqlite3"
        _many_calls(db, 3000)
        pipeline = subprocess.run(
            [
                "bash",
                "-c",
                f'set -o pipefail; "{sys.executable}" -m callrouter cdr export --db "{db}" '
                "--format json | head -1",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert pipeline.stdout.count("\n") == 1
        assert "Traceback" not in pipeline.stderr
        assert "BrokenPipeError" not in pipeline.stderr
        assert pipeline.returncode == EXIT_BROKEN_PIPE


def _many_calls(db: Path, count: int) -> None:
    record(
        db,
        [CallOffered(f"c{n:05d}", T0 + n, "barnet", "0207946", None, None) for n in range(count)],
    )


class TestPlotExtra:
    """Without matplotlib, --plot says how to get it; everything else runs without it."""

    @pytest.fixture
    def no_matplotlib(self, tmp_path: Path) -> dict[str, str]:
        """An environment where `import matplotlib` fails, as on an install without [plot]."""
        shadow = tmp_path / "shadow" / "matplotlib"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text(
            "raise ImportError(\"No module named 'matplotlib'\")\n", encoding="utf-8"
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow.parent), str(REPO)]))
        return env

    @pytest.fixture
    def workload(self, tmp_path: Path) -> Path:
        path = tmp_path / "tiny.yaml"
        path.write_text(TINY, encoding="utf-8")
        return path

    def test_plot_needs_the_extra(
        self, tmp_path: Path, workload: Path, no_matplotlib: dict[str, str]
    ) -> None:
        png = tmp_path / "times.png"
        done = callrouter(
            "simulate", "--workload", str(workload), "--plot", str(png), env=no_matplotlib
        )
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            "callrouter simulate: --plot needs matplotlib, which cannot be imported "
            "(No module named 'matplotlib'); pip install 'callrouter[plot]'"
        ]
        assert not png.exists()

    def test_simulate_without_plot_needs_no_matplotlib(
        self, workload: Path, no_matplotlib: dict[str, str]
    ) -> None:
        done = callrouter(
            "simulate",
            "--workload",
            str(workload),
            "--strategy",
            "linear",
            "--json",
            env=no_matplotlib,
        )
        assert done.returncode == 0, done.stderr
        assert '"linear"' in done.stdout
