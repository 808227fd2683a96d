"""Hunt strategies: in what order to ring a tier's members, and how fast to add legs.

A strategy only orders and paces; the Hunter (hunt.py) enforces the rules every strategy obeys:
tiers in order (no NCN member before every free local member has been rung), members marked
busy or unavailable skipped, never more legs at once than the shell has room for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

from callrouter.core.learning import MemberStats, recent_of
from callrouter.core.plan import Candidate
from callrouter.settings.dialplan import HuntPolicy
from callrouter.settings.dialplan import Strategy as StrategyName

# A member who missed a call this recently is rung after the others (auto-pause).
PAUSE_AFTER_MISS_SECONDS = 300.0
# Fairness guard: a member whose recent accepted calls exceed FAIR_SHARE_FACTOR x the tier's mean
# (plus a margin, so the first few calls of a day decide nothing) is rung after the others.
FAIR_SHARE_FACTOR = 2.0
FAIRNESS_MARGIN = 2.0
# Adaptive pacing: add the next leg once the ringing member's chance of still answering is below.
ADD_WHEN_ANSWER_CHANCE_BELOW = 0.55
_NORMAL = NormalDist()


class Strategy:
    """The baseline shape: rota order, one leg at a time, each for the policy's ring time."""

    name = "base"
    serial = True  # one leg at a time
    tier_at_once = False  # ring a whole tier together; the next tier only when it is done
    ring_again_after_no_answer = True  # in later passes, ring again those who let it ring out
    hold_for_busy = False  # when only busy members are left, hold for them (up to max_wait)

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
    """Learned order and pacing, with auto-pause and a fairness guard.

    Order: each member's observed chance of picking up within the ring time, per second of the
    time they usually take, best first. A member who missed a call in the last few minutes goes
    after the others (auto-pause); so does anyone who has recently taken much more than the
    tier's fair share of calls (the fairness guard), so the keenest consultant is not given
    every call. Pacing: the next leg is added only once the ringing member has become unlikely
    to answer (their learned answer chance, given the seconds already rung without an answer,
    falls below ``ADD_WHEN_ANSWER_CHANCE_BELOW``): a reliable member is rarely doubled up on,
    an unreliable one costs the GP little waiting. Learns only from MemberStats, never from
    anything the shell or the simulator knows beyond the legs' results.
    """

    name = StrategyName.ADAPTIVE.value
    serial = False
    ring_again_after_no_answer = False  # later passes are for members who were busy before
    hold_for_busy = True

    def _learned(self, member: str, stats: MemberStats) -> tuple[float, float]:
        """(score, give-up seconds) for ``member``: score is the chance of a pick-up per second
        of the typical wait (the whisper's ~4 s included), the better the higher. Kept on the
        member's record until its next result (ordering runs on every pass)."""
        rec = stats.get(member)
        if rec is not None and rec.derived is not None:
            return rec.derived  # type: ignore[return-value]
        mu, sigma = stats.log_delay(member)
        typical = math.exp(mu + sigma * sigma / 2)  # the lognormal's mean
        learned = (stats.answer_rate(member) / (typical + 4.0), give_up_on(member, stats))
        if rec is not None:
            rec.derived = learned
        return learned

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        if len(members) < 2:
            return list(members)
        records = [stats.get(c.member_id) for c in members]
        taken = [0.0 if r is None else recent_of(r, now) for r in records]
        fair = FAIR_SHARE_FACTOR * sum(taken) / len(members) + FAIRNESS_MARGIN
        pause_since = now - PAUSE_AFTER_MISS_SECONDS
        keyed = []
        for position, candidate in enumerate(members):
            rec = records[position]
            held_back = (rec is not None and rec.last_missed > pause_since) + (
                taken[position] > fair
            )
            score = self._learned(candidate.member_id, stats)[0]
            keyed.append((held_back, -score, position, candidate))
        keyed.sort()
        return [item[3] for item in keyed]

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        return min(self._learned(candidate.member_id, stats)[1], policy.ring_seconds)


def give_up_on(member: str, stats: MemberStats) -> float:
    """Seconds after which ``member``, still not answering, will probably not answer at all:
    P(answers later | silent so far) = p·S(t) / (1 - p + p·S(t)) < threshold, with p the
    learned pick-up chance and S the learned lognormal delay's survival within the ring time."""
    p = stats.answer_rate(member)
    theta = ADD_WHEN_ANSWER_CHANCE_BELOW
    if p <= theta:
        return 0.0
    mu, sigma = stats.log_delay(member)
    # S(t) at which the chance falls to theta; S is the share of answers still to come.
    survival = theta * (1 - p) / (p * (1 - theta))
    if survival >= 1.0:
        return 0.0
    return math.exp(mu + sigma * _NORMAL.inv_cdf(1 - survival))


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
