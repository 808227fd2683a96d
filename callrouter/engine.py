"""The engine: turns worker events into core events for the right call, and starts one task per
call (callrouter.call_task) under one TaskGroup.

Nothing here decides anything about a call: admission is core.admission, the call itself is
core.callflow. The engine maps ids (worker leg ⇄ call + core leg), reserves each admitted call a
consultant slot in its worker, feeds presence (the live-leg count that tells the hunt who is
busy) and learning from the calls' facts, and hands refusals to the refusal log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable

import structlog

from callrouter.call_task import CallRunner, CallSession, FactObserver
from callrouter.core import domain as d
from callrouter.core import events as e
from callrouter.core.admission import Admission, admit
from callrouter.core.callflow import CallFlow, FlowEnv
from callrouter.engine_ports import (
    Clock,
    DialplanLookup,
    EngineLimits,
    EventSink,
    LoopClock,
    PromptFiles,
    RecordingPort,
    RefusalCounter,
    SipPort,
)
from callrouter.engine_refusals import Refusals
from callrouter.logsetup import log_pjsip
from callrouter.refusal_log import WORKER_BUSY, RefusalLimiter
from callrouter.sip import protocol as p

__all__ = ["Engine", "EngineLimits", "EnginePresence"]

log = structlog.get_logger("callrouter.engine")


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


class _Learning:
    """What the hunt learns of consultants (the running env's MemberStats, kept across
    reloads), fed from LegEnded facts as they happen, as presence is."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def observe(self, event: d.DomainEvent) -> None:
        if isinstance(event, d.LegEnded):
            stats = self._engine.env.stats
            stats.record(event.member_id, event.result, event.ring_seconds, event.at)


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
        clock: Clock | None = None,
        refusals: RefusalCounter | None = None,
        refusal_log: RefusalLimiter | None = None,
        recordings: RecordingPort | None = None,
        observers: tuple[FactObserver, ...] = (),
    ) -> None:
        self._sip = sip
        self._recordings = recordings
        self._dialplans = dialplans
        self._env = env
        self._presence = presence
        self._limits = limits
        self._clock = LoopClock() if clock is None else clock
        self._refusals = Refusals(self._clock, refusals, refusal_log)
        self._sessions: dict[str, CallSession] = {}
        self._by_worker_leg: dict[str, tuple[CallSession, str]] = {}
        self._calls = CallRunner(
            sip=sip,
            prompts=prompts,
            sink=sink,
            observers=(presence, _Learning(self), *observers),
            clock=self._clock,
            recordings=recordings,
            by_worker_leg=self._by_worker_leg,
        )
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
            self._refusals.log_summary(final=True)

    async def hang_up_all(self, grace: float) -> None:
        """Shutdown: end every call (the GP hears nothing more) and wait ``grace`` for them."""
        for session in list(self._sessions.values()):
            session.queue.put_nowait(e.HungUp(e.GP))
            self._sip.send(p.Hangup(session.gp_leg, 503))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)

    # -- worker events -----------------------------------------------------------------------

    def _dispatch(self, event: p.Event, group: asyncio.TaskGroup) -> None:
        self._route(event, group)
        if self.on_worker_event is not None:  # after: an Incoming's reservation is made
            self.on_worker_event(event)

    def _route(self, event: p.Event, group: asyncio.TaskGroup) -> None:
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
            case p.WorkerDied(worker_id=worker, legs=legs, exit_code=code):
                log.error("worker_died", worker=worker, legs=len(legs), exit_code=code)
                for leg in legs:  # the pool's one report of each lost leg
                    self._to_call(leg, e.Lost)
            case p.CommandError(command=command, leg=leg, message=message):
                log.warning("worker_command_error", command=command, leg=leg, error=message)
            case p.Log(level=level, message=message):
                log_pjsip(level, message)
            case p.Refused(status=status, source_host=source):
                # 403: the worker's gate refused a source outside trunk_allow before pjsua
                forbidden = status == Admission.FORBIDDEN.status
                reason = Admission.FORBIDDEN.name.lower() if forbidden else WORKER_BUSY
                self._refusals.refused(reason, status, source, event.from_user, event.to_user)
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
        session.queue.put_nowait(make(name))

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
        gp_leg = event.leg
        decision = admit(
            source_allowed=self._limits.trunk_allows(event.source_host),
            number_known=dialplan is not None,
            accepting=self._accepting,
            active_calls=len(self._sessions),
            max_calls=self._limits.max_concurrent_calls,
            free_slots_beside_caller=self._sip.free_for(gp_leg),
        )
        if decision is Admission.ACCEPT and not self._sip.reserve(gp_leg):
            decision = Admission.NO_SLOT
        if decision is not Admission.ACCEPT or dialplan is None:
            status, reason = decision.status, decision.reason
            retry = self._limits.retry_after_seconds if status == 503 else None
            self._sip.send(p.Reject(gp_leg, status, retry, reason))
            reason_label = decision.name.lower()
            source = event.source_host
            self._refusals.refused(reason_label, status, source, event.from_user, event.to_user)
            return
        call_id = uuid.uuid4().hex[:16]
        env = dataclasses.replace(self._env, free_legs=lambda: self._sip.free_for(gp_leg))
        wall, monotonic = self._clock.wall(), self._clock.monotonic()
        flow = CallFlow(call_id, dialplan, env, wall)
        session = CallSession(call_id, gp_leg, event.from_user, flow, wall, monotonic)
        session.legs[e.GP] = gp_leg
        self._sessions[call_id] = session
        self._by_worker_leg[gp_leg] = (session, e.GP)
        self._idle.clear()
        group.create_task(self._run_call(session), name=f"call-{call_id}")

    async def _run_call(self, session: CallSession) -> None:
        try:
            await self._calls.run(session)
        finally:
            self._sessions.pop(session.call_id, None)
            if not self._sessions:
                self._idle.set()

    def give_up_leg(self, call_id: str, leg: str) -> None:
        """Another engine node won the race for this leg's consultant (callrouter.shared_presence):
        cancel the leg; the hunt hears "busy" (the consultant is, elsewhere) and moves on."""
        session = self._sessions.get(call_id)
        worker_leg = None if session is None else session.legs.get(leg)
        if session is None or worker_leg is None:
            return
        log.info("leg_given_up", call_id=call_id, leg=leg, reason="busy on another node")
        self._sip.send(p.Hangup(worker_leg, 487))
        session.queue.put_nowait(e.LegFailed(leg, 486, "busy on another node"))


def _failed(name: str, status: int, reason: str) -> e.Event:
    if name == e.GP:
        return e.HungUp(e.GP)  # the GP cancelled before we answered
    return e.LegFailed(name, status, reason)
