"""The simulated world around the real call flow: GPs, consultants and a heap of timestamps.

The world plays the shell's part. It feeds each ``CallFlow`` the events a real call would bring
(the GP keying the specialty during the greeting, consultants answering, hearing the whisper
and pressing 1 or 2, the GP giving up, the talk ending; a leg's 180 Ringing is left out, see
``_on_dial``), ticks each flow at its
``next_deadline`` and carries out its commands: ``Dial`` makes the member's drawn behaviour
happen, ``Hangup`` cancels a leg, ``Bridge`` keeps the consultant busy for the call length.
Nothing sleeps: the next event is popped from a heap. This file is the hot loop; it avoids
per-event allocation (events are reused, behaviour is pre-drawn) and dispatches on type.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping

from callrouter.core import domain as d
from callrouter.core.callflow import CallFlow, Effect, FlowEnv, State
from callrouter.core.commands import Answer, Bridge, Dial, Hangup, Play, StopPlay
from callrouter.core.events import (
    GP,
    Digit,
    Event,
    HungUp,
    LegAnswered,
    LegFailed,
    Offered,
    PromptDone,
    Tick,
)
from callrouter.core.hunting import WHISPER_ALLOWANCE_SECONDS
from callrouter.core.learning import MemberStats
from callrouter.core.plan import HuntPlan
from callrouter.core.strategies import Strategy, strategy_named
from callrouter.settings.compile import compile_lines
from callrouter.sim.calls import Busy, LineRuntime, PerLeg, SimCall, SimLeg
from callrouter.sim.draws import CHUNK, Arrivals, AwaySpells, BehaviourChunk, behaviour_chunk
from callrouter.sim.informed import Informed, parse_informed
from callrouter.sim.report import Tally
from callrouter.sim.scenario import Scenario

GP_KEYS_AFTER_SECONDS = 3.0  # the GP keys the specialty 3 s into the greeting (barge-in)
KEY_AFTER_WHISPER_SECONDS = 1.5  # a consultant presses 1 or 2 this long after the whisper ends
SPOKEN_CHARS_PER_SECOND = 14.0  # text-to-speech pace, for the whisper's length
BUSY_REPORT_SECONDS = 0.05  # 486 from a member already on a call
FREE_LEGS = 3  # consultant legs one SIP worker can hold beside its GP (pjsua2 wheels cap at 4)
MAX_CALL_SECONDS = 3600.0

# Heap event kinds.
_TICK, _ANSWER, _WHISPER_DONE, _KEY, _BUSY, _TALK_END = range(6)
_IVR = frozenset({State.GREETING, State.NHS, State.MENU})
_TICK_EVENT = Tick()
# Effects the world has nothing to do for (one set lookup instead of a walk down the chain).
_IGNORED = frozenset(
    {
        d.CallOffered,
        d.CallAnswered,
        d.LegPickedUp,
        d.NhsNumberCaptured,
        d.OutcomeRecorded,
        Answer,
        StopPlay,
    }
)
_GP_HUNG_UP = HungUp(GP)


class World:
    """One strategy's run over the arrivals. ``run()`` returns the tally."""

    def __init__(
        self,
        scenario: Scenario,
        arrivals: Arrivals,
        strategy: str,
        *,
        seed: int,
        call_length: tuple[float, float],
        patience: tuple[float, float],
        away: Mapping[str, AwaySpells] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.arrivals = arrivals
        self.seed = seed
        self.length_mu, self.length_sigma = call_length
        self.patience_mu, self.patience_sigma = patience
        self.away = dict(away or {})
        self.progress = progress
        self.tally = Tally()
        self.busy = Busy()
        self.current: SimCall | None = None
        self.heap: list[tuple[float, int, int, SimCall, SimLeg | None]] = []
        self.seq = itertools.count()
        self.width = max((len(line.universe) for line in scenario.lines), default=1) or 1
        compiled = compile_lines(scenario.dialplans, scenario.specialty_names)
        self.lines = [
            LineRuntime(
                line.area,
                line.specialty,
                compiled[line.area],
                Offered(scenario.callers[line.area]),
                tuple(Digit(GP, key) for key in line.keys),
                {member: slot for slot, member in enumerate(line.universe)},
                tuple(scenario.behaviour[m] for m in line.universe),
            )
            for line in scenario.lines
        ]
        setting = parse_informed(strategy)
        chosen: Strategy = (
            strategy_named(strategy)
            if setting is None
            else Informed(
                scenario.behaviour, self.away, scenario.zone, setting.theta, fair=setting.fair
            )
        )
        dialplans = scenario.dialplans
        self.env = FlowEnv(
            lines=compiled,
            plans=self,
            presence=self.busy,
            stats=MemberStats(),
            strategy_for=lambda _policy: chosen,
            is_open=lambda area, now: scenario.is_open(dialplans[area], now),
            free_legs=lambda: FREE_LEGS,
            max_call_seconds=MAX_CALL_SECONDS,
        )
        self.whispers_played: set[float] = set()  # each whisper's length, for the bound's test
        self._answered = PerLeg(LegAnswered)
        self._whisper_done = PerLeg(PromptDone)
        self._accept = PerLeg(lambda leg: Digit(leg, "1"))
        self._decline = PerLeg(lambda leg: Digit(leg, "2"))

    # -- the PlanSource the flows ask (records the plan on the call, for the tier check) -------

    def plan(self, area: str, specialty: str, now: float) -> HuntPlan:
        found = self.scenario.plans(area, specialty, now)
        call = self.current
        assert call is not None
        call.plan = found
        call.first_tier = found.tiers[0].name if found.tiers else None
        return found

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> Tally:
        heap = self.heap
        pop = heapq.heappop
        feed = self.feed
        times = self.arrivals.times
        total = len(times)
        index = 0
        # A call is taken from the arrivals when its GP keys the specialty, 3 s in: nothing
        # else can happen to it before, so its Offered and its keys are fed together.
        next_keys = times[0] + GP_KEYS_AFTER_SECONDS if total else math.inf
        chunk: BehaviourChunk | None = None
        while True:
            if heap and heap[0][0] <= next_keys:
                at, _, kind, call, leg = pop(heap)
                if kind == _TICK:
                    if call.tick_at == at:
                        call.tick_at = None
                        patience = call.patience_at
                        if patience is not None and patience <= at:
                            call.patience_at = None  # the GP gives up waiting
                            feed(call, _GP_HUNG_UP, at)
                        else:
                            feed(call, _TICK_EVENT, at)
                elif kind == _ANSWER:
                    if leg.alive:  # type: ignore[union-attr]
                        feed(call, self._answered[leg.name], at)  # type: ignore[union-attr]
                elif kind == _WHISPER_DONE:
                    if leg.alive:  # type: ignore[union-attr]
                        feed(call, self._whisper_done[leg.name], at)  # type: ignore[union-attr]
                        self._push(at + KEY_AFTER_WHISPER_SECONDS, _KEY, call, leg)
                elif kind == _KEY:
                    if leg.alive:  # type: ignore[union-attr]
                        keys = self._accept if leg.accepts else self._decline  # type: ignore[union-attr]
                        feed(call, keys[leg.name], at)  # type: ignore[union-attr]
                elif kind == _TALK_END:
                    if call.flow.state is not State.ENDED:
                        feed(call, _GP_HUNG_UP, at)
                elif kind == _BUSY and leg.alive:  # type: ignore[union-attr]
                    self._leg_gone(leg)  # type: ignore[arg-type]
                    feed(call, LegFailed(leg.name, 486, "Busy Here"), at)  # type: ignore[union-attr]
                continue
            if index >= total:
                break
            if chunk is None or index - chunk.first >= CHUNK:
                chunk = behaviour_chunk(self.seed, index // CHUNK, self.width)
                if self.progress is not None:
                    self.progress(index)
            self._arrive(index, times[index], next_keys, chunk)
            index += 1
            next_keys = times[index] + GP_KEYS_AFTER_SECONDS if index < total else math.inf
        if self.progress is not None:
            self.progress(total)
        return self.tally

    def _push(self, at: float, kind: int, call: SimCall, leg: SimLeg | None) -> None:
        heapq.heappush(self.heap, (at, next(self.seq), kind, call, leg))

    def _arrive(self, index: int, now: float, keys_at: float, chunk: BehaviourChunk) -> None:
        line = self.lines[self.arrivals.lines[index]]
        flow = CallFlow(f"c{index}", line.line, self.env, now)
        call = SimCall(index, flow, line, chunk, (index - chunk.first) * self.width)
        call.hour = self.arrivals.hours[index]
        self.tally.offered += 1
        self.current = call
        effects = flow.handle(line.offered, now)
        if flow.state is not State.GREETING:  # closed, or caller rejected: a goodbye to run
            self.apply(call, effects, now)
        # Otherwise the effects are the answer and the greeting, with no deadline: nothing to do.
        for digit in line.keys:  # barge-in: the GP keys during the greeting
            if flow.state not in _IVR:
                break
            self.feed(call, digit, keys_at)

    def feed(self, call: SimCall, event: Event, now: float) -> None:
        """Hand one event to the flow and carry out what it returns."""
        self.current = call
        self.apply(call, call.flow.handle(event, now), now)

    def apply(self, call: SimCall, effects: list[Effect], now: float) -> None:
        """Carry out a flow's effects and re-arm its tick. Dispatch is an ``is`` chain after
        one set lookup for the effects the world ignores: this runs ~10 times per call."""
        flow = call.flow
        for effect in effects:
            kind = type(effect)
            if kind in _IGNORED:
                continue
            if kind is Dial:
                self._on_dial(call, effect, now)  # type: ignore[arg-type]
            elif kind is d.LegEnded:
                # learning is fed from the facts, as the engine feeds it
                ended: d.LegEnded = effect  # type: ignore[assignment]
                self.env.stats.record(ended.member_id, ended.result, ended.ring_seconds, now)
            elif kind is d.LegStarted:
                self.tally.specialty(call.line.specialty).rings += 1
                if effect.tier is not call.first_tier:  # type: ignore[union-attr]
                    self._check_tiers(call, effect.tier)  # type: ignore[union-attr]
            elif kind is Hangup:
                if effect.leg != GP:  # type: ignore[union-attr]
                    leg = call.legs[effect.leg]  # type: ignore[union-attr]
                    if leg.alive:
                        self._leg_gone(leg)
            elif kind is Play:
                if effect.leg != GP:  # type: ignore[union-attr]
                    self._on_whisper(call, effect, now)  # type: ignore[arg-type]
            elif kind is d.Connected:
                self._on_connected(call, effect)  # type: ignore[arg-type]
            elif kind is Bridge:
                z = call.chunk.length_z[call.index - call.chunk.first]
                call.talk_end_at = end = now + math.exp(self.length_mu + self.length_sigma * z)
                heapq.heappush(self.heap, (end, next(self.seq), _TALK_END, call, None))
            elif kind is d.SpecialtyChosen:
                self.tally.specialty(call.line.specialty).chosen += 1
                z = call.chunk.patience_z[call.index - call.chunk.first]
                call.patience_at = now + math.exp(self.patience_mu + self.patience_sigma * z)
            elif kind is d.CallEnded:
                self._on_ended(call, effect)  # type: ignore[arg-type]
        deadline = None if flow.state is State.ENDED else flow.next_deadline()
        patience = call.patience_at
        if patience is not None and (deadline is None or patience < deadline):
            # The GP's patience shares the call's one timer: sooner than the flow's deadline.
            if flow.state is State.HUNTING:
                deadline = patience
            else:
                call.patience_at = None  # connected (or ending): patience no longer matters
        if deadline != call.tick_at:
            call.tick_at = deadline  # an earlier entry for another time is now stale
            # A deadline after the talk's end (the flow's hour-long call limit) cannot come
            # first: the hang-up ends the call. Not pushing it spares a push and a pop per call.
            if deadline is not None and not (call.talk_end_at and deadline > call.talk_end_at):
                heapq.heappush(self.heap, (deadline, next(self.seq), _TICK, call, None))

    # -- commands -----------------------------------------------------------------------------

    def _on_dial(self, call: SimCall, dial: Dial, now: float) -> None:
        member = dial.member_id
        slot = call.line.slots[member]
        at = call.base + slot
        chunk = call.chunk
        habit = call.line.behaviour[slot]
        leg = SimLeg(dial.leg, member, chunk.accept_u[at] < habit.accept_probability)
        call.legs[dial.leg] = leg
        call.rung.add(member)
        legs = self.busy.legs
        already = legs.get(member, 0)
        legs[member] = already + 1
        if already:
            self._push(now + BUSY_REPORT_SECONDS, _BUSY, call, leg)
            return
        # The 180 Ringing is not fed: it would only move the leg from DIALING to RINGING, which
        # no rule of the flow tells apart (both are unanswered), and emit a LegRang the world
        # ignores. One handle() call and one event fewer per leg.
        spells = self.away.get(member)
        if spells is not None and spells.away_at(now):
            return  # away (in clinic, theatre): lets it ring out
        if chunk.answer_u[at] < habit.answers_at(call.hour):
            delay = math.exp(habit.delay_mu + habit.delay_sigma * chunk.delay_z[at])
            heapq.heappush(self.heap, (now + delay, next(self.seq), _ANSWER, call, leg))

    def _leg_gone(self, leg: SimLeg) -> None:
        leg.alive = False
        self.busy.legs[leg.member] -= 1

    def _on_whisper(self, call: SimCall, play: Play, now: float) -> None:
        """The consultant hears the whisper (its length from its words), then presses a key.
        PromptDone is fed only where it matters: a whisper so long that the confirm timer,
        which it restarts, would otherwise run out first."""
        seconds = sum(len(prompt.text) for prompt in play.prompts) / SPOKEN_CHARS_PER_SECOND
        self.whispers_played.add(seconds)
        leg = call.legs[play.leg]
        if seconds + KEY_AFTER_WHISPER_SECONDS < WHISPER_ALLOWANCE_SECONDS:
            # The key comes while the flow's whisper allowance still runs: the whisper's end
            # changes nothing, so it is not reported (one event fewer per answered leg).
            self._push(now + seconds + KEY_AFTER_WHISPER_SECONDS, _KEY, call, leg)
        else:
            self._push(now + seconds, _WHISPER_DONE, call, leg)

    # -- domain events ------------------------------------------------------------------------

    def _check_tiers(self, call: SimCall, tier_name: str) -> None:
        """Tier priority: every free member of the earlier tiers must have been rung already."""
        plan = call.plan
        assert plan is not None
        busy = self.busy.legs
        rung = call.rung
        for tier in plan.tiers:
            if tier.name == tier_name:
                return
            for candidate in tier.members:
                member = candidate.member_id
                if member not in rung and not busy.get(member):
                    self.tally.tier_violations += 1
                    return

    def _on_connected(self, call: SimCall, event: d.Connected) -> None:
        self.tally.specialty(call.line.specialty).on_connected(call.index, event)

    def _on_ended(self, call: SimCall, event: d.CallEnded) -> None:
        if event.specialty is not None:  # else: ended before choosing (closed, unknown caller)
            self.tally.specialty(call.line.specialty).on_ended(event)
