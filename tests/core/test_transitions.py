"""The call flow's declared transition table, checked both ways by a sweep of event sequences.

Every event a state's row accepts is thrown at flows of several lines (closed, rejecting unknown
callers, asking for an NHS number, with nobody on the rota) in seeded random order. Each change
of state must be one ``TRANSITIONS`` declares, every declared one must happen somewhere, an
event the flow refuses must leave it exactly as it was, and every leg's end is reported once.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from callrouter.core import domain as d
from callrouter.core import events as ev
from callrouter.core.callflow import DISPATCH, TRANSITIONS, CallFlow, IllegalEvent, State
from callrouter.core.env import IllegalTransition
from tests.core.harness import GP_NUMBER, Harness, dialplan

Edge = tuple[State, State]
DECLARED: set[Edge] = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


class RecordingFlow(CallFlow):
    """The real flow, noting each change of state it makes through ``_go``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.path: list[Edge] = []

    def _go(self, to: State) -> None:
        before = self.state
        super()._go(to)
        self.path.append((before, to))


@dataclass(frozen=True)
class Setup:
    name: str
    is_open: bool = True
    caller: str = GP_NUMBER
    nhs: str = "off"
    reject_unknown: bool = False
    nobody_on_call: bool = False


SETUPS = (
    Setup("plain"),
    Setup("closed", is_open=False),
    Setup("unknown caller rejected", caller="07700900123", reject_unknown=True),
    Setup("NHS number required", nhs="required"),
    Setup("NHS number optional", nhs="optional"),
    Setup("nobody on call", nobody_on_call=True),
)


def harness_for(setup: Setup) -> Harness:
    plan = dialplan(
        nhs_number=setup.nhs,
        unknown_callers="reject" if setup.reject_unknown else "allow",
    )
    h = Harness(plan, is_open=setup.is_open)
    if setup.nobody_on_call:
        h.plans.tiers = {s: [("local", [])] for s in ("cardiology", "dermatology", "renal", "ent")}
    h.flow = RecordingFlow("c1", h.line, h.env, h.now)
    return h


_GP_ENDS = (ev.HungUp, ev.MediaTimeout, ev.Lost)
_WEIGHTS = {ev.LegAnswered: 4, ev.Digit: 4, ev.PromptDone: 2, ev.LegFailed: 0.5}  # hunts connect


def random_event(rng: random.Random, h: Harness) -> ev.Event:
    """An event the current state's row accepts; ones that end the GP's leg come rarely."""
    row = DISPATCH[h.flow.state]
    legs = list(h.flow.legs)
    live = [leg.name for leg in legs if leg.phase.live]
    # Mostly the legs still up (they are the ones with news), now and then one already ended.
    consultants = live if live and rng.random() < 0.8 else [leg.name for leg in legs]
    ending = [kind for kind in _GP_ENDS if kind in row]
    leaves = 0.2 if h.flow.state is State.SURVEY else 0.03  # many skip the outcome question
    if ending and rng.random() < leaves:
        return rng.choice(ending)(ev.GP)
    kinds = [kind for kind in row if consultants or kind not in _GP_ENDS]
    kind = rng.choices(kinds, [_WEIGHTS.get(kind, 1) for kind in kinds])[0]
    to_gp = 0.2 if h.flow.state is State.HUNTING else 0.8  # keys and prompts: whose matter now
    leg = rng.choice(consultants) if consultants and rng.random() > to_gp else ev.GP
    if kind is ev.Digit:
        return ev.Digit(leg, rng.choice("1112223456789*#"))
    if not consultants and kind in (ev.LegFailed, ev.LegRinging, ev.LegAnswered):
        return ev.Tick()
    if kind is ev.LegFailed:
        status = rng.choice((486, 487, 408, 480, 500, 603))
        return ev.LegFailed(rng.choice(consultants), status, "sweep")
    if kind in (ev.LegRinging, ev.LegAnswered, *_GP_ENDS):
        return kind(rng.choice(consultants))  # type: ignore[no-any-return]
    if kind is ev.PromptDone:
        return ev.PromptDone(leg)
    return ev.Tick()


def walk(setup: Setup, seed: int, steps: int = 120) -> RecordingFlow:
    rng = random.Random(seed)
    h = harness_for(setup)
    flow = h.flow
    assert isinstance(flow, RecordingFlow)
    if rng.random() < 0.05:  # the GP gives up before the call is even answered
        h.send(rng.choice(_GP_ENDS[::2])(ev.GP))
    else:
        h.send(ev.Offered(setup.caller))
    for _ in range(steps):
        if flow.ended:
            break
        deadline = flow.next_deadline()
        # Let consultants answer before their ring time, and talk a while before the limit.
        patience = 0.05 if flow.state in (State.HUNTING, State.BRIDGED) else 0.3
        if deadline is not None and rng.random() < patience:
            h.now = max(h.now, deadline)  # on time, or late as a busy shell may be
            h.send(ev.Tick())
            after = flow.next_deadline()
            assert after is None or after > h.now, "a tick leaves no deadline due"
            continue
        event = random_event(rng, h)
        if isinstance(event, ev.Offered):
            continue  # offered once, at the start
        before = (repr(flow), repr(flow.timers), flow.next_deadline(), len(h.log))
        try:
            h.send(event, after=rng.choice((0.0, 0.5, 2.0, 7.0)))
        except IllegalEvent:
            assert (repr(flow), repr(flow.timers), flow.next_deadline(), len(h.log)) == before
    if not flow.ended:
        h.send(ev.HungUp(ev.GP))
    # Every leg's end is reported exactly once by the time the call has ended.
    ends = Counter(e.leg for e in h.of(d.LegEnded))
    assert ends == Counter(leg.name for leg in flow.legs)
    # The path is continuous and ends where the flow is.
    states = [State.OFFERED] + [to for _, to in flow.path]
    assert all(a == b for (_, a), (b, _) in zip(flow.path, flow.path[1:], strict=False))
    assert states[-1] is flow.state is State.ENDED
    return flow


def named(edges: set[Edge]) -> list[str]:
    return sorted(f"{a.name} -> {b.name}" for a, b in edges)


class TestTransitionTable:
    """Every declared transition happens, and only declared ones do."""

    def test_the_sweep_takes_every_declared_edge_and_no_other(self) -> None:
        seen: set[Edge] = set()
        for setup in SETUPS:
            for seed in range(300):
                seen.update(walk(setup, seed).path)
        assert seen <= DECLARED, f"undeclared: {named(seen - DECLARED)}"
        assert seen == DECLARED, f"never taken: {named(DECLARED - seen)}"

    @pytest.mark.parametrize("setup", SETUPS, ids=lambda s: s.name)
    def test_a_walk_ends_with_each_leg_reported_once(self, setup: Setup) -> None:
        flow = walk(setup, seed=1)
        assert flow.path[-1][1] is State.ENDED

    def test_an_undeclared_transition_raises_and_leaves_the_state(self) -> None:
        h = harness_for(SETUPS[0])
        h.send(ev.Offered(GP_NUMBER))
        assert h.flow.state is State.GREETING
        with pytest.raises(IllegalTransition, match="GREETING -> BRIDGED"):
            h.flow._go(State.BRIDGED)  # the one door for every change
        assert h.flow.state is State.GREETING

    def test_the_table_declares_a_row_for_every_state(self) -> None:
        assert set(TRANSITIONS) == set(State) == set(DISPATCH)
        assert not TRANSITIONS[State.ENDED]
