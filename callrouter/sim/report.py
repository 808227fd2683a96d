"""What one strategy's run counted, and the summary figures made from it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from callrouter.core import domain as d

_SYSTEM_ENDED = (d.EndReason.NOBODY_ACCEPTED, d.EndReason.MAX_WAIT)


@dataclass(slots=True)
class SpecialtyTally:
    """Counters for one specialty's calls (those that chose it)."""

    chosen: int = 0  # FTCR's denominator
    rings: int = 0
    abandoned: int = 0  # the GP hung up while we hunted
    gave_up: int = 0  # the system ended the hunt: nobody accepted, or the max wait ran out
    talk_seconds: float = 0.0
    connect_seconds: dict[int, float] = field(default_factory=dict)  # call index → seconds
    per_member: dict[str, int] = field(default_factory=dict)  # connected calls per consultant

    def on_connected(self, index: int, event: d.Connected) -> None:
        self.connect_seconds[index] = event.connect_seconds
        self.per_member[event.member_id] = self.per_member.get(event.member_id, 0) + 1

    def on_ended(self, event: d.CallEnded) -> None:
        if event.connected:
            self.talk_seconds += event.talk_seconds
        elif event.reason is d.EndReason.GP_HANGUP_HUNT:
            self.abandoned += 1
        elif event.reason in _SYSTEM_ENDED:
            self.gave_up += 1


@dataclass(slots=True)
class Tally:
    """Counters the world bumps while it runs, by specialty."""

    offered: int = 0
    tier_violations: int = 0
    by_specialty: dict[str, SpecialtyTally] = field(default_factory=dict)

    def specialty(self, name: str) -> SpecialtyTally:
        found = self.by_specialty.get(name)
        if found is None:
            found = self.by_specialty[name] = SpecialtyTally()
        return found


@dataclass(frozen=True, slots=True)
class SpecialtySummary:
    calls: int
    ftcr: float
    connect_mean_s: float
    rings_per_connected: float
    abandoned: int
    gave_up: int
    top_member: str | None  # who took the most of this specialty's connected calls
    top_share: float  # their share of them

    def as_json(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "ftcr": _r(self.ftcr, 4),
            "connect_mean_s": _r(self.connect_mean_s, 2),
            "rings_per_connected": _r(self.rings_per_connected, 3),
            "abandoned": self.abandoned,
            "system_ended": self.gave_up,
            "top_consultant": self.top_member,
            "top_share": _r(self.top_share, 4),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    name: str
    calls: int
    ftcr: float
    connect_mean_s: float
    connect_p50_s: float
    connect_p90_s: float
    rings_per_connected: float
    mean_call_length_s: float
    mean_calls_per_consultant: float
    max_calls_per_consultant: int
    abandoned: int
    gave_up: int  # calls the system ended without a connection (nobody accepted, max wait)
    tier_violations: int
    connect_seconds: tuple[float, ...]  # sorted
    per_specialty: dict[str, SpecialtySummary]
    per_consultant: dict[str, int]  # connected calls per consultant (every member listed)
    connect_by_call: dict[int, float]  # call index → connection seconds

    @property
    def top_share(self) -> float:
        """The largest share of one specialty's connected calls any one consultant took."""
        return max((s.top_share for s in self.per_specialty.values()), default=0.0)

    def as_json(self) -> dict[str, object]:
        """Every column of the table, per specialty figures and per consultant load."""
        return {
            "calls": self.calls,
            "ftcr": _r(self.ftcr, 4),
            "connect_mean_s": _r(self.connect_mean_s, 2),
            "connect_p50_s": _r(self.connect_p50_s, 2),
            "connect_p90_s": _r(self.connect_p90_s, 2),
            "rings_per_connected": _r(self.rings_per_connected, 3),
            "mean_call_length_s": _r(self.mean_call_length_s, 1),
            "mean_calls_per_consultant": _r(self.mean_calls_per_consultant, 2),
            "max_calls_per_consultant": self.max_calls_per_consultant,
            "abandoned": self.abandoned,
            "system_ended": self.gave_up,
            "tier_violations": self.tier_violations,
            "top_share": _r(self.top_share, 4),
            "per_specialty": {k: v.as_json() for k, v in self.per_specialty.items()},
            "per_consultant": dict(self.per_consultant),
        }


def _r(value: float, digits: int) -> float | None:
    """Rounded for JSON; NaN (no calls) becomes null."""
    return None if math.isnan(value) else round(value, digits)


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of a sorted sequence (NaN when empty)."""
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def summarise(name: str, tally: Tally, members: Sequence[str]) -> Summary:
    specs = tally.by_specialty
    by_call = {i: s for spec in specs.values() for i, s in spec.connect_seconds.items()}
    times = sorted(by_call.values())
    per_member: dict[str, int] = dict.fromkeys(members, 0)
    for spec in specs.values():
        for member, n in spec.per_member.items():
            per_member[member] = per_member.get(member, 0) + n
    counts = list(per_member.values())
    chosen = sum(s.chosen for s in specs.values())
    connected = len(times)
    return Summary(
        name=name,
        calls=chosen,
        ftcr=_ratio(connected, chosen),
        connect_mean_s=_ratio(sum(times), len(times)),
        connect_p50_s=quantile(times, 0.5),
        connect_p90_s=quantile(times, 0.9),
        rings_per_connected=_ratio(sum(s.rings for s in specs.values()), connected),
        # The bound talks to nobody: no call length (NaN) rather than 0.
        mean_call_length_s=_ratio(sum(s.talk_seconds for s in specs.values()), connected)
        or math.nan,
        mean_calls_per_consultant=sum(counts) / len(counts) if counts else 0.0,
        max_calls_per_consultant=max(counts, default=0),
        abandoned=sum(s.abandoned for s in specs.values()),
        gave_up=sum(s.gave_up for s in specs.values()),
        tier_violations=tally.tier_violations,
        connect_seconds=tuple(times),
        per_specialty={k: _specialty(v) for k, v in sorted(specs.items())},
        per_consultant=per_member,
        connect_by_call=by_call,
    )


def _specialty(spec: SpecialtyTally) -> SpecialtySummary:
    connected = len(spec.connect_seconds)
    top = max(spec.per_member.items(), key=lambda kv: (kv[1], kv[0]), default=(None, 0))
    return SpecialtySummary(
        calls=spec.chosen,
        ftcr=_ratio(connected, spec.chosen),
        connect_mean_s=_ratio(sum(spec.connect_seconds.values()), connected),
        rings_per_connected=_ratio(spec.rings, connected),
        abandoned=spec.abandoned,
        gave_up=spec.gave_up,
        top_member=top[0],
        top_share=_ratio(top[1], connected) if connected else 0.0,
    )
