"""The engine's side of the SIP workers: start them, route commands, merge their events.

    async with WorkerPool([config]) as pool:          # waits for every worker's Ready
        pool.send(Dial(leg="c1-L1", uri="sip:..."), near="w0-in-3")
        async for event in pool:                       # events of all workers, in order
            ...

A leg lives in exactly one worker (a bridge is inside one pjsua2 conference), so the pool
remembers which worker holds each leg: inbound legs from ``Incoming``, outbound ones from the
``Dial`` it routed. ``Dial`` goes to the worker of ``near`` (the caller's leg) when given, else
to the ready worker with most free slots. Free slots are counted here (``callrouter.sip.slots``),
from the legs the pool knows: a leg's slot is taken when the pool hands it to the worker and
free only once the worker reports it ``LegClosed``. ``reserve(gp_leg)`` keeps a slot for an
admitted GP's first consultant leg; a ``Dial`` near a GP whose worker is full for now waits
here for a slot instead of failing.

If a worker process dies the pool emits ``WorkerDied`` naming its legs (the one report that
they are lost), then ``LegClosed`` for each, hands the ``reaper`` the ``Teardown`` the worker
last sent for each leg (the BYE or CANCEL that tells its far end), and starts a fresh process on
the same ports, renamed ``<name>.<n>`` so no leg id is ever reused. Starting waits at most
``start_timeout``; nothing here waits without a bound. An optional ``WorkerObserver`` (the
metrics) hears of each death and each successful restart, by worker name.

Only the first ``initial`` workers start with the pool; the others are standing by, on their own
ports, until ``grow`` starts one. ``retire`` stops a started one that holds no leg (it is not a
death: no events, no restart). When to do either is ``pool_growth``'s business; ``on_change``
tells it that the slots moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Any, Self

from callrouter.sip import protocol as p
from callrouter.sip.pool_parts import WorkerObserver, WorkerStartError, WorkerView
from callrouter.sip.pool_process import PoolWorker, launch, stop
from callrouter.sip.slots import Placed, SlotBook
from callrouter.sip.worker_config import WorkerConfig

__all__ = ["WorkerObserver", "WorkerPool", "WorkerStartError", "WorkerView"]

_RESTART_DELAYS = (0.0, 0.5, 1.0, 2.0, 5.0)  # back-off between failed restarts
_START_CONCURRENCY = max(4, 2 * (os.cpu_count() or 1))  # workers starting at once


class WorkerPool:
    """N worker processes behind one command/event interface (see the module docstring)."""

    def __init__(
        self,
        configs: Sequence[WorkerConfig],
        *,
        start_timeout: float = 10.0,
        restart: bool = True,
        python: str = sys.executable,
        stderr: int | IO[Any] | None = None,
        observer: WorkerObserver | None = None,
        initial: int | None = None,
        reaper: Callable[[Sequence[p.Teardown]], None] | None = None,
    ) -> None:
        names = [c.worker_id for c in configs]
        if not configs or len(set(names)) != len(names):
            raise ValueError(f"need at least one worker and unique worker ids, got {names}")
        self._workers = {c.worker_id: PoolWorker(name=c.worker_id, config=c) for c in configs}
        self._start_timeout = start_timeout
        self._restart = restart
        self._python = python
        self._stderr = stderr
        self._observer = observer
        self._events: asyncio.Queue[p.Event | None] = asyncio.Queue()
        self._closing = False
        self._restarts: set[asyncio.Task[None]] = set()
        self._initial = len(configs) if initial is None else initial
        if not 1 <= self._initial <= len(configs):
            raise ValueError(f"initial must be 1-{len(configs)}, got {initial}")
        self.on_change: Callable[[], None] | None = None  # slots or workers changed
        self._reaper = reaper  # ends a dead worker's legs at their far ends

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> list[p.Ready]:
        """Start the first ``initial`` workers and wait for each one's Ready
        (``WorkerStartError`` after the timeout).

        At most ``_START_CONCURRENCY`` start at once, so each worker's timeout measures its own
        start: a hundred at once on two busy cores took ~25 s and ran past 10 s."""
        first = list(self._workers.values())[: self._initial]
        for worker in first:
            worker.started = True
        gate = asyncio.Semaphore(_START_CONCURRENCY)

        async def spawn(worker: PoolWorker) -> p.Ready:
            async with gate:
                return await self._spawn(worker)

        try:
            return list(await asyncio.gather(*(spawn(w) for w in first)))
        except BaseException:
            await self.aclose()
            raise

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Ask every worker to hang up and exit; kill any that has not after ``timeout``."""
        if self._closing:
            return
        self._closing = True
        for task in self._restarts:
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await asyncio.gather(*(stop(w, timeout) for w in self._workers.values()))
        self._events.put_nowait(None)

    async def grow(self, name: str) -> p.Ready:
        """Start standing-by worker ``name`` and wait for its Ready (``WorkerStartError``)."""
        worker = self._workers[name]
        if worker.started or self._closing:
            raise ValueError(f"worker {name} is running already (or the pool is closing)")
        worker.started, worker.retiring = True, False
        worker.generation += 1  # fresh leg ids: a leg of an earlier run is never reused
        try:
            return await self._spawn(worker)
        except WorkerStartError:
            worker.started = False
            raise
        finally:
            self._changed()

    def begin_retire(self, name: str) -> bool:
        """Take a running worker with no legs out of the dialling (step one of ``retire``)."""
        worker = self._workers[name]
        if not worker.started or worker.ready is None or worker.book.held:
            return False
        worker.retiring = True
        self._changed()
        return True

    async def retire(self, name: str, timeout: float = 5.0) -> bool:
        """Stop worker ``name`` if it is retiring and still holds no leg; True if stopped.
        It then stands by again (``grow`` starts it anew)."""
        worker = self._workers[name]
        if not worker.retiring or worker.book.held or worker.ready is None:
            worker.retiring = False
            self._changed()
            return False
        worker.started = False  # its exit is not a death
        worker.ready = None
        await stop(worker, timeout)
        worker.process, worker.retiring = None, False
        self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def _spawn(self, worker: PoolWorker) -> p.Ready:
        loop = asyncio.get_running_loop()
        worker.ready, worker.book, worker.last_logs, worker.teardowns = None, SlotBook(), [], {}
        worker.ready_future = loop.create_future()
        worker.process = await launch(worker, python=self._python, stderr=self._stderr)
        worker.reader = asyncio.create_task(self._read(worker, worker.process))
        try:
            return await asyncio.wait_for(asyncio.shield(worker.ready_future), self._start_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            raise WorkerStartError(
                f"worker {worker.worker_id} not ready after {self._start_timeout}s: "
                + " | ".join(worker.last_logs[-5:])
            ) from None

    # ------------------------------------------------------------------ commands

    def send(self, command: p.Command, *, near: str | None = None) -> None:
        """Route ``command`` to the worker that holds its leg (``Dial``: see ``near``).

        ``Ping`` and ``Shutdown`` go to every ready worker. A command for a leg no worker holds
        (it closed in the meantime) comes back as a ``CommandError`` event.
        """
        match command:
            case p.Dial():
                self._dial(command, near)
            case p.Ping() | p.Shutdown():
                for worker in self._workers.values():
                    if worker.ready is not None:
                        self._write(worker, command)
            case p.Bridge(a=a, b=b):
                wa, wb = self.worker_of(a), self.worker_of(b)
                if wa is None or wa != wb:
                    self._error(command, a, f"legs {a} and {b} are not in one worker")
                else:
                    self._write(self._workers[wa], command)
            case _:
                name = self.worker_of(command.leg)
                if name is None:
                    self._error(command, command.leg, "no worker holds this leg")
                    return
                worker = self._workers[name]
                if isinstance(command, p.Hangup) and worker.book.drop_waiting(command.leg):
                    self._emit(p.LegClosed(leg=command.leg))  # it never went out
                    return
                self._write(worker, command)

    def _dial(self, command: p.Dial, near: str | None) -> None:
        if self.worker_of(command.leg) is not None:
            raise ValueError(f"leg id {command.leg!r} is already in use")
        if near is not None:
            name = self.worker_of(near)
            target = self._workers[name] if name is not None else None
        else:
            # most free slots first; the lowest index among equals, so spares stay idle
            best = max(self._workers.values(), key=lambda w: w.free)
            target = best if best.free > 0 else None  # never a retiring or standing-by one
        placed = Placed.NO_SLOT if target is None else target.book.place(command, near)
        if placed is Placed.NO_SLOT or target is None:
            self._emit(p.Failed(leg=command.leg, status=503, reason="no free call slot"))
            self._emit(p.LegClosed(leg=command.leg))
            return
        if placed is Placed.SENT:
            self._write(target, command)
        self._changed()

    def _write(self, worker: PoolWorker, command: p.Command) -> None:
        proc = worker.process
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return  # dying: its legs are reported lost when the reader sees EOF
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write(p.encode(command))

    def _error(self, command: p.Command, leg: str, message: str) -> None:
        self._emit(p.CommandError(command=type(command).__name__, leg=leg, message=message))

    # ------------------------------------------------------------------ queries

    def worker_of(self, leg: str) -> str | None:
        """The name of the worker holding ``leg`` (or a Dial of it waiting for a slot), if any."""
        return next((w.name for w in self._workers.values() if leg in w.book), None)

    def free_for(self, gp_leg: str) -> int:
        """Consultant legs the call of ``gp_leg`` may place now, in the GP's worker."""
        name = self.worker_of(gp_leg)
        return 0 if name is None else self._workers[name].book.free_for(gp_leg)

    def reserve(self, gp_leg: str) -> bool:
        """Keep a slot in the GP's worker for the call's first consultant leg (False: none)."""
        name = self.worker_of(gp_leg)
        return name is not None and self._workers[name].book.reserve(gp_leg)

    @property
    def free_slots(self) -> int:
        """Legs the pool can still take, over all ready workers."""
        return sum(w.free for w in self._workers.values())

    def slots(self, name: str) -> int:
        """Free slots of one worker."""
        return self._workers[name].free

    @property
    def initial(self) -> int:
        """How many workers start with the pool (the rest stand by)."""
        return self._initial

    def workers(self) -> list[WorkerView]:
        """Each configured worker as the growth policy sees it, in configured order."""
        return [
            WorkerView(
                name=w.name,
                port=w.config.listen_port,
                started=w.started,
                ready=w.ready is not None,
                retiring=w.retiring,
                slots=w.ready.slots if w.ready is not None else 0,
                held=w.book.held,
            )
            for w in self._workers.values()
        ]

    def teardowns(self, name: str) -> tuple[p.Teardown, ...]:
        """The teardowns held for worker ``name``'s legs (what its death would send)."""
        return tuple(self._workers[name].teardowns.values())

    def pid(self, name: str) -> int | None:
        """The current process id of worker ``name`` (for tests and operators)."""
        proc = self._workers[name].process
        return None if proc is None else proc.pid

    # ------------------------------------------------------------------ events

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> p.Event:
        event = await self._events.get()
        if event is None:
            self._events.put_nowait(None)  # every later reader ends too
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout: float | None = None) -> p.Event:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, EOFError once closed."""
        try:
            return await asyncio.wait_for(anext(self), timeout)
        except StopAsyncIteration:
            raise EOFError("pool closed") from None

    def _emit(self, event: p.Event) -> None:
        self._events.put_nowait(event)

    async def _read(self, worker: PoolWorker, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue  # an over-long line: skip it, keep the stream
            if not line:
                break
            try:
                event = p.decode_event(line)
            except p.ProtocolError as exc:
                self._emit(p.Log(level=1, message=f"{worker.worker_id}: bad event line: {exc}"))
                continue
            self._track(worker, event)
            if not isinstance(event, p.Teardown):  # the pool's own business
                self._emit(event)
        code = await proc.wait()
        if worker.ready_future is not None and not worker.ready_future.done():
            worker.ready_future.set_exception(
                WorkerStartError(
                    f"worker {worker.worker_id} exited with {code} before Ready: "
                    + " | ".join(worker.last_logs[-5:])
                )
            )
            worker.ready_future.exception()  # mark retrieved: _spawn may have timed out first
            return
        if not self._closing and worker.started:
            self._report_death(worker, code)
            if self._restart:
                task = asyncio.create_task(self._restart_worker(worker))
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)

    def _track(self, worker: PoolWorker, event: p.Event) -> None:
        match event:
            case p.Ready():
                worker.ready = event
                worker.book.capacity = event.slots
                if worker.ready_future is not None and not worker.ready_future.done():
                    worker.ready_future.set_result(event)
                self._changed()
            case p.Incoming(leg=leg):
                worker.book.legs.add(leg)
                self._changed()
            case p.Teardown(leg=leg) if leg in worker.book:
                worker.teardowns[leg] = event
            case p.LegClosed(leg=leg):
                worker.teardowns.pop(leg, None)
                for dial in worker.book.closed(leg):
                    self._write(worker, dial)
                self._changed()
            case p.Log(level=level, message=message) if level <= 2:
                worker.last_logs = [*worker.last_logs[-9:], message]
            case _:
                pass

    def _report_death(self, worker: PoolWorker, code: int | None) -> None:
        legs = worker.book.clear()
        if self._reaper is not None and worker.teardowns:
            self._reaper(list(worker.teardowns.values()))
        worker.teardowns = {}
        worker.ready = None
        if self._observer is not None:
            self._observer.worker_died(worker.name)
        self._emit(p.WorkerDied(worker_id=worker.worker_id, legs=tuple(legs), exit_code=code))
        for leg in legs:
            self._emit(p.LegClosed(leg=leg))
        self._changed()

    async def _restart_worker(self, worker: PoolWorker) -> None:
        for attempt in range(1_000_000):
            await asyncio.sleep(_RESTART_DELAYS[min(attempt, len(_RESTART_DELAYS) - 1)])
            if not worker.started:
                return  # retired meanwhile
            worker.generation += 1
            try:
                await self._spawn(worker)
            except WorkerStartError as exc:
                self._emit(p.Log(level=1, message=f"restart of {worker.name} failed: {exc}"))
            else:
                if self._observer is not None:
                    self._observer.worker_restarted(worker.name)
                return
