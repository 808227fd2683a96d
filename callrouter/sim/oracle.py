"""The oracle: a simulator-only strategy that knows every draw, the limit we measure against.

At each pass it rings the one member who will accept first: the fastest free local member who
would accept (answer within the policy's ring time, then press 1), else the fastest free NCN
member who would. When that is an NCN member it also
rings, at the same instant, every free local member not yet rung in this call (it knows they will
not accept, but the service promises local teams the first chance): they cost rings, not time.
When nobody free would accept, it looks again every few seconds until the GP gives up.
It runs inside the real Hunter and CallFlow like any strategy; only its ordering is clairvoyant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan
from callrouter.core.strategies import Strategy
from callrouter.settings.dialplan import HuntPolicy

if TYPE_CHECKING:
    from callrouter.sim.calls import SimCall
    from callrouter.sim.world import World

ORACLE = "oracle"
RECHECK_SECONDS = 3.0  # how often the oracle looks again when nobody free would accept
COMPLIANCE_RING_SECONDS = 1.0  # the locals it knows will not accept are rung only briefly
_PASSES = 10_000  # the GP's patience or the policy's max wait ends the hunt, not passes


def oracle_plan(plan: HuntPlan) -> HuntPlan:
    """The plan with the oracle's pacing: re-check every few seconds, unlimited passes, room
    for every free local member at once (not validated: the simulator's own knobs)."""
    policy = plan.policy.model_copy(
        update={"ring_seconds": RECHECK_SECONDS, "loops": _PASSES, "max_parallel": 100}
    )
    return HuntPlan(plan.area, plan.specialty, policy, plan.tiers)


class Oracle(Strategy):
    name = ORACLE
    serial = False

    def __init__(self, world: World) -> None:
        self._world = world

    def order(
        self, members: Sequence[Candidate], stats: MemberStats, now: float
    ) -> list[Candidate]:
        pick = self._pick(now)
        return [c for c in members if c.member_id in pick]

    def ring_seconds(self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats) -> float:
        call = self._world.current
        assert call is not None
        return call.oracle_pick.get(candidate.member_id, policy.ring_seconds)

    def stagger_seconds(
        self, candidate: Candidate, policy: HuntPolicy, stats: MemberStats
    ) -> float:
        return 0.0

    def _pick(self, now: float) -> dict[str, float]:
        """Who to ring in this pass (member → ring seconds); made once per pass and call."""
        call = self._world.current
        assert call is not None
        assert call.plan is not None
        if call.oracle_at == now:
            return call.oracle_pick
        call.oracle_at = now
        call.oracle_pick = pick = _choose(call, self._world.busy.legs)
        return pick


def _choose(call: SimCall, busy: dict[str, int]) -> dict[str, float]:
    assert call.plan is not None
    window = call.plan.policy.ring_seconds  # nobody, oracle included, rings longer than this
    rung = call.rung
    passed: list[str] = []  # free members of earlier tiers, not yet rung in this call
    for tier, acceptors in zip(call.plan.tiers, _acceptors(call, window), strict=True):
        for member in acceptors:  # fastest first: the first free one is the best
            if not busy.get(member) and member not in rung:
                pick = dict.fromkeys(passed, COMPLIANCE_RING_SECONDS)
                pick[member] = window
                return pick
        for candidate in tier.members:
            member = candidate.member_id
            if not busy.get(member) and member not in rung:
                passed.append(member)
    return {}


def _acceptors(call: SimCall, window: float) -> list[list[str]]:
    """Per tier, the members who would accept within ``window`` on this call, fastest first
    (ties in rota order). The draws are fixed per call, so this is made once per call, not on
    every re-check (the oracle re-checks every few seconds while nobody free would accept)."""
    found = call.oracle_acceptors
    if found is None:
        assert call.plan is not None
        found = []
        for tier in call.plan.tiers:
            ranked = []
            for position, candidate in enumerate(tier.members):
                answers, delay, accepts = call.draw(candidate.member_id)
                if answers and accepts and delay < window:
                    ranked.append((delay, position, candidate.member_id))
            ranked.sort()
            found.append([member for _, _, member in ranked])
        call.oracle_acceptors = found
    return found
