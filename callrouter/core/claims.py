"""Busy claims shared between engine nodes: who may ring a consultant when two nodes want one.
Pure: ``now`` is always given; the bus that carries claims is callrouter.adapters.mqtt_busy.

The rules every node follows:

1. A node *claims* a member when it starts a leg to them (``RINGING``), and strengthens the
   claim when they pick up (``ANSWERED``) and when they accept the call (``TALKING``). A claim
   keeps the instant it was first made (``at``) and is released when the node's last leg to the
   member ends.
2. Claims are totally ordered: a stronger phase beats a weaker one; in one phase the earlier
   ``at`` wins; at the same instant the lower node id wins. Every node applies this order to the
   same two claims, so every node reaches the same verdict without a further message.
3. A member holding an unexpired claim of another node is busy for this node's hunt.
4. A race (two nodes start a leg to one member before either hears of the other's claim) is
   settled by rule 2: the node whose claim loses *yields* — it cancels its leg, which ends as
   ``busy`` (not a failure of the consultant) — provided its leg is still only ringing. A leg
   the consultant has picked up is never yielded; its claim is now ``ANSWERED`` and beats the
   other node's ringing claim, which yields instead.
5. A claim lasts until ``until`` (``ttl`` seconds after it was last published); the owner
   refreshes it while it holds it, so a node that dies or loses the bus stops blocking the
   member within ``ttl``. A node seen offline (its Last Will) loses every claim at once, and
   its claims are ignored until it is seen online again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum


class Phase(IntEnum):
    """How far a node's leg to the member has got; a larger value is a stronger claim."""

    RINGING = 1
    ANSWERED = 2
    TALKING = 3


@dataclass(frozen=True, slots=True)
class Claim:
    """One node's claim on one member."""

    node: str
    member_id: str
    phase: Phase
    at: float  # POSIX seconds, when the claim was first made (the tie-break)
    until: float  # POSIX seconds: from then on it no longer counts

    def order(self) -> tuple[int, float, str]:
        """The claim's place in the total order of rule 2: smaller wins."""
        return (-self.phase, self.at, self.node)

    def beats(self, other: Claim) -> bool:
        return self.order() < other.order()

    def expired(self, now: float) -> bool:
        return now >= self.until


class TooManyClaimsError(OverflowError):
    """A new claim of another node would take the table past its bound."""


class ClaimBook:
    """This node's own claims and the other nodes' claims it has heard of."""

    def __init__(self, node: str, ttl: float, limit: int = 10_000) -> None:
        if ttl <= 0 or limit < 1:
            raise ValueError("ttl > 0 and limit >= 1")
        self.node = node
        self.ttl = ttl
        self._limit = limit
        self._own: dict[str, Claim] = {}
        self._others: dict[str, dict[str, Claim]] = {}  # member id -> node -> claim
        self._offline: set[str] = set()

    def __repr__(self) -> str:
        others = sum(len(by_node) for by_node in self._others.values())
        return f"<ClaimBook {self.node} own={len(self._own)} others={others}>"

    # -- our own claims ----------------------------------------------------------------------

    def claim(self, member_id: str, phase: Phase, now: float) -> Claim | None:
        """Claim ``member_id`` at ``phase`` (or strengthen our claim); the claim to publish, or
        None when ours already says as much (a weaker phase never lowers a claim)."""
        held = self._own.get(member_id)
        if held is not None and held.phase >= phase:
            return None
        at = now if held is None else held.at
        claim = Claim(self.node, member_id, phase, at, now + self.ttl)
        self._own[member_id] = claim
        return claim

    def release(self, member_id: str) -> bool:
        """Drop our claim; True if there was one (its clearing is to be published)."""
        return self._own.pop(member_id, None) is not None

    def own(self, member_id: str) -> Claim | None:
        return self._own.get(member_id)

    def held(self) -> list[Claim]:
        return list(self._own.values())

    def refresh(self, now: float) -> list[Claim]:
        """Our claims that have used a third of their life, renewed (to be published again)."""
        due = [c for c in self._own.values() if c.until - now <= self.ttl * 2 / 3]
        renewed = [replace(c, until=now + self.ttl) for c in due]
        for claim in renewed:
            self._own[claim.member_id] = claim
        return renewed

    def renew_all(self, now: float) -> list[Claim]:
        """Every claim of ours renewed (after a reconnect: the broker may have lost them)."""
        renewed = [replace(c, until=now + self.ttl) for c in self._own.values()]
        self._own.update((c.member_id, c) for c in renewed)
        return renewed

    def must_yield(self, member_id: str, now: float) -> bool:
        """True when our claim on ``member_id`` is only ringing and another node's beats it."""
        mine = self._own.get(member_id)
        if mine is None or mine.phase is not Phase.RINGING:
            return False
        return any(other.beats(mine) for other in self._live_others(member_id, now))

    # -- the other nodes' claims -------------------------------------------------------------

    def seen(self, claim: Claim, now: float) -> bool:
        """Another node's claim arrived; True if we must now yield our leg to that member.

        Ignored when it has expired or its node is offline. Raises ValueError for a claim in
        our own name and TooManyClaimsError when the table is full of live claims.
        """
        if claim.node == self.node:
            raise ValueError("a claim in our own name is not another node's")
        if claim.node in self._offline or claim.expired(now):
            self.cleared(claim.node, claim.member_id)
            return False
        by_node = self._others.get(claim.member_id)
        is_new = by_node is None or claim.node not in by_node
        if is_new and self._count() >= self._limit:
            self.drop_expired(now)
            if self._count() >= self._limit:
                raise TooManyClaimsError(claim.member_id)
        self._others.setdefault(claim.member_id, {})[claim.node] = claim
        return self.must_yield(claim.member_id, now)

    def cleared(self, node: str, member_id: str) -> None:
        """Another node released its claim."""
        by_node = self._others.get(member_id)
        if by_node is not None:
            by_node.pop(node, None)
            if not by_node:
                del self._others[member_id]

    def node_offline(self, node: str) -> int:
        """``node`` went away: drop its claims and ignore new ones until it is online again.
        Returns how many were dropped."""
        if node == self.node:
            return 0
        self._offline.add(node)
        dropped = 0
        for member_id in list(self._others):
            if node in self._others[member_id]:
                self.cleared(node, member_id)
                dropped += 1
        return dropped

    def node_online(self, node: str) -> None:
        self._offline.discard(node)

    def busy_elsewhere(self, member_id: str, now: float) -> bool:
        """True while another node holds an unexpired claim on ``member_id``."""
        return bool(self._live_others(member_id, now))

    def others(self, now: float) -> dict[str, list[str]]:
        """Member id -> the nodes claiming them (for the health page and tests)."""
        self.drop_expired(now)
        return {member: sorted(by_node) for member, by_node in self._others.items()}

    def drop_expired(self, now: float) -> None:
        for member_id in list(self._others):
            for claim in list(self._others[member_id].values()):
                if claim.expired(now):
                    self.cleared(claim.node, member_id)

    def _live_others(self, member_id: str, now: float) -> list[Claim]:
        by_node = self._others.get(member_id)
        if not by_node:
            return []
        for claim in [c for c in by_node.values() if c.expired(now)]:
            self.cleared(claim.node, member_id)
        return list(self._others.get(member_id, {}).values())

    def _count(self) -> int:
        return sum(len(by_node) for by_node in self._others.values())
