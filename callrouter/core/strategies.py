"""Hunt strategies: in what order to ring a tier's members, and how fast to add legs.

A strategy only orders and paces; the Hunter (hunt.py) enforces the rules every strategy obeys:
tiers in order (no NCN member before every free local member has been rung), members marked
busy or unavailable skipped, never more legs at once than the shell has room for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate
from callrouter.settings.dialplan import HuntPolicy
from callrouter.settings.dialplan import Strategy as StrategyName

# A member who missed a call this recently is rung last in the first pass (auto-pause).
PAUSE_AFTER_MISS_SECONDS = 600.0
# Fairness guard: nobody may take more than this many accepted calls above the tier's least busy.
FAIRNESS_MARGIN = 3


class Strategy:
    """The baseline shape: rota order, one leg at a time, each for the policy's ring time."""

    name = "base"
    serial = True  # one leg at a time
    tier_at_once = False  # ring a whole tier together; the next tier only when it is done

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        """The members of one tier in the order to ring them."""
        return list(members)

    def ring_seconds(self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats) -> float:
        return policy.ring_seconds

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        """How long after ringing ``candidate`` the next leg may be added while it still rings."""
        return math.inf


class Linear(Strategy):
    """Each member in rota order for the ring time, local then NCN, looping: Asterisk's linear."""

    name = StrategyName.LINEAR.value


class RingAll(Strategy):
    """Every free member of a tier at once; the next tier when the whole tier has failed."""

    name = StrategyName.RINGALL.value
    serial = False
    tier_at_once = True

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        return 0.0


class Staggered(Strategy):
    """Rota order, adding the next leg every ``stagger_seconds`` while earlier legs still ring."""

    name = StrategyName.STAGGERED.value
    serial = False

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        return policy.stagger_seconds


class LeastRecent(Strategy):
    """Linear, but the member offered a call longest ago goes first: spreads calls fairly."""

    name = StrategyName.LEAST_RECENT.value

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        return sorted(members, key=lambda c: stats.last_offered(c.member_id))


class Adaptive(Strategy):
    """Learned order and pacing: likeliest, fastest answerers first, with a fairness guard.

    Each member is scored by observed answer likelihood per second of expected wait. Members who
    just missed a call go last (auto-pause), and anyone far ahead of the tier in accepted calls
    goes last too, so the keenest consultant is not given every call. The next leg is added once
    the ringing member is past the time they usually answer by, so a reliable member is rarely
    doubled up on, and an unknown one gets the policy's stagger.
    """

    name = StrategyName.ADAPTIVE.value
    serial = False

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        if not members:
            return []
        least = min(stats.accepted(c.member_id) for c in members)

        def key(c: Candidate) -> tuple[int, int, float]:
            paused = now - stats.last_missed(c.member_id) < PAUSE_AFTER_MISS_SECONDS
            unfair = stats.accepted(c.member_id) - least > FAIRNESS_MARGIN
            rate = stats.answer_rate(c.member_id)
            delay = stats.answer_delay(c.member_id)
            return (int(paused), int(unfair), -rate / (delay + 2.0))

        return sorted(members, key=key)

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        delay = stats.answer_delay(candidate.member_id)
        return min(max(1.5 * delay, 2.0), policy.stagger_seconds)


_BUILTIN: dict[str, Callable[[], Strategy]] = {
    s.name: s for s in (Linear, RingAll, Staggered, LeastRecent, Adaptive)
}


def strategy_named(name: str) -> Strategy:
    """A fresh instance of a built-in strategy; raises KeyError with the known names."""
    try:
        return _BUILTIN[name]()
    except KeyError:
        known = ", ".join(sorted(_BUILTIN))
        raise KeyError(f"unknown strategy {name!r}; known: {known}") from None


def builtin_names() -> list[str]:
    return sorted(_BUILTIN)
