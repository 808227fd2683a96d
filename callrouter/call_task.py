"""One call's task: feed the flow its events and ticks, carry out its commands, hand its facts to
presence, learning and the sinks. Any failure inside the call still ends it: every worker leg is
hung up, every consultant leg gets its LegEnded and the call its CallEnded (from the call's
ledger), so records close and no consultant stays busy.

Time: the flow is given the call's own clock, the wall time when the call came in plus the
monotonic time since, so its records carry wall time and its deadlines are waits on the
monotonic clock that no step of the wall clock can move.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import structlog

from callrouter.call_ledger import CallLedger
from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core import events as e
from callrouter.core.callflow import CallFlow, IllegalEvent
from callrouter.engine_ports import Clock, EventSink, PromptFiles, RecordingPort, SipPort, Timer
from callrouter.sip import protocol as p

log = structlog.get_logger("callrouter.engine")

_FAILED_STATUS = 500  # what an unanswered GP hears when its call fails inside the engine


@dataclass(frozen=True, slots=True)
class _Due:
    """A deadline's timer fired; stale unless ``token`` is the call's current one."""

    token: int
    deadline: float  # in the flow's time


@dataclass(eq=False)
class CallSession:
    call_id: str
    gp_leg: str  # the worker's id for the GP's inbound leg
    caller: str
    flow: CallFlow
    wall_at_start: float
    monotonic_at_start: float
    queue: asyncio.Queue[e.Event | _Due] = field(default_factory=asyncio.Queue)
    legs: dict[str, str] = field(default_factory=dict)  # core leg name -> worker leg id
    playing: set[str] = field(default_factory=set)  # worker legs with a one-shot prompt
    ledger: CallLedger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = CallLedger(self.call_id)

    def now(self, clock: Clock) -> float:
        """The call's time: wall time at its start, advanced by the monotonic clock."""
        return self.wall_at_start + (clock.monotonic() - self.monotonic_at_start)

    def monotonic_of(self, flow_time: float) -> float:
        return self.monotonic_at_start + (flow_time - self.wall_at_start)


class FactObserver(Protocol):
    """Whoever keeps state from domain events as they happen (presence, learning)."""

    def observe(self, event: d.DomainEvent) -> None: ...


@dataclass
class CallRunner:
    """What every call's task shares: the ports, and the map from worker legs to calls."""

    sip: SipPort
    prompts: PromptFiles
    sink: EventSink
    observers: tuple[FactObserver, ...]
    clock: Clock
    recordings: RecordingPort | None
    by_worker_leg: dict[str, tuple[CallSession, str]]

    async def run(self, session: CallSession) -> None:
        """The call from its offer to its end (the caller drops the session afterwards)."""
        structlog.contextvars.bind_contextvars(call_id=session.call_id)
        flow = session.flow
        timer: Timer | None = None
        armed: float | None = None  # the deadline ``timer`` is for
        token = 0
        try:
            await self._step(session, e.Offered(session.caller))
            while not flow.ended:
                deadline = flow.next_deadline()
                if deadline != armed or timer is None:
                    if timer is not None:
                        timer.cancel()
                    token, timer, armed = token + 1, None, deadline
                    if deadline is not None:
                        due = _Due(token, deadline)
                        when = session.monotonic_of(deadline)
                        timer = self.clock.call_at(when, partial(session.queue.put_nowait, due))
                item = await session.queue.get()
                while isinstance(item, _Due) and item.token != token:
                    item = await session.queue.get()  # a timer we re-armed since: nothing due
                if isinstance(item, _Due):
                    timer = None  # fired
                    # Due by the monotonic clock: the flow's time is at least the deadline, even
                    # where converting between the two clocks rounds a hair short of it.
                    await self._step(session, e.Tick(), at_least=item.deadline)
                else:
                    await self._step(session, item)
        except Exception:
            log.exception("call_failed")
            await self._end_failed(session)
        finally:
            if timer is not None:
                timer.cancel()

    async def _step(self, session: CallSession, event: e.Event, at_least: float = 0.0) -> None:
        try:
            effects = session.flow.handle(event, max(session.now(self.clock), at_least))
        except IllegalEvent as error:
            log.warning("illegal_event", event=type(event).__name__, error=str(error))
            return
        # Commands first: the peers are waiting; the records can follow a moment later.
        for effect in effects:
            if not d.is_domain_event(effect):
                self._execute(session, effect)
        facts = [effect for effect in effects if d.is_domain_event(effect)]
        await self._publish(session, facts)

    async def _publish(self, session: CallSession, facts: list[d.DomainEvent]) -> None:
        # Every busy mark before the first await: another call's hunt may run while the records
        # are written, and must already see this call's consultants as busy.
        for fact in facts:
            session.ledger.observe(fact)
            for observer in self.observers:
                observer.observe(fact)
        for fact in facts:
            await self.sink.handle(fact)

    async def _end_failed(self, session: CallSession) -> None:
        """The call's task failed: hang up every leg, close what the call had opened."""
        for worker_leg in session.legs.values():
            if worker_leg in self.by_worker_leg:  # not closed yet
                with contextlib.suppress(Exception):
                    self.sip.send(p.Hangup(worker_leg, _FAILED_STATUS))
        facts = session.ledger.closing(session.now(self.clock))
        for fact in facts:  # presence and learning first: they cannot fail on I/O
            for observer in self.observers:
                observer.observe(fact)
        for fact in facts:
            try:
                await self.sink.handle(fact)
            except Exception:
                log.exception("call_end_not_recorded", fact=type(fact).__name__)

    def _execute(self, session: CallSession, command: c.Command) -> None:
        sip = self.sip
        match command:
            case c.Answer():
                sip.send(p.Answer(session.gp_leg))
            case c.Play(leg=leg, prompts=prompts, loop=loop):
                worker_leg = session.legs[leg]
                files = tuple(self.prompts.path_for(prompt) for prompt in prompts)
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
                self.by_worker_leg[worker_leg] = (session, leg)
                sip.send(p.Dial(worker_leg, uri, display), near=session.gp_leg)
            case c.Hangup(leg=leg, status=status):
                sip.send(p.Hangup(session.legs[leg], status))
            case c.Bridge(a=a, b=b):
                recordings = self.recordings
                record = "" if recordings is None else recordings.plain_path(session.call_id)
                sip.send(p.Bridge(session.legs[a], session.legs[b], record))
