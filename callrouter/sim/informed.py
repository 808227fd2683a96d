"""``informed``: a reference strategy that knows every member's true habits, but not the draws.

The bound (bound.py) reads each call's draws: it knows who *will* answer and how fast, so it
connects every call through its fastest answerer. No online strategy can know that. This one
is told what an online strategy could at best learn, exactly and from the start:

- each member's true pick-up chance at the call's hour (their ``by_hour`` profile included),
- their true answer-delay distribution (lognormal) and accept chance,
- whether they are away right now (an availability session: in clinic, in theatre).

It orders a tier by the chance of a connection per second of the expected wait, and adds the
next leg once the ringing member's chance of still answering, given the silence so far, drops
below ``theta``: ``theta`` near 0 rings one member at a time (in the best order), near 1
rings up to the leg cap at once. Sweeping ``theta`` traces the best rings-versus-connection
trade-off an online strategy could reach (``informed@0.3``), which says whether a goal stated
against the bound is reachable at all. It keeps the Hunter's rules like every strategy (tiers
in order, a full ring for every free earlier-tier member, the leg cap). Sim-only: production
has no true habits to read.

``informed-fair@THETA`` also keeps the default's fairness guard (``over_fair_share``): a member
over their share of the tier's recent calls goes last, and the member before them rings until
their chance of still answering is below ADD_FAIR_BELOW. Perfect knowledge is then held to the
share goal as the default is, which tells whether a goal is out of reach *with* fairness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan, HuntPolicy
from callrouter.core.strategies import Strategy, fair_pace, over_fair_share
from callrouter.sim.draws import AwaySpells
from callrouter.sim.scenario import Behaviour

INFORMED = "informed"
FAIR_INFORMED = "informed-fair"
DEFAULT_THETA = 0.2
WHISPER_GUESS_SECONDS = 6.5  # the whisper and the key, about the same for everyone
_STEP = 0.5  # seconds between the instants at which the give-up rule is read


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True, slots=True)
class InformedSetting:
    theta: float
    fair: bool = False  # keeps the fairness guard


def parse_informed(name: str) -> InformedSetting | None:
    """``informed[-fair]`` or ``informed[-fair]@THETA``: its setting, None for other names."""
    head, sep, tail = name.partition("@")
    if head not in (INFORMED, FAIR_INFORMED):
        return None
    fair = head == FAIR_INFORMED
    if not sep:
        return InformedSetting(DEFAULT_THETA, fair)
    try:
        theta = float(tail)
    except ValueError:
        return None
    return InformedSetting(theta, fair) if 0.0 <= theta <= 1.0 else None


class Informed(Strategy):
    """Order and pace from the members' true habits (see the module's docstring)."""

    serial = False
    ring_again_after_no_answer = False
    hold_for_busy = True
    add_when_a_leg_ends = False

    def __init__(
        self,
        behaviour: Mapping[str, Behaviour],
        away: Mapping[str, AwaySpells],
        zone: ZoneInfo,
        theta: float = DEFAULT_THETA,
        *,
        fair: bool = False,
    ) -> None:
        self.name = f"{FAIR_INFORMED if fair else INFORMED}@{theta:g}"
        self._fair = fair
        self._behaviour = behaviour
        self._away = away
        self._zone = zone
        self._ring = 18.0  # the policy's ring time, kept from the last leg paced
        self._theta = theta
        self._hours: dict[int, int] = {}

    def _hour(self, now: float) -> int:
        key = int(now // 3600.0)
        hour = self._hours.get(key)
        if hour is None:
            hour = self._hours[key] = datetime.fromtimestamp(now, UTC).astimezone(self._zone).hour
        return hour

    def pick_up(self, member: str, now: float) -> float:
        """The true chance that ``member`` picks up within the ring time if rung at ``now``."""
        spells = self._away.get(member)
        if spells is not None and spells.away_at(now):
            return 0.0
        habit = self._behaviour[member]
        within = _phi((math.log(self._ring) - habit.delay_mu) / habit.delay_sigma)
        return habit.answers_at(self._hour(now)) * within

    def give_up(self, member: str, now: float, theta: float | None = None) -> float:
        """Seconds of silence after which ``member`` will probably (1 - theta) not answer."""
        theta = self._theta if theta is None else theta
        habit = self._behaviour[member]
        spells = self._away.get(member)
        if spells is not None and spells.away_at(now):
            return 0.0
        p = habit.answers_at(self._hour(now))
        end = _phi((math.log(self._ring) - habit.delay_mu) / habit.delay_sigma)
        t = 0.0
        while t < self._ring:
            before = _phi((math.log(t) - habit.delay_mu) / habit.delay_sigma) if t > 0 else 0.0
            later = p * (end - before)
            if later < theta * (1.0 - p * before):
                return t
            t += _STEP
        return math.inf

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        def key(item: tuple[int, Candidate]) -> tuple[float, int]:
            position, candidate = item
            habit = self._behaviour[candidate.member_id]
            typical = math.exp(habit.delay_mu + habit.delay_sigma**2 / 2)
            chance = self.pick_up(candidate.member_id, now) * habit.accept_probability
            return (-chance / (typical + WHISPER_GUESS_SECONDS), position)

        ordered = [c for _, c in sorted(enumerate(members), key=key)]
        if not self._fair:
            return ordered
        unfair = over_fair_share(members, stats, now)
        return sorted(ordered, key=lambda c: unfair.get(c.member_id, 0.0))  # stable

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
        self._ring = policy.ring_seconds
        theta = fair_pace(self._theta, candidate, tier, stats, now) if self._fair else self._theta
        return min(self.give_up(candidate.member_id, now, theta), policy.ring_seconds)
