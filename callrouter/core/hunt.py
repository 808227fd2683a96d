"""The hunter: decides which consultant to ring next, and when, for one call.

Pure and small: the call flow tells it when legs end and when its deadline comes; it answers with
the candidates to ring now. Rules every strategy obeys (checked here, not in the strategies):

1. Tiers in order: a member of tier N+1 is rung only once every free member of tier N has been
   rung in this pass (earlier legs may still be ringing: overlap is allowed).
2. A member the presence says is busy or unavailable is skipped; a member who declined in this
   call is never rung again in it; nobody has two legs at once.
3. No more legs at once than ``max_parallel`` (the policy's, capped by the shell's free slots).
4. A pass that finds nobody to ring waits one ring time before the next pass, so a hunt with
   everyone busy holds the GP instead of spinning; passes are bounded by ``policy.loops``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan
from callrouter.core.strategies import Strategy


class Presence(Protocol):
    """What the shell knows of consultants right now (on a call through us, marked unavailable)."""

    def is_available(self, member_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Ring:
    """Ring ``candidate`` (of tier ``tier``) for ``ring_seconds``."""

    candidate: Candidate
    tier: str
    ring_seconds: float


class Hunter:
    """One call's hunt. ``__repr__`` shows the pass and the legs in flight, for tests and logs."""

    __slots__ = (
        "_active",
        "_declined",
        "_last_now",
        "_max_parallel",
        "_next_add_at",
        "_pass",
        "_pass_dialled",
        "_plan",
        "_presence",
        "_queue",
        "_skipped",
        "_stats",
        "_strategy",
        "_wait_until",
    )

    def __init__(
        self,
        plan: HuntPlan,
        strategy: Strategy,
        presence: Presence,
        stats: MemberStats,
        max_parallel: int,
    ) -> None:
        self._plan = plan
        self._strategy = strategy
        self._presence = presence
        self._stats = stats
        self._max_parallel = max(1, min(max_parallel, plan.policy.max_parallel))
        self._active: dict[str, int] = {}  # member_id -> tier index
        self._declined: set[str] = set()
        self._queue: deque[tuple[int, Candidate]] = deque()
        self._skipped: list[tuple[int, Candidate]] = []  # busy when their turn came, this pass
        self._pass = 0
        self._pass_dialled = 0
        self._next_add_at = -math.inf
        self._wait_until = -math.inf  # set when a pass found nobody: hold before the next
        self._last_now = -math.inf

    def __repr__(self) -> str:
        return (
            f"<Hunter {self._strategy.name} pass={self._pass}/{self._plan.policy.loops} "
            f"active={sorted(self._active)} queued={len(self._queue)}>"
        )

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    def start(self, now: float) -> list[Ring]:
        return self._fill(now)

    def leg_done(self, member_id: str, declined: bool, now: float) -> list[Ring]:
        """A leg ended without an accept; the next may start at once."""
        if member_id not in self._active:
            raise ValueError(f"no leg in flight to {member_id!r}")
        del self._active[member_id]
        if declined:
            self._declined.add(member_id)
        self._next_add_at = -math.inf
        return self._fill(now)

    def on_timer(self, now: float) -> list[Ring]:
        return self._fill(now)

    def next_deadline(self) -> float | None:
        if self._wait_until != -math.inf:
            return self._wait_until
        if self._active and self._queue and self._last_now < self._next_add_at < math.inf:
            return self._next_add_at  # a staggered leg is due while others still ring
        return None

    def exhausted(self) -> bool:
        """No leg in flight and nothing left to ring in any pass."""
        return (
            not self._active
            and not self._queue
            and self._pass >= self._plan.policy.loops
            and self._wait_until == -math.inf
        )

    def _new_pass(self, now: float) -> bool:
        """Queue the next pass, ordered by the strategy. False when the passes are used up."""
        if self._pass >= self._plan.policy.loops:
            return False
        self._pass += 1
        self._pass_dialled = 0
        self._skipped.clear()
        for index, tier in enumerate(self._plan.tiers):
            for candidate in self._strategy.order(tier.members, self._stats, now):
                self._queue.append((index, candidate))
        return True

    def _may_take(self, index: int) -> bool:
        """Rule 1 for tier-at-once strategies: the next tier waits for this one to end."""
        if not self._strategy.tier_at_once or not self._active:
            return True
        return all(active_index == index for active_index in self._active.values())

    def _fill(self, now: float) -> list[Ring]:
        rings: list[Ring] = []
        self._last_now = now
        if now < self._wait_until:
            return rings
        self._wait_until = -math.inf
        policy = self._plan.policy
        while len(self._active) < self._max_parallel:
            if self._active and (self._strategy.serial or now < self._next_add_at):
                break
            if not self._queue:
                if self._active:
                    break  # let this pass's legs finish before ringing anyone again
                if self._pass > 0 and self._pass_dialled == 0:
                    # Nobody was free in a whole pass: hold for a ring time, then try again.
                    if self._pass < policy.loops:
                        self._wait_until = now + policy.ring_seconds
                        self._pass_dialled = -1  # the wait is spent; the next pass may run
                    break
                if not self._new_pass(now):
                    break
                continue
            index, candidate = self._queue[0]
            if index and self._skipped:
                freed = self._freed_before(index)
                if freed is not None:
                    index, candidate = freed  # rule 1 holds at this instant, not only at queueing
                    if not self._may_take(index):
                        self._skipped.append(freed)
                        break
                    self._start(rings, index, candidate, now)
                    continue
            if not self._may_take(index):
                break
            self._queue.popleft()
            member = candidate.member_id
            if member in self._active or member in self._declined:
                continue
            if not self._presence.is_available(member):
                self._skipped.append((index, candidate))
                continue
            self._start(rings, index, candidate, now)
        return rings

    def _freed_before(self, index: int) -> tuple[int, Candidate] | None:
        """A member of a tier before ``index`` who was busy at their turn but is free now."""
        for position, (tier, candidate) in enumerate(self._skipped):
            if tier < index and self._presence.is_available(candidate.member_id):
                del self._skipped[position]
                return tier, candidate
        return None

    def _start(self, rings: list[Ring], index: int, candidate: Candidate, now: float) -> None:
        policy = self._plan.policy
        self._active[candidate.member_id] = index
        self._pass_dialled += 1
        self._stats.offered(candidate.member_id, now)
        rings.append(
            Ring(
                candidate,
                self._plan.tiers[index].name,
                self._strategy.ring_seconds(candidate, policy, self._stats),
            )
        )
        self._next_add_at = now + self._strategy.stagger_seconds(candidate, policy, self._stats)
