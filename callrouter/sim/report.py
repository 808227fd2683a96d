"""What one strategy's run counted, the summary figures, and the side-by-side table and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Tally:
    """Counters the world bumps while it runs (plain fields: this is on the hot path)."""

    offered: int = 0
    chosen: int = 0  # calls that chose a specialty: FTCR's denominator
    connected: int = 0
    rings: int = 0
    abandoned: int = 0  # the GP hung up while we hunted
    talk_seconds: float = 0.0
    tier_violations: int = 0
    connect_seconds: list[float] = field(default_factory=list)
    per_member: dict[str, int] = field(default_factory=dict)  # connected calls per consultant


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
    tier_violations: int
    connect_seconds: tuple[float, ...]

    def as_json(self) -> dict[str, float | int]:
        """The fields of the ``--json`` output, exactly (the issue's shape)."""
        return {
            "calls": self.calls,
            "ftcr": round(self.ftcr, 4),
            "connect_mean_s": round(self.connect_mean_s, 2),
            "connect_p50_s": round(self.connect_p50_s, 2),
            "connect_p90_s": round(self.connect_p90_s, 2),
            "rings_per_connected": round(self.rings_per_connected, 3),
            "abandoned": self.abandoned,
            "max_calls_per_consultant": self.max_calls_per_consultant,
        }


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of a sorted sequence (NaN when empty)."""
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarise(name: str, tally: Tally, members: Sequence[str]) -> Summary:
    times = sorted(tally.connect_seconds)
    counts = [tally.per_member.get(m, 0) for m in members]
    connected = tally.connected
    return Summary(
        name=name,
        calls=tally.chosen,
        ftcr=connected / tally.chosen if tally.chosen else math.nan,
        connect_mean_s=sum(times) / len(times) if times else math.nan,
        connect_p50_s=quantile(times, 0.5),
        connect_p90_s=quantile(times, 0.9),
        rings_per_connected=tally.rings / connected if connected else math.nan,
        mean_call_length_s=tally.talk_seconds / connected if connected else math.nan,
        mean_calls_per_consultant=sum(counts) / len(counts) if counts else 0.0,
        max_calls_per_consultant=max(counts, default=0),
        abandoned=tally.abandoned,
        tier_violations=tally.tier_violations,
        connect_seconds=tuple(times),
    )


def to_json(summaries: Sequence[Summary]) -> str:
    return json.dumps({"strategies": {s.name: s.as_json() for s in summaries}}, indent=2)


_COLUMNS = (
    ("strategy", 14),
    ("calls", 7),
    ("FTCR", 7),
    ("conn mean", 10),
    ("p50", 7),
    ("p90", 7),
    ("rings/conn", 11),
    ("call len", 9),
    ("per cons", 9),
    ("max", 5),
    ("abandons", 9),
    ("tier viol", 10),
)


def table(summaries: Sequence[Summary], default: str) -> str:
    """The side-by-side table; the default strategy is marked with '*'."""
    head = "".join(
        f"{title:>{width}}" if i else f"{title:<{width}}"
        for i, (title, width) in enumerate(_COLUMNS)
    )
    rows = [head, "-" * len(head)]
    for s in summaries:
        mark = "*" if s.name == default else " "
        cells = (
            f"{s.name + mark:<14}",
            f"{s.calls:>7}",
            f"{s.ftcr * 100:>6.1f}%",
            f"{s.connect_mean_s:>9.1f}s",
            f"{s.connect_p50_s:>6.1f}s",
            f"{s.connect_p90_s:>6.1f}s",
            f"{s.rings_per_connected:>11.2f}",
            f"{s.mean_call_length_s:>8.0f}s",
            f"{s.mean_calls_per_consultant:>9.1f}",
            f"{s.max_calls_per_consultant:>5}",
            f"{s.abandoned:>9}",
            f"{s.tier_violations:>10}",
        )
        rows.append("".join(cells))
    return "\n".join(rows)


def goals(by_name: Mapping[str, Summary], default: str) -> list[str]:
    """The issue's goals for the default strategy, each with its measured figures."""
    if not {"oracle", "linear", default} <= set(by_name):
        return []
    d, o, lin = by_name[default], by_name["oracle"], by_name["linear"]

    def line(ok: bool, text: str) -> str:
        return f"  [{'met' if ok else 'MISSED'}] {text}"

    return [
        f"Goals for the default strategy ({default}):",
        line(
            o.ftcr - d.ftcr <= 0.01, f"FTCR within 1 point of oracle: {d.ftcr:.1%} vs {o.ftcr:.1%}"
        ),
        line(
            d.connect_mean_s <= 1.5 * o.connect_mean_s,
            f"mean connection <= 1.5 x oracle: {d.connect_mean_s:.1f}s vs "
            f"{1.5 * o.connect_mean_s:.1f}s",
        ),
        line(
            d.connect_mean_s <= 0.5 * lin.connect_mean_s,
            f"mean connection <= half of linear: {d.connect_mean_s:.1f}s vs "
            f"{0.5 * lin.connect_mean_s:.1f}s",
        ),
        line(
            d.rings_per_connected <= lin.rings_per_connected,
            f"rings per connected call <= linear: {d.rings_per_connected:.2f} vs "
            f"{lin.rings_per_connected:.2f}",
        ),
        line(
            all(s.tier_violations == 0 for s in by_name.values()),
            "no strategy rang NCN before every free local member",
        ),
    ]
