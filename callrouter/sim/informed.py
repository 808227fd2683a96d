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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan
from callrouter.core.strategies import Strategy
from callrouter.settings.dialplan import HuntPolicy
from callrouter.sim.draws import AwaySpells
from callrouter.sim.scenario import Behaviour

INFORMED = "informed"
DEFAULT_THETA = 0.2
WHISPER_GUESS_SECONDS = 6.5  # the whisper and the key, about the same for everyone
_STEP = 0.5  # seconds between the instants at which the give-up rule is read


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def parse_informed(name: str) -> float | None:
    """``informed`` or ``informed@THETA``: the theta, None if ``name`` is not one of these."""
    if name == INFORMED:
        return DEFAULT_THETA
    head, sep, tail = name.partition("@")
    if head != INFORMED or not sep:
        return None
    try:
        theta = float(tail)
    except ValueError:
        return None
    return theta if 0.0 <= theta <= 1.0 else None


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
    ) -> None:
        self.name = f"{INFORMED}@{theta:g}"
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

    def give_up(self, member: str, now: float) -> float:
        """Seconds of silence after which ``member`` will probably (1 - theta) not answer."""
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
            if later < self._theta * (1.0 - p * before):
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

        return [c for _, c in sorted(enumerate(members), key=key)]

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
        return min(self.give_up(candidate.member_id, now), policy.ring_seconds)
