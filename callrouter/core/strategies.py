"""Hunt strategies: in what order to ring a tier's members, and how fast to add legs.

A strategy only orders and paces; the Hunter (hunt.py) enforces the rules every strategy obeys:
tiers in order (no NCN member before every free local member has been rung), members marked
busy or unavailable skipped, never more legs at once than the shell has room for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from callrouter.core.learning import (
    DELAY_BIN_SECONDS,
    HOUR_PRIOR_RINGS,
    MemberStats,
    hour_of,
    recent_of,
)
from callrouter.core.plan import Candidate, HuntPlan, HuntPolicy, StrategyName

# A member who missed a call this recently is rung after the others (auto-pause).
PAUSE_AFTER_MISS_SECONDS = 300.0
# Fairness guard: a member whose recent accepted calls exceed FAIR_SHARE of the tier's (or 1/n in
# a tier of n, if larger), plus a margin so the first few calls of a day decide nothing, is rung
# after the others, and the member before them gets a full ring first. A share, not a multiple
# of the mean: in a two-member tier "2 x the mean" is the whole tier and never triggers.
FAIR_SHARE = 0.45
FAIRNESS_MARGIN = 0.5
# Adaptive pacing: add the next leg once the ringing member's chance of still answering is below
# a pace set by the ring budget (``ring_budget``), at most MAX_PACE; before a member over their
# fair share, at most ADD_FAIR_BELOW.
ADD_WHEN_ANSWER_CHANCE_BELOW = 0.2  # give_up_on's default bar
ADD_FAIR_BELOW = 0.1
MAX_PACE = 0.8
PACE_FLOOR = 0.05  # the pace where the order saves nothing: a late extra leg, seldom wasted
# Of the rings a better order saves, the share spent on earlier legs (above 1: an early leg
# wastes less than the pace on average; tuned on the suite, where 0.7 left budget unspent).
RING_BUDGET_SHARE = 1.2
MIN_EXTRA_LEGS = 0.25
LATER_PASS_SHARE = 0.5  # of the later-pass rings saved (a rougher estimate: spent more warily)
NOISE_GUARD = 3.0  # a difference in pick-up rates counts once it is beyond ~1.7 of its noise


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
        plan: HuntPlan | None = None,
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
        plan: HuntPlan | None = None,
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
        plan: HuntPlan | None = None,
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

    Order: each member's learned chance of picking up within the ring time now (at this hour of
    the day; soon after they let a ring go, what they did after such misses: ``chance_now``),
    per second of the time they usually take, best first. A member who missed a call in the
    last few minutes goes after the others (auto-pause: in clinic, in theatre); anyone over their
    fair share of the tier's recent calls goes after everyone (the fairness guard, see
    ``over_fair_share``).

    Pacing: one leg at a time, the next added once the ringing member's chance of still
    answering, given the seconds already rung in silence (their own delay histogram), falls
    below a pace set by the ring budget (``ring_budget``): ringing in the learned order rather
    than the rota's saves rings, and only that saving is spent on earlier extra legs. Where the
    members look alike (no saving beyond the noise of their records) the pace is PACE_FLOOR: an
    extra leg only near the end of a ring, so rings per connected call stay at a plain rota's;
    where the order saves a lot, legs overlap more and calls connect sooner. While a member
    over their fair share waits their turn, the one ringing before them is given until
    ``ADD_FAIR_BELOW`` (nearly a full ring). A leg that ends is not replaced at once while
    another still rings: the ringing one keeps its pace.

    Learns only from MemberStats (leg results), never from anything the shell or the simulator
    knows beyond them.
    """

    name = StrategyName.ADAPTIVE.value
    serial = False
    ring_again_after_no_answer = False  # later passes are for members who were busy before
    hold_for_busy = True
    add_when_a_leg_ends = False

    def _learned(self, member: str, stats: MemberStats, now: float) -> float:
        """The member's score: the chance of a pick-up per second of the typical wait (the
        whisper's ~4 s included), the better the higher."""
        mu, sigma = stats.log_delay(member)
        typical = math.exp(mu + sigma * sigma / 2)  # the lognormal's mean
        return stats.chance_now(member, now) / (typical + 4.0)

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
            score = self._learned(candidate.member_id, stats, now)
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
        plan: HuntPlan | None = None,
    ) -> float:
        theta = max(ring_budget(tier, self.order(tier, stats, now), stats, now), PACE_FLOOR)
        if plan is not None:
            theta = max(theta, later_pass_budget(plan, stats, now))
        theta = fair_pace(theta, candidate, tier, stats, now)
        return min(give_up_on(candidate.member_id, stats, theta, now), policy.ring_seconds)


def expected_legs(rates: Sequence[float]) -> float:
    """Legs a one-at-a-time hunt rings, on average, before a pick-up (or the tier's end), when
    the members picked up with these chances in this order."""
    legs, silent = 0.0, 1.0
    for rate in rates:
        legs += silent
        silent *= 1.0 - rate
    return legs


def distinct_rates(tier: Sequence[Candidate], stats: MemberStats, now: float) -> dict[str, float]:
    """Each member's learned pick-up chance, shrunk toward the tier's mean by as much of their
    difference from it as their own uncertainty explains (positive-part James-Stein): members
    whose records differ only by chance count as alike, so noise is not taken for a better
    order."""
    rates = {c.member_id: stats.chance_now(c.member_id, now) for c in tier}
    mean = sum(rates.values()) / len(rates)
    hour = hour_of(now)
    out = {}
    for member, rate in rates.items():
        rec = stats.get(member)
        seen = HOUR_PRIOR_RINGS + (0.0 if rec is None else rec.hour_rung[hour])
        noise = rate * (1.0 - rate) / seen
        gap = (rate - mean) ** 2
        keep = max(0.0, 1.0 - NOISE_GUARD * noise / gap) if gap > 0.0 else 0.0
        out[member] = mean + keep * (rate - mean)
    return out


def later_pass_budget(plan: HuntPlan, stats: MemberStats, now: float) -> float:
    """The pace the rings a rota spends in later passes pay for: a plain rota rings everyone
    again when a whole pass fails, this strategy only those who were busy. Those legs, a call,
    are P(a pass fails) x the legs of a pass x (passes - 1); spent like ``ring_budget``."""
    loops = plan.policy.loops
    members = [c for tier in plan.tiers for c in tier.members]
    if loops < 2 or len(members) < 2:
        return 0.0
    rates = [stats.chance_now(c.member_id, now) for c in members]
    fails = 1.0
    for rate in rates:
        fails *= 1.0 - rate
    one_pass = expected_legs(rates)
    saving = 0.0
    reach = fails
    for _ in range(loops - 1):
        saving += reach * one_pass
        reach *= fails
    return min(MAX_PACE, LATER_PASS_SHARE * saving / max(one_pass - 1.0, MIN_EXTRA_LEGS))


def ring_budget(
    tier: Sequence[Candidate], ordered: Sequence[Candidate], stats: MemberStats, now: float
) -> float:
    """The pace (the chance of a late pick-up below which the next leg is added) that spends no
    more rings than a plain rota: ringing the tier in the learned order instead of the rota's
    saves ``expected_legs(rota) - expected_legs(learned)`` legs a call, and an early extra leg
    costs at most the pace in a wasted ring (on average well under it: the chance of a late
    pick-up keeps falling while both ring), so RING_BUDGET_SHARE of the saving is spent that
    way over the legs after the first. A tier whose members look alike gets 0: one leg at a
    time, as the rota would."""
    if len(tier) < 2:
        return 0.0
    rates = distinct_rates(tier, stats, now)
    rota = expected_legs([rates[c.member_id] for c in tier])
    ours = expected_legs([rates[c.member_id] for c in ordered])
    saving = rota - ours
    if saving <= 0.0:
        return 0.0
    return min(MAX_PACE, RING_BUDGET_SHARE * saving / max(ours - 1.0, MIN_EXTRA_LEGS))


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


def fair_pace(
    theta: float, candidate: Candidate, tier: Sequence[Candidate], stats: MemberStats, now: float
) -> float:
    """The fairness guard's pacing: ``theta``, but at most ADD_FAIR_BELOW (nearly a full ring)
    while a member further over their fair share than ``candidate`` waits behind it."""
    unfair = over_fair_share(tier, stats, now)
    if unfair and max(unfair.values()) > unfair.get(candidate.member_id, 0.0):
        return min(theta, ADD_FAIR_BELOW)
    return theta


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
    p = stats.answer_rate(member) if now is None else stats.chance_now(member, now)
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
