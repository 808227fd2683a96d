"""The engine as a real subprocess (``python -m callrouter run``) on free loopback ports.

Start-up waits for GET /healthz (bounded); stop is SIGTERM (bounded), then SIGKILL. Its log
(JSON lines on stderr) is kept in a file so failing assertions can show what the engine said.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.sip.conftest import LOOPBACK, free_port, free_range

from .tree import Ports

REPO = Path(__file__).resolve().parents[2]
START_LIMIT = 30.0  # seconds to come up (prompt rendering on a cold cache included)
STOP_LIMIT = 15.0  # seconds from SIGTERM to exit before SIGKILL


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def rtp_range(size: int) -> int:
    """Even base of ``size`` free UDP ports in 10000-19999: clear of the kernel's ephemeral
    ports and of the 20000+ ranges sipp peers take (tests.sip.conftest.free_range), so a peer
    started later cannot land inside the engine's media range."""
    for _ in range(200):
        base = random.randrange(10000, 20000 - size, 2)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + size):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((LOOPBACK, port))
            except OSError:
                continue
        return base
    raise RuntimeError("no free RTP port range")


def engine_ports(workers: int = 1, *, edge: bool = False) -> Ports:
    """Free ports for one engine: ``workers`` SIP ports in a row, after the edge's if any."""
    rtp = rtp_range(40)
    first = free_range(workers + 1) if edge or workers > 1 else free_port()
    return Ports(
        sip=first + 1 if edge else first,
        edge=first if edge else 0,
        rtp_min=rtp,
        rtp_max=rtp + 39,
        metrics=free_tcp_port(),
        health=free_tcp_port(),
    )


@dataclass
class RunningEngine:
    """One ``callrouter run`` process and where it listens."""

    config: Path
    ports: Ports
    db: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    netns: str | None = None  # run inside this network namespace (``ip netns exec``)
    sip_host: str = LOOPBACK  # the address callers dial

    @property
    def public_sip_port(self) -> int:
        """The port callers dial: the edge's when there is one, else the first worker's."""
        return self.ports.edge or self.ports.sip

    @property
    def sip_uri_host(self) -> str:
        return f"{self.sip_host}:{self.public_sip_port}"

    def start(self) -> None:
        inside = [] if self.netns is None else ["ip", "netns", "exec", self.netns]
        args = [
            *inside,
            sys.executable,
            "-m",
            "callrouter",
            "run",
            "--config",
            str(self.config),
            "--sip-port",
            str(self.public_sip_port),
            "--metrics-port",
            str(self.ports.metrics),
            "--health-port",
            str(self.ports.health),
            "--db",
            str(self.db),
            "--drain-seconds",
            "1",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=REPO
            )
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"engine exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError):
                if self.health().get("status") == "ok":
                    return
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"engine not healthy within {START_LIMIT}s:\n{self.log()}")

    def health(self) -> dict[str, Any]:
        url = f"http://{LOOPBACK}:{self.ports.health}/healthz"
        if self.netns is not None:  # its loopback is the namespace's: ask from inside
            fetch = ["ip", "netns", "exec", self.netns, "curl", "-s", "--max-time", "2", url]
            done = subprocess.run(fetch, capture_output=True, timeout=5, check=False)
            if done.returncode != 0:
                raise OSError(f"curl exited with {done.returncode}")
            answer: dict[str, Any] = json.loads(done.stdout)
            return answer
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:  # 503 while starting or draining
            body = json.loads(error.read())
        return body

    def scrape(self) -> str:
        url = f"http://{LOOPBACK}:{self.ports.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Until the engine reports no call in progress (its records are written by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health().get("active_calls") == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"calls still active after {timeout}s:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it will not go; returns the exit status."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return int(process.returncode)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind (the worker child is reaped by its parent's death)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return "(no engine log)"

    def log_events(self) -> list[dict[str, Any]]:
        """The engine's JSON log lines (anything else it printed is skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    events.append(item)
        return events


@contextlib.contextmanager
def running(engine: RunningEngine) -> Iterator[RunningEngine]:
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
