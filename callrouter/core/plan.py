"""A hunt plan: who to ring for one call, tier by tier, and why each is there."""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.settings.dialplan import HuntPolicy

__all__ = ["Candidate", "HuntPlan", "HuntPolicy", "Tier"]


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
