"""What the engine has observed of each consultant, to order hunts and keep them fair.

Updated from LegEnded facts only (never from hidden knowledge). Pure: the caller passes ``now``.

- Answer likelihood (picked up within the ring time) is a Beta posterior mean whose evidence
  decays a little with each new ring, so a member seen twice is not judged on two rings and one
  whose habits change is followed; and per hour of the day, each hour's own decaying record
  weighed against the overall rate (clinic mornings, a free lunch hour).
- Answer delay is learned as a lognormal (exponentially weighted mean and variance of the log
  of the seconds from ring start to pick-up), for ordering, and as a histogram of 2-second bins
  decaying with the answer evidence, for pacing: the share of a member's pick-ups still to come
  after t seconds of silence is read from what they did, not from a fitted curve (delays are
  only ever seen inside the ring time, which biases a fitted lognormal short).
- Recency: how a member answers soon (within half an hour) after letting a ring go unanswered,
  learned apart, so a member who, once missing, stays away (clinic, theatre) is rung last and
  given up on early for a while, and one whose misses are chance is not.
- Recent accepted calls decay with a half-life of a week, for the fairness guard: a shorter
  memory lets a run of a few calls to the weaker member of a pair hand the keen one the next
  calls (with a day's memory the keen member of `example`'s paediatrics took 57% against a
  plain rota's 54%; with a week's, 54%).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from callrouter.core.domain import LegResult

# Prior: as if each member had been rung 4 times and answered 3 (the service's ~75% pick-up).
PRIOR_ANSWERED = 3.0
PRIOR_RUNG = 4.0
PRIOR_DELAY_SECONDS = 8.0
PRIOR_LOG_DELAY_VAR = 0.5  # ~ a p90 of 2.5 x the median until a member has been seen answering
DELAY_WEIGHT = 0.2  # weight of the newest observation in the delay averages
MISS_DECAY = 0.97  # each new ring keeps this share of the old answer evidence
HOUR_DECAY = 0.9  # each new ring in an hour of the day keeps this share of that hour's evidence
HOUR_PRIOR_RINGS = 3.0  # an hour's own pick-up rate counts as this many rings of the overall
AFTER_MISS_SECONDS = 1800.0  # a ring this soon after a miss is judged on what followed misses
AFTER_MISS_DECAY = 0.95
AFTER_MISS_PRIOR_RINGS = 2.0  # the hour's rate counts as this many rings after a miss
DELAY_BIN_SECONDS = 2.0
DELAY_BINS = 30  # 0-2 s … 58 s and more
FAIRNESS_HALF_LIFE_SECONDS = 7 * 24 * 3600.0  # how fast recent accepted calls are forgotten

# Results that say nothing about whether the member picks up (we ended the leg, or they were busy).
_NEUTRAL = (LegResult.CANCELLED, LegResult.BUSY, LegResult.ERROR)
_PICKED_UP = (LegResult.ACCEPTED, LegResult.DECLINED, LegResult.NO_CONFIRM, LegResult.HUNG_UP)
_LN2 = math.log(2.0)


def _prior_bins() -> tuple[float, ...]:
    """PRIOR_ANSWERED pick-ups spread over the bins as the prior lognormal would."""
    sigma = math.sqrt(PRIOR_LOG_DELAY_VAR)
    mu = math.log(PRIOR_DELAY_SECONDS)

    def cdf(t: float) -> float:
        return 0.5 * (1 + math.erf((math.log(t) - mu) / (sigma * math.sqrt(2)))) if t > 0 else 0.0

    edges = [k * DELAY_BIN_SECONDS for k in range(DELAY_BINS)] + [math.inf]
    shares = [(cdf(b) if b < math.inf else 1.0) - cdf(a) for a, b in itertools.pairwise(edges)]
    return tuple(PRIOR_ANSWERED * share for share in shares)


_PRIOR_BINS = _prior_bins()


@dataclass(slots=True)
class MemberRecord:
    rung: float = 0.0
    answered: float = 0.0
    log_delay_mean: float = math.log(PRIOR_DELAY_SECONDS)
    log_delay_var: float = PRIOR_LOG_DELAY_VAR
    recent_accepted: float = 0.0
    recent_at: float = float("-inf")
    last_offered: float = float("-inf")
    last_missed: float = float("-inf")
    delay_bins: list[float] = field(default_factory=lambda: [0.0] * DELAY_BINS)
    hour_rung: list[float] = field(default_factory=lambda: [0.0] * 24)  # by hour of day (UTC)
    hour_answered: list[float] = field(default_factory=lambda: [0.0] * 24)
    after_miss_rung: float = 0.0  # rings that came soon after a ring they let go unanswered
    after_miss_answered: float = 0.0


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
        bins = rec.delay_bins
        for k in range(DELAY_BINS):
            bins[k] *= MISS_DECAY
        hour = hour_of(now)
        if now - rec.last_missed <= AFTER_MISS_SECONDS:
            rec.after_miss_rung = rec.after_miss_rung * AFTER_MISS_DECAY + 1.0
            rec.after_miss_answered *= AFTER_MISS_DECAY
            if result in _PICKED_UP:
                rec.after_miss_answered += 1.0
        rec.hour_rung[hour] = rec.hour_rung[hour] * HOUR_DECAY + 1.0
        rec.hour_answered[hour] *= HOUR_DECAY
        if result in _PICKED_UP:
            rec.hour_answered[hour] += 1.0
            rec.answered += 1.0
            bins[min(int(max(answer_delay, 0.0) / DELAY_BIN_SECONDS), DELAY_BINS - 1)] += 1.0
            step = math.log(max(answer_delay, 0.5)) - rec.log_delay_mean
            rec.log_delay_mean += DELAY_WEIGHT * step
            rec.log_delay_var = (1 - DELAY_WEIGHT) * (rec.log_delay_var + DELAY_WEIGHT * step**2)
        else:
            rec.last_missed = now
        if result is LegResult.ACCEPTED:
            rec.recent_accepted = _decayed(rec, now) + 1.0
            rec.recent_at = now

    def get(self, member_id: str) -> MemberRecord | None:
        """The member's record, None before anything was seen (read it, do not change it)."""
        return self._records.get(member_id)

    def answer_rate(self, member_id: str, now: float | None = None) -> float:
        """The chance of a pick-up within the ring time; with ``now``, at that hour of the day:
        the hour's own decaying record, weighted against the member's overall rate."""
        rec = self._records.get(member_id)
        if rec is None:
            return PRIOR_ANSWERED / PRIOR_RUNG
        overall = (rec.answered + PRIOR_ANSWERED) / (rec.rung + PRIOR_RUNG)
        if now is None:
            return overall
        hour = hour_of(now)
        return (rec.hour_answered[hour] + HOUR_PRIOR_RINGS * overall) / (
            rec.hour_rung[hour] + HOUR_PRIOR_RINGS
        )

    def chance_now(self, member_id: str, now: float) -> float:
        """The chance of a pick-up within the ring time at ``now``: the hour's rate
        (``answer_rate``), unless the member let a ring go unanswered in the last
        AFTER_MISS_SECONDS; then what they did after such misses before, weighed against the
        hour's rate (a miss often means in clinic or theatre for a while; or nothing at all)."""
        rate = self.answer_rate(member_id, now)
        rec = self._records.get(member_id)
        if rec is None or now - rec.last_missed > AFTER_MISS_SECONDS:
            return rate
        return (rec.after_miss_answered + AFTER_MISS_PRIOR_RINGS * rate) / (
            rec.after_miss_rung + AFTER_MISS_PRIOR_RINGS
        )

    def log_delay(self, member_id: str) -> tuple[float, float]:
        """Mean and standard deviation of ln(seconds to pick up), learned."""
        rec = self._records.get(member_id)
        if rec is None:
            return math.log(PRIOR_DELAY_SECONDS), math.sqrt(PRIOR_LOG_DELAY_VAR)
        return rec.log_delay_mean, math.sqrt(max(rec.log_delay_var, 1e-4))

    def answers_after(self, member_id: str) -> list[float]:
        """Share of the member's pick-ups that came after ``k`` bins of ringing, k = 0 … DELAY_BINS
        (1.0 first, 0.0 last), from their decaying delay histogram and the prior."""
        rec = self._records.get(member_id)
        counts = (
            list(_PRIOR_BINS)
            if rec is None
            else [a + b for a, b in zip(rec.delay_bins, _PRIOR_BINS, strict=True)]
        )
        total = sum(counts)
        out = [1.0]
        left = total
        for count in counts:
            left -= count
            out.append(max(left, 0.0) / total)
        return out

    def last_offered(self, member_id: str) -> float:
        rec = self._records.get(member_id)
        return float("-inf") if rec is None else rec.last_offered


def hour_of(now: float) -> int:
    """The hour of the day of instant ``now`` (UTC: a label for learning, no zone needed)."""
    return int(now // 3600.0) % 24


def recent_of(rec: MemberRecord, now: float) -> float:
    """A record's recent accepted calls at ``now`` (for callers holding the record)."""
    return _decayed(rec, now)


def _decayed(rec: MemberRecord, now: float) -> float:
    if rec.recent_accepted == 0.0:
        return 0.0
    age = max(now - rec.recent_at, 0.0)
    return rec.recent_accepted * math.exp(-_LN2 * age / FAIRNESS_HALF_LIFE_SECONDS)
