"""sipp peers for the end-to-end tests: GP callers (UAC) and consultants (UAS) on loopback.

Each run is bounded (-m, -timeout, -timeout_error), binds 127.0.0.1 only, traces the SIP
messages it sent and received (timestamped) and its <log> actions, and is killed when the test
ends. Scenarios are looked up in tests/e2e/scenarios, then in tests/sip/scenarios.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.e2e.netns import IP
from tests.sip.conftest import LOOPBACK, SCENARIOS, SIPP, free_port, free_range

E2E_SCENARIOS = Path(__file__).parent / "scenarios"

_BLOCK = re.compile(
    r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    r"UDP message (received|sent) [^\n]*\n\n(?P<first>[^\n]*)",
    re.MULTILINE,
)


def scenario_path(name: str) -> Path:
    for folder in (E2E_SCENARIOS, SCENARIOS):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


@dataclass(frozen=True, slots=True)
class Message:
    """One SIP message in a sipp trace: when, which way, and its first line."""

    at: float  # POSIX seconds
    received: bool
    first_line: str

    @property
    def method(self) -> str:
        """``INVITE``, ``BYE``… for requests; ``200``, ``487``… for responses."""
        head = self.first_line.split(" ", 2)
        return head[1] if head[0].startswith("SIP/") else head[0]


@dataclass
class Peer:
    """One sipp process and its trace files."""

    name: str
    scenario: str
    port: int
    process: subprocess.Popen[bytes]
    log_dir: Path
    args: list[str] = field(default_factory=list)

    @property
    def uri_host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def wait(self, timeout: float = 30.0) -> int:
        """sipp's exit status: 0 when every call went as scripted."""
        try:
            return int(self.process.wait(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"sipp {self.name} still running after {timeout}s") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def messages(self) -> list[Message]:
        path = self.log_dir / "messages.log"
        if not path.exists():
            return []
        text = path.read_text(errors="replace")
        return [
            Message(_local_time(m.group(1)), m.group(2) == "received", m.group("first").strip())
            for m in _BLOCK.finditer(text)
        ]

    def received(self, method: str) -> list[Message]:
        return [m for m in self.messages() if m.received and m.method == method]

    def sent(self, method: str) -> list[Message]:
        return [m for m in self.messages() if not m.received and m.method == method]

    def marks(self, name: str) -> list[float]:
        """Times of the scenario's ``<log message="NAME [timestamp]"/>`` actions."""
        path = self.log_dir / "logs.log"
        if not path.exists():
            return []
        found = []
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if words and words[0] == name:
                found.append(float(line.rsplit("\t", 1)[-1]))
        return found

    def explain(self) -> str:
        """Everything sipp said, for assertion messages."""
        parts = [f"sipp {self.name} ({self.scenario}) on port {self.port}"]
        for log in ("errors.log", "stderr.log", "screen.log"):
            path = self.log_dir / log
            if path.exists():
                parts.append(f"--- {log}\n{path.read_text(errors='replace')[-2500:]}")
        parts.append("--- messages: " + ", ".join(m.first_line for m in self.messages()))
        return "\n".join(parts)


class Peers:
    """Starts sipp peers for one test and kills every one of them at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp = tmp_path
        self._all: list[Peer] = []

    def consultant(
        self,
        name: str,
        scenario: str,
        *,
        port: int,
        calls: int = 1,
        timeout_s: int = 40,
        host: str = LOOPBACK,
        netns: str | None = None,
        **variables: float,
    ) -> Peer:
        """A sipp UAS on ``host:port`` (the address in its rota URI), inside network namespace
        ``netns`` when given (``host`` is then its address there)."""
        return self._start(
            name, scenario, port, None, calls, timeout_s, variables, 0, host, netns=netns
        )

    def gp(
        self,
        name: str,
        scenario: str,
        *,
        engine: str,
        number: str,
        pause_ms: int = 0,
        variables: Mapping[str, float] | None = None,
        source: str = LOOPBACK,
        timeout_s: int = 40,
    ) -> Peer:
        """A sipp UAC calling ``number`` at ``engine`` (host:port); ``pause_ms`` fills <pause/>,
        ``variables`` the scenario's global variables (-set); ``source`` is the loopback
        address it sends from; sipp gives up after ``timeout_s``."""
        return self._start(
            name,
            scenario,
            free_port(),
            (engine, number),
            1,
            timeout_s,
            dict(variables or {}),
            pause_ms,
            source,
        )

    def _start(
        self,
        name: str,
        scenario: str,
        port: int,
        target: tuple[str, str] | None,
        calls: int,
        timeout_s: int,
        variables: dict[str, float],
        pause_ms: int,
        source: str = LOOPBACK,
        *,
        netns: str | None = None,
    ) -> Peer:
        assert SIPP is not None
        log_dir = self._tmp / f"sipp-{name}"
        log_dir.mkdir()
        inside = [] if netns is None else [IP, "netns", "exec", netns]  # execs sipp: same pid
        args = [
            *inside,
            SIPP,
            "-sf", str(scenario_path(scenario)),
            "-i", source,
            "-p", str(port),
            "-mp", str(free_range(4)),
            "-cp", str(free_port()),
            "-m", str(calls),
            "-l", str(calls),
            "-r", "10",
            "-d", str(pause_ms),
            "-timeout", f"{timeout_s}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err", "-error_file", str(log_dir / "errors.log"),
            "-trace_screen", "-screen_file", str(log_dir / "screen.log"),
            "-trace_msg", "-message_file", str(log_dir / "messages.log"),
            "-trace_logs", "-log_file", str(log_dir / "logs.log"),
        ]  # fmt: skip
        for key, value in variables.items():
            args += ["-set", key, f"{value:g}"]
        if target is not None:
            args += ["-s", target[1], target[0]]
        stderr = (log_dir / "stderr.log").open("wb")
        with stderr:
            process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        peer = Peer(name, scenario, port, process, log_dir, args)
        self._all.append(peer)
        return peer

    def kill_all(self) -> None:
        for peer in self._all:
            peer.kill()


@contextlib.contextmanager
def sipp_peers(tmp_path: Path) -> Iterator[Peers]:
    peers = Peers(tmp_path)
    try:
        yield peers
    finally:
        peers.kill_all()


def _local_time(text: str) -> float:
    """sipp writes trace times in local time without a zone."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()
