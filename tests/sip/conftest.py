"""Helpers for the SIP worker tests: free loopback ports, sipp runs, event matching.

Every peer is a real sipp on 127.0.0.1 with its own ports, bounded by -m and -timeout, and
killed if a test leaves it running. Tests drive the pool with ``asyncio.run`` (no plugins).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.sip.worker_config import WorkerConfig

SCENARIOS = Path(__file__).parent / "scenarios"
LOOPBACK = "127.0.0.1"
SIPP = shutil.which("sipp")

E = TypeVar("E")

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) not installed")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A UDP port on loopback that nothing holds right now (and is not a privileged one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# Media ranges for test peers and workers: below the kernel's ephemeral ports (32768 and up),
# so no port the kernel hands out (a peer's SIP port, a client socket) can take one after it
# was chosen, and above the engine's own RTP ranges (tests/e2e: 10000-19999).
_RANGES_FROM = 20000
_RANGES_TO = 32768
_handed_out: collections.deque[tuple[int, int]] = collections.deque(maxlen=256)


def free_range(size: int) -> int:
    """The first port of ``size`` consecutive free UDP ports (even, for RTP), not overlapping
    a range handed out recently in this test run (peers started together must not share)."""
    for _ in range(500):
        base = random.randrange(_RANGES_FROM, _RANGES_TO - size, 2)
        end = base + size
        if any(base < taken_end and taken_base < end for taken_base, taken_end in _handed_out):
            continue
        if all(_bindable(base + i) for i in range(size)):
            _handed_out.append((base, end))
            return base
    raise RuntimeError("no free port range")


def worker_config(worker_id: str = "w0", **overrides: Any) -> WorkerConfig:
    """A worker on free loopback ports."""
    rtp = free_range(20)
    values: dict[str, Any] = {
        "worker_id": worker_id,
        "listen_host": LOOPBACK,
        "listen_port": free_port(),
        "public_host": LOOPBACK,
        "rtp_port_min": rtp,
        "rtp_port_max": rtp + 19,
        "media_timeout": 0.0,
    }
    values.update(overrides)
    return WorkerConfig(**values)


T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Run one test's coroutine with a hard bound; returns what it returns."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


@dataclass
class Sipp:
    """One running sipp; ``wait`` returns its exit status (0: every call as scripted)."""

    scenario: str
    port: int
    process: asyncio.subprocess.Process
    log_dir: Path

    @property
    def uri_host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def wait(self, timeout: float = 20.0) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)

    def errors(self) -> str:
        """sipp's error log and screen, for assertion messages."""
        texts = [f.read_text(errors="replace") for f in sorted(self.log_dir.glob("*"))]
        return "\n".join(texts)[-4000:]


@contextlib.asynccontextmanager
async def sipp(
    scenario: str,
    tmp_path: Path,
    *,
    remote: str | None = None,
    service: str = "0800111222",
    calls: int = 1,
    pause_ms: int = 1000,
    timeout_s: int = 15,
) -> AsyncIterator[Sipp]:
    """Run sipp with ``scenario`` (UAC if ``remote`` is given, else UAS); kill it on exit."""
    assert SIPP is not None
    port, media, control = free_port(), free_range(4), free_port()
    log_dir = tmp_path / f"sipp-{scenario.removesuffix('.xml')}-{port}"
    log_dir.mkdir()
    args = [
        SIPP,
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        LOOPBACK,
        "-p",
        str(port),
        "-mp",
        str(media),
        "-cp",
        str(control),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        "10",
        "-d",
        str(pause_ms),
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(log_dir / "errors.log"),
        "-trace_screen",
        "-screen_file",
        str(log_dir / "screen.log"),
        "-s",
        service,
    ]
    if remote is not None:
        args.append(remote)
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(log_dir / "stderr.log").open("wb"),
    )
    try:
        yield Sipp(scenario=scenario, port=port, process=proc, log_dir=log_dir)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@dataclass
class Events:
    """Reads a pool's events; ``expect`` finds the next match, keeping the rest for later."""

    pool: WorkerPool
    seen: list[p.Event] = field(default_factory=list)
    _pending: list[p.Event] = field(default_factory=list)

    async def expect(self, kind: type[E], timeout: float = 10.0, **fields: Any) -> E:
        def matches(event: p.Event) -> bool:
            return isinstance(event, kind) and all(
                getattr(event, k) == v for k, v in fields.items()
            )

        for event in self._pending:
            if matches(event):
                self._pending.remove(event)
                return event  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no {kind.__name__}{fields or ''} within {timeout}s; pending: "
                    f"{[e for e in self._pending if not isinstance(e, p.Log)]}"
                )
            try:
                event = await self.pool.next_event(remaining)
            except TimeoutError:
                continue
            self.seen.append(event)
            if matches(event):
                return event  # type: ignore[return-value]
            if not isinstance(event, p.Log):
                self._pending.append(event)

    def unmatched(self, kind: type[Any]) -> list[Any]:
        """Events of ``kind`` received but not consumed by ``expect``."""
        return [e for e in self._pending if isinstance(e, kind)]

    async def settle(self, seconds: float = 0.3) -> None:
        """Collect whatever arrives within ``seconds`` into the pending list."""
        with contextlib.suppress(AssertionError):
            await self.expect(_Never, timeout=seconds)


class _Never:
    """Matches no event."""
