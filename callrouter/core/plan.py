"""A hunt plan: who to ring for one call, tier by tier, and why each is there; and the policy
it is hunted by (compiled from a dialplan's specialty at load, ``settings/compile.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StrategyName(StrEnum):
    LINEAR = "linear"
    RINGALL = "ringall"
    STAGGERED = "staggered"
    LEAST_RECENT = "least_recent"
    ADAPTIVE = "adaptive"


@dataclass(frozen=True, slots=True)
class HuntPolicy:
    """How one specialty hunts. Defaults follow the real service: ~18 s a ring, local then NCN."""

    tiers: tuple[str, ...]  # team ids, rung in this order
    strategy: StrategyName = StrategyName.ADAPTIVE
    ring_seconds: float = 18.0
    loops: int = 2  # passes over the tiers
    max_wait_seconds: float = 240.0  # the GP's longest wait for an accept
    require_accept: bool = True  # the consultant presses 1 after the whisper
    confirm_seconds: float = 10.0  # the wait for that key once the whisper has been said
    stagger_seconds: float = 6.0
    max_parallel: int = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    """A consultant who may be rung: ``why`` names the rota layer or override that put them here."""

    member_id: str
    name: str
    uri: str
    why: str


@dataclass(frozen=True, slots=True)
class Tier:
    """One step of the hunt (``local`` team first, then ``ncn``), members in rota order."""

    name: str
    team: str
    members: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class HuntPlan:
    area: str
    specialty: str
    policy: HuntPolicy
    tiers: tuple[Tier, ...]

    def is_empty(self) -> bool:
        return not any(tier.members for tier in self.tiers)
