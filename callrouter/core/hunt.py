"""The hunter: decides which consultant to ring next, and when, for one call.

Pure and small: the call flow tells it when legs end and when its deadline comes; it answers with
the candidates to ring now. Rules every strategy obeys (checked here, not in the strategies):

1. Tiers in order: a member of tier N+1 is rung only once every free member of tier N has been
   rung in this pass, or earlier in the call if they are not to be rung again (earlier legs may
   still be ringing: overlap is allowed). This holds at the instant of each leg: a member who
   was busy at their turn but is free by the time a later tier's leg is due is rung first.
2. A member the presence says is busy or unavailable is skipped; a member who declined in this
   call is never rung again in it (nor, for strategies that say so, one who let it ring out);
   nobody has two legs at once.
3. While a consultant who picked up hears the whisper, no staggered leg is added: they accept
   nearly always, and another ring then would only interrupt a colleague for nothing.
4. No more legs at once than ``max_parallel`` (the policy's, capped by the shell's free slots).
5. A pass that finds nobody to ring waits one ring time before the next pass, so a hunt with
   everyone busy holds the GP instead of spinning; passes are bounded by ``policy.loops``. A
   strategy that ``hold_for_busy`` instead keeps holding (looking again every few seconds,
   without spending a loop) while the only members left untried are busy.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple, Protocol

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan
from callrouter.core.strategies import Strategy

HOLD_RECHECK_SECONDS = 5.0  # how often a hunt holding for busy members looks again


class Presence(Protocol):
    """What the shell knows of consultants right now (on a call through us, marked unavailable)."""

    def is_available(self, member_id: str) -> bool: ...


class Ring(NamedTuple):
    """Ring ``candidate`` (of tier ``tier``) for ``ring_seconds``. (A NamedTuple: immutable and
    cheaper to make than a frozen dataclass, and one is made per leg.)"""

    candidate: Candidate
    tier: str
    ring_seconds: float


class Hunter:
    """One call's hunt. ``__repr__`` shows the pass and the legs in flight, for tests and logs."""

    __slots__ = (
        "_active",
        "_answered",
        "_declined",
        "_holding",
        "_last_now",
        "_max_parallel",
        "_next_add_at",
        "_next_tier",
        "_pass",
        "_pass_dialled",
        "_plan",
        "_presence",
        "_queue",
        "_queue_tier",
        "_serial",
        "_skipped",
        "_stats",
        "_strategy",
        "_tier_at_once",
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
        self._serial = strategy.serial  # read on every step of a fill
        self._tier_at_once = strategy.tier_at_once
        self._presence = presence
        self._stats = stats
        self._max_parallel = max(1, min(max_parallel, plan.policy.max_parallel))
        self._active: dict[str, int] = {}  # member_id -> tier index
        self._declined: set[str] = set()
        self._answered: set[str] = set()  # legs in flight that picked up: whisper playing
        self._holding = False  # waiting for members skipped as busy to come free
        # The queue only ever holds one tier of the pass (the next is ordered when it empties),
        # so it keeps bare candidates and their tier index once: no tuple per queued member.
        self._queue: deque[Candidate] = deque()
        self._queue_tier = 0
        self._skipped: list[tuple[int, Candidate]] = []  # busy when their turn came, this pass
        self._pass = 0
        self._pass_dialled = 0
        self._next_tier = len(plan.tiers)  # a pass orders each tier when it reaches it
        self._next_add_at = -math.inf
        self._wait_until = -math.inf  # set when a pass found nobody: hold before the next
        self._last_now = -math.inf

    def __repr__(self) -> str:
        return (
            f"<Hunter {self._strategy.name} pass={self._pass}/{self._plan.policy.loops} "
            f"active={sorted(self._active)} queued={len(self._queue)}>"
        )

    def start(self, now: float) -> list[Ring]:
        return self._fill(now)

    def leg_done(
        self, member_id: str, declined: bool, now: float, *, rang_out: bool = False
    ) -> list[Ring]:
        """A leg ended without an accept; the next may start at once. ``rang_out``: nobody
        picked up before the ring time ran out (strategies may decline to ring them again)."""
        if member_id not in self._active:
            raise ValueError(f"no leg in flight to {member_id!r}")
        del self._active[member_id]
        self._answered.discard(member_id)
        if declined or (rang_out and not self._strategy.ring_again_after_no_answer):
            self._declined.add(member_id)
        if self._strategy.add_when_a_leg_ends or not self._active:
            self._next_add_at = -math.inf  # else the legs still ringing keep their pace
        return self._fill(now)

    def leg_answered(self, member_id: str) -> None:
        """A leg picked up: add no staggered leg while its consultant hears the whisper."""
        if member_id in self._active:
            self._answered.add(member_id)

    def on_timer(self, now: float) -> list[Ring]:
        return self._fill(now)

    def next_deadline(self) -> float | None:
        if self._wait_until != -math.inf:
            return self._wait_until
        if (
            self._active
            # At the cap no leg can be added before one ends, and its end refills at once
            # (leg_done): a timer now would wake the call for nothing.
            and len(self._active) < self._max_parallel
            and (self._queue or self._next_tier < len(self._plan.tiers))
            and not self._answered
            and self._last_now < self._next_add_at < math.inf
        ):
            return self._next_add_at  # a staggered leg is due while others still ring
        return None

    def exhausted(self) -> bool:
        """No leg in flight and nothing left to ring in any pass."""
        return (
            not self._active
            and not self._queue
            and self._next_tier >= len(self._plan.tiers)
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
        self._next_tier = 0
        return True

    def _queue_next_tier(self, now: float) -> None:
        """Order the next tier of this pass into the queue (most calls never need the NCN)."""
        index = self._next_tier
        self._next_tier += 1
        members = self._plan.tiers[index].members
        self._queue_tier = index
        self._queue.extend(self._strategy.order(members, self._stats, now))

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
        if self._holding:
            presence = self._presence
            if not any(presence.is_available(c.member_id) for _, c in self._skipped):
                self._wait_until = now + min(HOLD_RECHECK_SECONDS, policy.ring_seconds)
                return rings  # still all busy: look again later, without a new pass
            self._holding = False
        while len(self._active) < self._max_parallel:
            if self._active and (self._serial or now < self._next_add_at or self._answered):
                break
            if not self._queue:
                if self._next_tier < len(self._plan.tiers):
                    self._queue_next_tier(now)
                    continue
                if self._active or not self._next_pass(now):
                    break  # let this pass's legs finish before ringing anyone again
                continue
            index = self._queue_tier
            candidate = self._queue[0]
            if index and self._skipped:
                freed = self._freed_before(index)
                if freed is not None:
                    index, candidate = freed  # rule 1 holds at this instant, not only at queueing
                    if not self._may_take(index):
                        self._skipped.append(freed)
                        break
                    self._start(rings, index, candidate, now)
                    continue
            if self._tier_at_once and not self._may_take(index):
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

    def _next_pass(self, now: float) -> bool:
        """The pass is over and no leg rings: start the next pass (True), or hold or stop."""
        policy = self._plan.policy
        if self._pass > 0 and self._pass_dialled == 0:
            if self._skipped and self._strategy.hold_for_busy:
                # Only busy members are left: hold the GP and look again soon; such a pass does
                # not count against the loops (max_wait bounds the hold).
                self._wait_until = now + min(HOLD_RECHECK_SECONDS, policy.ring_seconds)
                self._pass_dialled = -1
                self._pass -= 1
                self._holding = True
            # Nobody was free in a whole pass: hold for a ring time, then try again.
            elif self._pass < policy.loops:
                self._wait_until = now + policy.ring_seconds
                self._pass_dialled = -1  # the wait is spent; the next pass may run
            return False
        return self._new_pass(now)

    def _freed_before(self, index: int) -> tuple[int, Candidate] | None:
        """A member of a tier before ``index`` who was busy at their turn but is free now."""
        for position, (tier, candidate) in enumerate(self._skipped):
            if tier < index and self._presence.is_available(candidate.member_id):
                del self._skipped[position]
                return tier, candidate
        return None

    def _start(self, rings: list[Ring], index: int, candidate: Candidate, now: float) -> None:
        policy = self._plan.policy
        strategy = self._strategy
        stats = self._stats
        self._active[candidate.member_id] = index
        self._pass_dialled += 1
        stats.offered(candidate.member_id, now)
        ring = strategy.ring_seconds(candidate, policy, stats)
        rings.append(Ring(candidate, self._plan.tiers[index].name, ring))
        if not strategy.serial:
            tier = self._plan.tiers[index].members
            self._next_add_at = now + strategy.stagger_seconds(
                candidate, policy, stats, tier=tier, now=now, plan=self._plan
            )
