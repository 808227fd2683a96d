"""What a call flow needs from outside, as pure lookups, and what it hands back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callrouter.core import domain as d
from callrouter.core.commands import Command
from callrouter.core.hunt import Presence
from callrouter.core.learning import MemberStats
from callrouter.core.line import Line
from callrouter.core.plan import HuntPlan, HuntPolicy
from callrouter.core.strategies import Strategy

Effect = Command | d.DomainEvent  # commands for the shell, domain events for the sinks


class IllegalEvent(Exception):
    """The event cannot happen in this state; the flow is unchanged."""


class IllegalTransition(Exception):
    """A change of state the table does not declare (a bug in the flow); the state is unchanged."""


class PlanSource(Protocol):
    def plan(self, area: str, specialty: str, now: float) -> HuntPlan: ...


@dataclass(frozen=True, slots=True)
class FlowEnv:
    """Shared by all calls of an engine; made again on every reload."""

    lines: Mapping[str, Line]  # by area
    plans: PlanSource
    presence: Presence
    stats: MemberStats
    strategy_for: Callable[[HuntPolicy], Strategy]
    is_open: Callable[[str, float], bool]  # (area, now): inside the line's service hours
    free_legs: Callable[[], int]
    max_call_seconds: float
