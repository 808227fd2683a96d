"""One worker as the pool keeps it (``PoolWorker``), and its process: started with the pipes
the pool talks over, stopped with a Shutdown and, past the timeout, a kill."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import IO, Any

from callrouter.sip import protocol as p
from callrouter.sip.pool_parts import child_env
from callrouter.sip.slots import SlotBook
from callrouter.sip.worker_config import WorkerConfig

LINE_LIMIT = 1 << 20  # SIP message dumps in Log events can be long


@dataclass
class PoolWorker:
    """One worker as the pool tracks it: its config and process, its slot book, the teardowns
    it last sent, and whether it is wanted running."""

    name: str
    config: WorkerConfig
    generation: int = 0
    process: asyncio.subprocess.Process | None = None
    ready: p.Ready | None = None
    book: SlotBook = field(default_factory=SlotBook)
    teardowns: dict[str, p.Teardown] = field(default_factory=dict)  # how to end each leg
    reader: asyncio.Task[None] | None = None
    ready_future: asyncio.Future[p.Ready] | None = None
    last_logs: list[str] = field(default_factory=list)
    started: bool = False  # wanted running: false while standing by or once retired
    retiring: bool = False  # being stopped by ``retire``: gets no Dial

    @property
    def worker_id(self) -> str:
        return self.name if self.generation == 0 else f"{self.name}.{self.generation}"

    @property
    def free(self) -> int:
        return 0 if self.ready is None or self.retiring else self.book.free


async def launch(
    worker: PoolWorker, *, python: str, stderr: int | IO[Any] | None
) -> asyncio.subprocess.Process:
    """Start ``worker``'s process (``python -m callrouter.sip.worker``) under its current id."""
    config = worker.config.with_worker_id(worker.worker_id)
    return await asyncio.create_subprocess_exec(
        python,
        "-m",
        "callrouter.sip.worker",
        *config.argv(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=child_env(),
        limit=LINE_LIMIT,
    )


async def stop(worker: PoolWorker, timeout: float) -> None:
    """Ask ``worker``'s process to shut down; kill it if it has not exited after ``timeout``;
    then let its reader finish."""
    proc = worker.process
    if proc is None:
        return
    if proc.returncode is None and proc.stdin is not None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write(p.encode(p.Shutdown()))
            proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if worker.reader is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(worker.reader, timeout)
