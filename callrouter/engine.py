"""The engine: one asyncio task per call, turning worker events into core events and core
commands into worker commands. The only place where deadlines become real waits.

Nothing here decides anything about a call: admission is core.admission, the call itself is
core.callflow. The engine maps ids (worker leg ⇄ call + core leg), keeps the live-leg count that
tells the hunt who is busy, and hands domain events to the sinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core import events as e
from callrouter.core.admission import Admission, admit
from callrouter.core.callflow import CallFlow, FlowEnv, IllegalEvent
from callrouter.logsetup import log_pjsip
from callrouter.refusal_log import WORKER_BUSY, RefusalLimiter, source_network
from callrouter.settings.dialplan import Dialplan
from callrouter.sip import protocol as p

log = structlog.get_logger("callrouter.engine")


class SipPort(Protocol):
    """What the engine needs of the worker pool (callrouter.sip.pool.WorkerPool)."""

    def send(self, command: p.Command, *, near: str | None = None) -> None: ...

    def slots(self, name: str) -> int: ...

    def worker_of(self, leg: str) -> str | None: ...

    async def next_event(self, timeout: float | None = None) -> p.Event: ...


class PromptFiles(Protocol):
    """Prompt → WAV path, for prompts made ahead (the cache builds them at start-up)."""

    def path_for(self, prompt: c.Prompt) -> str: ...


class EventSink(Protocol):
    async def handle(self, event: d.DomainEvent) -> None: ...


class RefusalCounter(Protocol):
    """Counts every refused call (callrouter.adapters.metrics.Metrics): bounded reasons."""

    def call_refused(self, reason: str, status: int) -> None: ...


class DialplanLookup(Protocol):
    def dialplan_for(self, called: str) -> Dialplan | None: ...


class RecordingPort(Protocol):
    """Where bridged calls are recorded (recordings.RecordingArchive)."""

    def plain_path(self, call_id: str) -> str: ...

    def finished(self, recorded: p.Recorded) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineLimits:
    max_concurrent_calls: int
    trunk_allows: Callable[[str], bool]
    retry_after_seconds: int = 30


@dataclass(eq=False)
class CallSession:
    call_id: str
    gp_leg: str  # the worker's id for the GP's inbound leg
    caller: str
    flow: CallFlow
    queue: asyncio.Queue[e.Event] = field(default_factory=asyncio.Queue)
    legs: dict[str, str] = field(default_factory=dict)  # core leg name -> worker leg id
    playing: set[str] = field(default_factory=set)  # worker legs with a one-shot prompt


class EnginePresence:
    """Busy = has a live leg through this engine (ringing, whispering or talking), or is marked
    unavailable by the bus. Counted from domain events, so it is exact across calls."""

    def __init__(self, marked_available: Callable[[str], bool] | None = None) -> None:
        self.live: Counter[str] = Counter()
        self._marked = marked_available

    def is_available(self, member_id: str) -> bool:
        if self.live[member_id] > 0:
            return False
        return self._marked is None or self._marked(member_id)

    def observe(self, event: d.DomainEvent) -> None:
        if isinstance(event, d.LegStarted):
            self.live[event.member_id] += 1
        elif isinstance(event, d.LegEnded):
            self.live[event.member_id] -= 1
            if self.live[event.member_id] <= 0:
                del self.live[event.member_id]


class Engine:
    """Owns the call sessions. ``serve()`` runs until the SIP pool closes or it is cancelled."""

    def __init__(
        self,
        *,
        sip: SipPort,
        dialplans: DialplanLookup,
        env: FlowEnv,
        presence: EnginePresence,
        prompts: PromptFiles,
        sink: EventSink,
        limits: EngineLimits,
        clock: Callable[[], float] = time.time,
        refusals: RefusalCounter | None = None,
        refusal_log: RefusalLimiter | None = None,
        recordings: RecordingPort | None = None,
    ) -> None:
        self._sip = sip
        self._recordings = recordings
        self._dialplans = dialplans
        self._env = env
        self._presence = presence
        self._prompts = prompts
        self._sink = sink
        self._limits = limits
        self._clock = clock
        self._refusals = refusals
        self._refusal_log = RefusalLimiter() if refusal_log is None else refusal_log
        self._summary_timer: asyncio.TimerHandle | None = None
        self._sessions: dict[str, CallSession] = {}
        self._by_worker_leg: dict[str, tuple[CallSession, str]] = {}
        self._lost: set[str] = set()  # legs of a dead worker, until their LegClosed
        self._accepting = True
        self._idle = asyncio.Event()
        self._idle.set()
        self.on_worker_event: Callable[[p.Event], None] | None = None  # metrics of slots, logs

    @property
    def active_calls(self) -> int:
        return len(self._sessions)

    @property
    def presence(self) -> EnginePresence:
        return self._presence

    @property
    def env(self) -> FlowEnv:
        return self._env

    def reload(self, dialplans: DialplanLookup, env: FlowEnv) -> None:
        """New dialplans and rotas for calls from now on; calls in progress keep theirs."""
        self._dialplans = dialplans
        self._env = env

    def stop_accepting(self) -> None:
        """New calls get 503 from now on (graceful shutdown)."""
        self._accepting = False

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def serve(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    try:
                        event = await self._sip.next_event()
                    except EOFError:
                        break
                    self._dispatch(event, group)
                for session in list(self._sessions.values()):
                    session.queue.put_nowait(e.HungUp(e.GP))
        finally:
            self._log_refusal_summary(final=True)

    # -- worker events -----------------------------------------------------------------------

    def _dispatch(self, event: p.Event, group: asyncio.TaskGroup) -> None:
        if self.on_worker_event is not None:
            self.on_worker_event(event)
        match event:
            case p.Incoming():
                self._incoming(event, group)
            case p.Ringing(leg=leg):
                self._to_call(leg, e.LegRinging)
            case p.Answered(leg=leg):
                self._answered(leg)
            case p.Failed(leg=leg, status=status, reason=reason):
                self._to_call(leg, lambda name: _failed(name, status, reason))
            case p.HungUp(leg=leg):
                self._to_call(leg, e.HungUp)
            case p.Digit(leg=leg, digit=digit):
                self._to_call(leg, lambda name: e.Digit(name, digit))
            case p.PlayDone(leg=leg):
                self._play_done(leg)
            case p.MediaTimeout(leg=leg):
                self._to_call(leg, e.MediaTimeout)
            case p.LegClosed(leg=leg):
                self._by_worker_leg.pop(leg, None)
                self._lost.discard(leg)
            case p.WorkerDied(worker_id=worker, legs=legs, exit_code=code):
                log.error("worker_died", worker=worker, legs=len(legs), exit_code=code)
                self._lost.update(legs)  # their Failed/HungUp reports that follow mean "lost"
            case p.CommandError(command=command, leg=leg, message=message):
                log.warning("worker_command_error", command=command, leg=leg, error=message)
            case p.Log(level=level, message=message):
                log_pjsip(level, message)
            case p.Refused(status=status, source_host=source):
                self._refused(WORKER_BUSY, status, source, event.from_user, event.to_user)
            case p.Recorded():
                if self._recordings is not None:
                    self._recordings.finished(event)
            case _:
                pass

    def _to_call(self, worker_leg: str, make: Callable[[str], e.Event]) -> None:
        found = self._by_worker_leg.get(worker_leg)
        if found is None:
            log.debug("event_for_unknown_leg", leg=worker_leg)
            return
        session, name = found
        session.queue.put_nowait(e.Lost(name) if worker_leg in self._lost else make(name))

    def _answered(self, worker_leg: str) -> None:
        found = self._by_worker_leg.get(worker_leg)
        if found is not None and found[1] != e.GP:  # the GP's ACK of our 200 is no news
            found[0].queue.put_nowait(e.LegAnswered(found[1]))

    def _play_done(self, worker_leg: str) -> None:
        found = self._by_worker_leg.get(worker_leg)
        if found is None:
            return
        session, name = found
        if worker_leg in session.playing:  # ignore the end of a prompt we stopped or replaced
            session.playing.discard(worker_leg)
            session.queue.put_nowait(e.PromptDone(name))

    def _incoming(self, event: p.Incoming, group: asyncio.TaskGroup) -> None:
        dialplan = self._dialplans.dialplan_for(event.to_user)
        decision = admit(
            source_allowed=self._limits.trunk_allows(event.source_host),
            number_known=dialplan is not None,
            accepting=self._accepting,
            active_calls=len(self._sessions),
            max_calls=self._limits.max_concurrent_calls,
            free_slots_beside_caller=self._free_beside(event.leg),
        )
        if decision is not Admission.ACCEPT or dialplan is None:
            status, reason = decision.status, decision.reason
            retry = self._limits.retry_after_seconds if status == 503 else None
            self._sip.send(p.Reject(event.leg, status, retry, reason))
            reason_label = decision.name.lower()
            self._refused(reason_label, status, event.source_host, event.from_user, event.to_user)
            return
        call_id = uuid.uuid4().hex[:16]
        gp_leg = event.leg
        env = dataclasses.replace(self._env, free_legs=lambda: self._free_beside(gp_leg))
        flow = CallFlow(call_id, env.lines[dialplan.area], env, self._clock())
        session = CallSession(call_id, gp_leg, event.from_user, flow)
        session.legs[e.GP] = gp_leg
        self._sessions[call_id] = session
        self._by_worker_leg[gp_leg] = (session, e.GP)
        self._idle.clear()
        group.create_task(self._run_call(session), name=f"call-{call_id}")

    def _refused(self, reason: str, status: int, source: str, caller: str, called: str) -> None:
        """Count every refusal; log the first per (reason, source network), then summaries."""
        if self._refusals is not None:
            self._refusals.call_refused(reason, status)
        now = self._clock()
        self._log_refusal_summary()
        if self._refusal_log.refused(reason, source, now):
            log.info(
                "call_refused",
                reason=reason,
                status=status,
                source=source,
                called=called,
                caller=caller,
                network=source_network(source),  # more from it: in the summaries
            )
        elif self._summary_timer is None:
            due = self._refusal_log.next_summary_at()
            if due is not None:
                loop = asyncio.get_running_loop()
                self._summary_timer = loop.call_later(max(0.0, due - now), self._on_summary_timer)

    def _on_summary_timer(self) -> None:
        self._summary_timer = None
        self._log_refusal_summary()
        due = self._refusal_log.next_summary_at()
        if due is not None:  # the clock lagged the timer: try again when it is due
            loop = asyncio.get_running_loop()
            delay = max(0.0, due - self._clock())
            self._summary_timer = loop.call_later(delay, self._on_summary_timer)

    def _log_refusal_summary(self, *, final: bool = False) -> None:
        now = self._clock()
        if final:
            if self._summary_timer is not None:
                self._summary_timer.cancel()
                self._summary_timer = None
            due = self._refusal_log.next_summary_at()
            now = max(now, due) if due is not None else now
        summary = self._refusal_log.summary_due(now)
        if summary is not None:
            log.warning("calls_refused_summary", **summary.as_log())

    def _free_beside(self, gp_leg: str) -> int:
        worker = self._sip.worker_of(gp_leg)
        return 0 if worker is None else self._sip.slots(worker)

    # -- one call ----------------------------------------------------------------------------

    async def _run_call(self, session: CallSession) -> None:
        structlog.contextvars.bind_contextvars(call_id=session.call_id)
        flow = session.flow
        try:
            await self._step(session, e.Offered(session.caller))
            while not flow.ended:
                deadline = flow.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self._clock())
                try:
                    event: e.Event = await asyncio.wait_for(session.queue.get(), timeout)
                except TimeoutError:
                    event = e.Tick()
                await self._step(session, event)
        except Exception:
            log.exception("call_failed")
            for worker_leg in session.legs.values():
                self._sip.send(p.Hangup(worker_leg, 500))
        finally:
            self._sessions.pop(session.call_id, None)
            if not self._sessions:
                self._idle.set()

    async def _step(self, session: CallSession, event: e.Event) -> None:
        try:
            effects = session.flow.handle(event, self._clock())
        except IllegalEvent as error:
            log.warning("illegal_event", event=type(event).__name__, error=str(error))
            return
        # Commands first: the peers are waiting; the records can follow a moment later.
        for effect in effects:
            if not d.is_domain_event(effect):
                self._execute(session, effect)
        facts = [effect for effect in effects if d.is_domain_event(effect)]
        # Every busy mark before the first await: another call's hunt may run while the records
        # are written, and must already see this call's consultants as busy.
        for fact in facts:
            self._presence.observe(fact)
        for fact in facts:
            await self._sink.handle(fact)

    def _execute(self, session: CallSession, command: c.Command) -> None:
        sip = self._sip
        match command:
            case c.Answer():
                sip.send(p.Answer(session.gp_leg))
            case c.Play(leg=leg, prompts=prompts, loop=loop):
                worker_leg = session.legs[leg]
                files = tuple(self._prompts.path_for(prompt) for prompt in prompts)
                session.playing.discard(worker_leg)
                if not loop:
                    session.playing.add(worker_leg)
                sip.send(p.Play(worker_leg, files, loop))
            case c.StopPlay(leg=leg):
                worker_leg = session.legs[leg]
                session.playing.discard(worker_leg)
                sip.send(p.StopPlay(worker_leg))
            case c.Dial(leg=leg, uri=uri, caller_display=display):
                worker_leg = f"{session.call_id}-{leg}"
                session.legs[leg] = worker_leg
                self._by_worker_leg[worker_leg] = (session, leg)
                sip.send(p.Dial(worker_leg, uri, display), near=session.gp_leg)
            case c.Hangup(leg=leg, status=status):
                sip.send(p.Hangup(session.legs[leg], status))
            case c.Bridge(a=a, b=b):
                recordings = self._recordings
                record = "" if recordings is None else recordings.plain_path(session.call_id)
                sip.send(p.Bridge(session.legs[a], session.legs[b], record))

    async def hang_up_all(self, grace: float) -> None:
        """Shutdown: end every call (the GP hears nothing more) and wait ``grace`` for them."""
        for session in list(self._sessions.values()):
            session.queue.put_nowait(e.HungUp(e.GP))
            self._sip.send(p.Hangup(session.gp_leg, 503))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)


def _failed(name: str, status: int, reason: str) -> e.Event:
    if name == e.GP:
        return e.HungUp(e.GP)  # the GP cancelled before we answered
    return e.LegFailed(name, status, reason)
