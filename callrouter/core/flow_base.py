"""What every part of the call flow shares: the environment, the call's fields and small helpers.

``CallFlow`` (callflow.py) is assembled from mixins along the call's phases: the IVR
(flow_ivr.py), the hunt (flow_hunt.py) and the conversation and its end (flow_after.py). They
meet here: the fields of one call, closing legs, ending the hunt, and a few methods each phase
provides to the others (declared below, defined where they belong).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callrouter.core import domain as d
from callrouter.core.commands import Command, Play, Prompt
from callrouter.core.directory import UNKNOWN, CallerDirectory, CallerIdentity
from callrouter.core.events import GP, HungUp, LegFailed
from callrouter.core.flow_ivr import IvrMixin, say_to_gp, spoken
from callrouter.core.hunt import Hunter, Presence
from callrouter.core.learning import MemberStats
from callrouter.core.legs import LIVE, Leg, LegPhase
from callrouter.core.plan import HuntPlan
from callrouter.core.reuse import hangup
from callrouter.core.states import State
from callrouter.core.strategies import Strategy
from callrouter.settings.dialplan import Dialplan, HuntPolicy, PromptSpec

__all__ = ["spoken"]  # made in flow_ivr (imported first); the phases take it from here

Effect = Command | d.DomainEvent
WHISPER_ALLOWANCE_SECONDS = 20.0  # how long a whisper may play before the confirm timer runs
FAREWELL_LIMIT_SECONDS = 60.0  # a goodbye prompt that never reports done still ends the call
SURVEY_SECONDS = 8.0

# Phase tests as tuples: membership then compares by identity, which is cheaper than hashing an
# Enum member (the simulator runs these a few million times a minute).
LIVE_PHASES = tuple(LIVE)
ENDED_PHASES = (LegPhase.CLOSING, LegPhase.DONE)
# Enum members read on every call, bound once: on Python 3.11 reading ``State.HUNTING`` goes
# through EnumType's __getattr__ hook (~70 ns; a module global costs ~10 ns) and a call makes ~50
# such reads. Members read rarely are spelled out in full.
OFFERED, HUNTING, BRIDGED, ENDED = State.OFFERED, State.HUNTING, State.BRIDGED, State.ENDED
LEG_WHISPER, LEG_ACCEPTED, LEG_CLOSING = LegPhase.WHISPER, LegPhase.ACCEPTED, LegPhase.CLOSING
RESULT_CANCELLED, RESULT_ACCEPTED = d.LegResult.CANCELLED, d.LegResult.ACCEPTED


class IllegalEvent(Exception):
    """The event cannot happen in this state; the flow is unchanged."""


class PlanSource(Protocol):
    def plan(self, area: str, specialty: str, now: float) -> HuntPlan: ...


@dataclass(frozen=True, slots=True)
class FlowEnv:
    """Everything a flow needs from outside, as pure lookups. Shared by all calls of an engine."""

    specialty_names: Mapping[str, str]
    directories: Mapping[str, CallerDirectory]  # by area
    plans: PlanSource
    presence: Presence
    stats: MemberStats
    strategy_for: Callable[[HuntPolicy], Strategy]
    is_open: Callable[[Dialplan, float], bool]
    free_legs: Callable[[], int]
    max_call_seconds: float
    # Said to both parties before they talk when calls are recorded (the GP with "hunting", the
    # consultant before the accept keys); None when calls are not recorded.
    recording_notice: Prompt | None = None


class FlowBase(IvrMixin):
    """The fields of one call and the helpers every phase uses."""

    _state: State  # behind CallFlow's ``state`` property; read directly on hot paths
    # Fields that start empty are class defaults: a call sets them only when they change
    # (one fewer store per field for each of the simulator's million calls).
    caller: CallerIdentity = UNKNOWN
    chosen_at: float | None = None
    connected_at: float | None = None
    talk_end_at: float | None = None
    specialty: str | None = None
    winner: Leg | None = None
    _hunter: Hunter | None = None
    _wait_deadline: float | None = None
    _call_deadline: float | None = None
    _farewell_deadline: float | None = None
    _end_reason: d.EndReason = d.EndReason.COMPLETED
    _gp_gone: bool = False
    _survey_tries: int = 0

    def __init__(self, call_id: str, dialplan: Dialplan, env: FlowEnv, now: float) -> None:
        super().__init__(dialplan, env.specialty_names)
        self.call_id = call_id
        self.dialplan = dialplan
        self.env = env
        self.state = OFFERED
        self.area = dialplan.area
        self.answered_at = now
        self.legs: dict[str, Leg] = {}
        self._out: list[Effect] = []

    def __repr__(self) -> str:
        legs = " ".join(f"{n}={leg.phase.value}" for n, leg in self.legs.items())
        return f"<CallFlow {self.call_id} {self.state.name}{' ' + legs if legs else ''}>"

    # -- helpers shared by the phases ----------------------------------------------------------

    def emit(self, effect: Effect) -> None:
        self._out.append(effect)

    def _call_id(self) -> str:
        return self.call_id

    def play_gp(self, *prompts: Prompt, loop: bool = False) -> None:
        self.gp_playing = not loop
        self._out.append(Play(GP, prompts, loop))

    def say_gp(self, spec: PromptSpec) -> None:
        """Play one fixed prompt to the GP (the same as ``play_gp(spoken(spec))``)."""
        self.gp_playing = True
        self._out.append(say_to_gp(spec))

    def farewell(self, prompt: Prompt, reason: d.EndReason, now: float) -> None:
        """Say a last prompt to the GP, then hang up."""
        self._end_reason = reason
        self.ivr_deadline = None
        self.state = State.FAREWELL
        self.play_gp(prompt)
        self._farewell_deadline = now + FAREWELL_LIMIT_SECONDS

    def _policy(self) -> HuntPolicy:
        assert self.specialty is not None
        return self.dialplan.specialties[self.specialty]

    def _close_leg(self, leg: Leg, result: d.LegResult, status: int, now: float) -> None:
        """Record a leg's end once; send Hangup when the leg is still up on our side."""
        out = self._out
        if leg.phase in LIVE_PHASES:
            leg.phase = LEG_CLOSING
            out.append(hangup(leg.name, result.value))
        leg.deadline = None
        member = leg.candidate.member_id
        out.append(
            d.LegEnded(
                self.call_id,
                now,
                leg.name,
                member,
                leg.tier,
                result,
                status,
                leg.ring_seconds(now),
            )
        )

    def _stop_hunt(self, result: d.LegResult, now: float) -> None:
        winner = self.winner
        for leg in self.legs.values():
            if leg.phase in LIVE_PHASES and leg is not winner:
                self._close_leg(leg, result, 0, now)
        self._wait_deadline = None
        self._hunter = None

    def _close_winner(self, leg: Leg, now: float) -> None:
        if self.talk_end_at is None:
            self.talk_end_at = now
            self._call_deadline = None
            self._close_leg(leg, RESULT_ACCEPTED, 200, now)

    # -- provided by the phases (declared here so each phase can call the others) ---------------

    @abstractmethod
    def _finish(self, reason: d.EndReason, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def _gp_left(self, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def _consultant_left(self, leg: Leg, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def _on_leg_failed(self, event: LegFailed, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""

    @abstractmethod
    def _on_hung_up(self, event: HungUp, now: float) -> None:
        """Provided by CallFlow or another phase mixin."""
