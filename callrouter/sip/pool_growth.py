"""On-demand workers: always one idle worker's worth of free slots (a warm spare), up to a cap.

The rule (``decide``, pure: it takes ``now`` and reads no clock):

- **Grow** when the free slots of the running workers (a worker still starting counts with the
  slots its peers have) are fewer than one worker holds, and fewer than ``maximum`` are started:
  start the first worker standing by. One at a time: the next decision sees it starting.
- **Retire** a worker beyond the first ``base`` that has held no leg for ``idle_seconds``, if the
  others still leave a whole worker's worth free without it (so retiring never ends the spare):
  the highest-numbered first, one at a time.

``PoolGrowth`` is the shell: it re-decides whenever the pool says its slots moved, and at the
next retirement deadline. Retiring is two-step, so no call is refused on the way: the worker
stops getting consultant legs from the pool and new calls from the edge (``EdgeControl``), then,
after ``drain_seconds`` for INVITEs already on the wire, it is stopped if it is still empty,
else put back into service. A grown worker's Ready puts it into the edge's dispatching at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from callrouter.sip.pool import WorkerPool, WorkerStartError, WorkerView

log = structlog.get_logger("callrouter.sip.growth")

DEFAULT_SLOTS = 4  # what a worker holds until one has said (the pjsua2 wheels' cap)


@dataclass(frozen=True, slots=True)
class Decision:
    grow: str | None = None  # start this standing-by worker now
    retire: str | None = None  # retire this idle extra worker now
    wake_at: float | None = None  # decide again then (an idle worker's retirement falls due)


def decide(
    workers: Sequence[WorkerView],
    idle_since: dict[str, float],
    *,
    base: int,
    maximum: int,
    idle_seconds: float,
    now: float,
) -> Decision:
    """What to do now (see the module docstring). ``idle_since``: when each running worker
    last became empty (missing: it holds legs)."""
    slots = max((w.slots for w in workers if w.ready), default=DEFAULT_SLOTS)
    running = [w for w in workers if w.started]
    if any(w.retiring for w in running):
        return Decision()  # one change at a time: the retirement in progress settles first
    free = sum(max(w.slots - w.held, 0) if w.ready else slots for w in running)
    if free < slots and len(running) < maximum:
        standby = next((w for w in workers if not w.started), None)
        if standby is not None:
            return Decision(grow=standby.name)
    extras = [w for w in running[base:] if w.ready and w.held == 0 and w.name in idle_since]
    wake_at = None
    for worker in reversed(extras):
        due = idle_since[worker.name] + idle_seconds
        if free - worker.slots < slots:
            continue  # it is the spare
        if due <= now:
            return Decision(retire=worker.name)
        wake_at = due if wake_at is None else min(wake_at, due)
    return Decision(wake_at=wake_at)


class EdgeControl(Protocol):
    """The edge's dispatching, by worker port: ``True`` puts it in, ``False`` takes it out."""

    def dispatch_to(self, port: int, *, active: bool) -> None: ...


class PoolGrowth:
    """Runs ``decide`` against a live pool (see the module docstring)."""

    def __init__(
        self,
        pool: WorkerPool,
        *,
        base: int,
        maximum: int,
        idle_seconds: float,
        edge: EdgeControl | None = None,
        drain_seconds: float = 0.5,
    ) -> None:
        if not 1 <= base <= maximum:
            raise ValueError(f"need 1 <= base ({base}) <= maximum ({maximum})")
        self._pool = pool
        self._base, self._maximum, self._idle = base, maximum, idle_seconds
        self._edge = edge
        self._drain = drain_seconds
        self._changed = asyncio.Event()
        self._idle_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.grown = 0
        self.retired = 0

    def start(self) -> None:
        """Begin watching the pool (call after ``pool.start``)."""
        self._pool.on_change = self._changed.set
        self._task = asyncio.create_task(self._run(), name="pool-growth")

    async def aclose(self) -> None:
        self._pool.on_change = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _note_idle(self, workers: Sequence[WorkerView], now: float) -> None:
        for worker in workers:
            if not worker.started or worker.held:
                self._idle_since.pop(worker.name, None)
            elif worker.ready:
                self._idle_since.setdefault(worker.name, now)

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:  # a bug here must not end growth for good
                log.exception("pool_growth_failed")
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        """Decide once and act, or wait for a change (or the next retirement deadline)."""
        loop = asyncio.get_running_loop()
        self._changed.clear()
        now = loop.time()
        workers = self._pool.workers()
        self._note_idle(workers, now)
        decision = decide(
            workers,
            self._idle_since,
            base=self._base,
            maximum=self._maximum,
            idle_seconds=self._idle,
            now=now,
        )
        if decision.grow is not None:
            await self._grow(decision.grow)
        elif decision.retire is not None:
            await self._retire(decision.retire)
        else:
            timeout = None if decision.wake_at is None else max(decision.wake_at - now, 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def _port(self, name: str) -> int:
        return next(w.port for w in self._pool.workers() if w.name == name)

    async def _grow(self, name: str) -> None:
        try:
            ready = await self._pool.grow(name)
        except WorkerStartError as error:
            log.error("worker_grow_failed", worker=name, error=str(error)[:500])
            await asyncio.sleep(1.0)  # not in a tight loop: the next decision tries again
            return
        self.grown += 1
        if self._edge is not None:
            self._edge.dispatch_to(ready.sip_port, active=True)
        log.info("worker_grown", worker=name, port=ready.sip_port, free=self._pool.free_slots)

    async def _retire(self, name: str) -> None:
        if not self._pool.begin_retire(name):
            return
        port = self._port(name)
        if self._edge is not None:
            self._edge.dispatch_to(port, active=False)
        await asyncio.sleep(self._drain)  # INVITEs the edge sent before it heard
        if await self._pool.retire(name):
            self.retired += 1
            self._idle_since.pop(name, None)
            log.info("worker_retired", worker=name, port=port, free=self._pool.free_slots)
        elif self._edge is not None:
            self._edge.dispatch_to(port, active=True)  # a call came: it stays


def start_growth(
    pool: WorkerPool, *, idle_seconds: float, edge: EdgeControl | None
) -> PoolGrowth | None:
    """A started ``PoolGrowth`` when the pool has workers standing by, else None."""
    base, maximum = pool.initial, len(pool.workers())
    if maximum <= base:
        return None
    growth = PoolGrowth(pool, base=base, maximum=maximum, idle_seconds=idle_seconds, edge=edge)
    growth.start()
    return growth
