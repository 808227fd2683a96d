"""Hunt strategies: in what order to ring a tier's members, and how fast to add legs.

A strategy only orders and paces; the Hunter (hunt.py) enforces the rules every strategy obeys:
tiers in order (no NCN member before every free local member has been rung), members marked
busy or unavailable skipped, never more legs at once than the shell has room for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from callrouter.core.learning import DELAY_BIN_SECONDS, MemberStats, hour_of, recent_of
from callrouter.core.plan import Candidate, HuntPolicy, StrategyName

# A member who missed a call this recently is rung after the others (auto-pause).
PAUSE_AFTER_MISS_SECONDS = 300.0
# Fairness guard: a member whose recent accepted calls exceed FAIR_SHARE of the tier's (or 1/n in
# a tier of n, if larger), plus a margin so the first few calls of a day decide nothing, is rung
# after the others, and the member before them gets a full ring first. A share, not a multiple
# of the mean: in a two-member tier "2 x the mean" is the whole tier and never triggers.
FAIR_SHARE = 0.45
FAIRNESS_MARGIN = 0.5
# Adaptive pacing: add the next leg once the ringing member's chance of still answering is below
# ADD_WHEN_ANSWER_CHANCE_BELOW; before a member over their fair share, below ADD_FAIR_BELOW.
ADD_WHEN_ANSWER_CHANCE_BELOW = 0.2
ADD_FAIR_BELOW = 0.1


class Strategy:
    """The baseline shape: rota order, one leg at a time, each for the policy's ring time."""

    name = "base"
    serial = True  # one leg at a time
    tier_at_once = False  # ring a whole tier together; the next tier only when it is done
    ring_again_after_no_answer = True  # in later passes, ring again those who let it ring out
    hold_for_busy = False  # when only busy members are left, hold for them (up to max_wait)
    # When a leg ends while others still ring, add the next leg at once (True), or only when
    # the pace set by the legs still ringing says so (False: a leg replaces, never doubles).
    add_when_a_leg_ends = True

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        """The members of one tier in the order to ring them."""
        return list(members)

    def ring_seconds(self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats) -> float:
        return policy.ring_seconds

    def stagger_seconds(
        self,
        candidate: Candidate,
        policy: HuntPolicy,
        stats: MemberStats,
        *,
        tier: Sequence[Candidate] = (),
        now: float = 0.0,
    ) -> float:
        """How long after ringing ``candidate`` (of ``tier``) the next leg may be added while it
        still rings."""
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
        self,
        candidate: Candidate,
        policy: HuntPolicy,
        stats: MemberStats,
        *,
        tier: Sequence[Candidate] = (),
        now: float = 0.0,
    ) -> float:
        return 0.0


class Staggered(Strategy):
    """Rota order, adding the next leg every ``stagger_seconds`` while earlier legs still ring."""

    name = StrategyName.STAGGERED.value
    serial = False

    def stagger_seconds(
        self,
        candidate: Candidate,
        policy: HuntPolicy,
        stats: MemberStats,
        *,
        tier: Sequence[Candidate] = (),
        now: float = 0.0,
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

    Order: each member's observed chance of picking up within the ring time at this hour of the
    day, per second of the time they usually take, best first. A member who missed a call in the
    last few minutes goes after the others (auto-pause: in clinic, in theatre); anyone over their
    fair share of the tier's recent calls goes after everyone (the fairness guard, see
    ``over_fair_share``).

    Pacing: one leg at a time, a second only once the ringing member has become unlikely to
    answer: their learned pick-up chance given the seconds already rung in silence (from their
    own delay histogram) falls below ``ADD_WHEN_ANSWER_CHANCE_BELOW``, a low bar, so a colleague
    is rarely interrupted for a call someone else was about to take: rings per connected call
    stay at or under a plain rota's, while a member who will not answer (in clinic, away) is
    given up on early. While a member over their fair share waits their turn, the one ringing
    before them is given until ``ADD_FAIR_BELOW`` (nearly a full ring). A leg that ends is not
    replaced at once while another still rings: the ringing one keeps its pace.

    Learns only from MemberStats (leg results), never from anything the shell or the simulator
    knows beyond them.
    """

    name = StrategyName.ADAPTIVE.value
    serial = False
    ring_again_after_no_answer = False  # later passes are for members who were busy before
    hold_for_busy = True
    add_when_a_leg_ends = False

    def _learned(self, member: str, stats: MemberStats, now: float) -> tuple[float, float, float]:
        """(score, give-up seconds, give-up before an over-share member) for ``member``:
        score is the chance of a pick-up per second of the typical wait (the whisper's ~4 s
        included), the better the higher. Kept on the member's record until its next result
        (ordering runs on every pass)."""
        rec = stats.get(member)
        hour = hour_of(now)
        if rec is not None and rec.derived is not None and rec.derived[0] == hour:  # type: ignore[index]
            return rec.derived[1]  # type: ignore[index, no-any-return]
        mu, sigma = stats.log_delay(member)
        typical = math.exp(mu + sigma * sigma / 2)  # the lognormal's mean
        learned = (
            stats.answer_rate(member, now) / (typical + 4.0),
            give_up_on(member, stats, ADD_WHEN_ANSWER_CHANCE_BELOW, now),
            give_up_on(member, stats, ADD_FAIR_BELOW, now),
        )
        if rec is not None:
            rec.derived = (hour, learned)
        return learned

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        if len(members) < 2:
            return list(members)
        unfair = over_fair_share(members, stats, now)
        pause_since = now - PAUSE_AFTER_MISS_SECONDS
        keyed = []
        for position, candidate in enumerate(members):
            rec = stats.get(candidate.member_id)
            paused = rec is not None and rec.last_missed > pause_since
            score = self._learned(candidate.member_id, stats, now)[0]
            # Fairness first: a member over their share goes after one who just missed.
            keyed.append(
                (unfair.get(candidate.member_id, 0.0), paused, -score, position, candidate)
            )
        keyed.sort()
        return [item[-1] for item in keyed]

    def stagger_seconds(
        self,
        candidate: Candidate,
        policy: HuntPolicy,
        stats: MemberStats,
        *,
        tier: Sequence[Candidate] = (),
        now: float = 0.0,
    ) -> float:
        _, give_up, fair = self._learned(candidate.member_id, stats, now)
        unfair = over_fair_share(tier, stats, now)
        if unfair and max(unfair.values()) > unfair.get(candidate.member_id, 0.0):
            give_up = fair  # a member further over the fair share waits for this one
        return min(give_up, policy.ring_seconds)


def over_fair_share(
    members: Sequence[Candidate], stats: MemberStats, now: float
) -> dict[str, float]:
    """Members of a tier over their fair share of the tier's recent accepted calls, with how far
    over (in calls): the further over, the later they go."""
    if len(members) < 2:
        return {}
    taken = []
    for candidate in members:
        rec = stats.get(candidate.member_id)
        taken.append(0.0 if rec is None else recent_of(rec, now))
    limit = FAIR_SHARE * sum(taken) + FAIRNESS_MARGIN
    return {c.member_id: n - limit for c, n in zip(members, taken, strict=True) if n > limit}


def give_up_on(
    member: str,
    stats: MemberStats,
    theta: float = ADD_WHEN_ANSWER_CHANCE_BELOW,
    now: float | None = None,
) -> float:
    """Seconds after which ``member``, still not answering, will probably not answer at all:
    P(answers later | silent so far) = p·S(t) / (1 - p + p·S(t)) < theta, with p the learned
    chance of a pick-up within the ring time and S(t) the share of their pick-ups that came
    after t seconds (their delay histogram). Read at the histogram's bin edges."""
    p = stats.answer_rate(member, now)
    if p <= theta:
        return 0.0
    for k, later in enumerate(stats.answers_after(member)):
        if p * later < theta * (1.0 - p + p * later):
            return k * DELAY_BIN_SECONDS
    return math.inf


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
