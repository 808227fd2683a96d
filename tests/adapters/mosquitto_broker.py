"""A real mosquitto broker on a free 127.0.0.1 port, for the bus tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """One mosquitto process; ``start`` again after ``kill`` reuses the same port."""

    def __init__(self, workdir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.port = port or free_port()
        self.host = host
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        # mosquitto ≥ 2.0 is local-only unless a listener is declared, and then anonymous
        # clients need allowing explicitly; persistence off so every start is empty.
        self.config.write_text(
            f"listener {self.port} {host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"mosquitto-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(self.port, self.host):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self.log_text()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a word, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a test may have frozen it (SIGSTOP)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*.log")))


@contextlib.contextmanager
def running_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker in ``tmp_path/broker`` for one test, stopped at the end whatever happened."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    server = MosquittoBroker(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
