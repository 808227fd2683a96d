"""What the engine has observed of each consultant, to order hunts and keep them fair.

Updated from LegEnded facts only (never from hidden knowledge). Pure: the caller passes ``now``.
Answer likelihood is a Beta posterior mean so a member seen twice is not judged on two rings;
answer delay is an exponentially weighted mean so it follows a member whose habits change.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.core.domain import LegResult

# Prior: as if each member had been rung 4 times and answered 3 (the service's ~75% pick-up).
PRIOR_ANSWERED = 3.0
PRIOR_RUNG = 4.0
PRIOR_DELAY_SECONDS = 8.0
DELAY_WEIGHT = 0.2  # weight of the newest observation in the delay average
MISS_DECAY = 0.9  # how fast old misses are forgotten relative to new evidence

# Results that say nothing about whether the member picks up (we ended the leg, or they were busy).
_NEUTRAL = frozenset({LegResult.CANCELLED, LegResult.BUSY, LegResult.ERROR})
_PICKED_UP = frozenset(
    {LegResult.ACCEPTED, LegResult.DECLINED, LegResult.NO_CONFIRM, LegResult.HUNG_UP}
)


@dataclass(slots=True)
class MemberRecord:
    rung: float = 0.0
    answered: float = 0.0
    accepted: int = 0
    delay_mean: float = PRIOR_DELAY_SECONDS
    last_offered: float = float("-inf")
    last_missed: float = float("-inf")
    last_accepted: float = float("-inf")


class MemberStats:
    """Per-member counters with a prior. Cheap enough to update on every leg in the simulator."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[str, MemberRecord] = {}

    def _get(self, member_id: str) -> MemberRecord:
        record = self._records.get(member_id)
        if record is None:
            record = MemberRecord()
            self._records[member_id] = record
        return record

    def offered(self, member_id: str, now: float) -> None:
        self._get(member_id).last_offered = now

    def record(self, member_id: str, result: LegResult, answer_delay: float, now: float) -> None:
        """One leg ended. ``answer_delay`` is ring start → pick-up (ignored if not picked up)."""
        if result in _NEUTRAL:
            return
        rec = self._get(member_id)
        rec.rung = rec.rung * MISS_DECAY + 1.0
        rec.answered *= MISS_DECAY
        if result in _PICKED_UP:
            rec.answered += 1.0
            rec.delay_mean += DELAY_WEIGHT * (answer_delay - rec.delay_mean)
        else:
            rec.last_missed = now
        if result is LegResult.ACCEPTED:
            rec.accepted += 1
            rec.last_accepted = now

    def answer_rate(self, member_id: str) -> float:
        rec = self._records.get(member_id)
        if rec is None:
            return PRIOR_ANSWERED / PRIOR_RUNG
        return (rec.answered + PRIOR_ANSWERED) / (rec.rung + PRIOR_RUNG)

    def answer_delay(self, member_id: str) -> float:
        rec = self._records.get(member_id)
        return PRIOR_DELAY_SECONDS if rec is None else rec.delay_mean

    def last_offered(self, member_id: str) -> float:
        rec = self._records.get(member_id)
        return float("-inf") if rec is None else rec.last_offered

    def last_missed(self, member_id: str) -> float:
        rec = self._records.get(member_id)
        return float("-inf") if rec is None else rec.last_missed

    def accepted(self, member_id: str) -> int:
        rec = self._records.get(member_id)
        return 0 if rec is None else rec.accepted
