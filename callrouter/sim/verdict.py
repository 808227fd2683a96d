"""The issue's goals for the default strategy, judged over one or several seeds.

Each goal is a margin that must be positive: how far the default is on the good side of its
limit. Over several seeds the margin is taken seed by seed (the same world for every strategy,
so the comparison is paired) and reported as its mean and the 95% confidence half-width of that
mean: a goal is *met* when the mean margin is positive and larger than the seed-to-seed spread,
*met within noise* when positive but not larger, *missed* otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from callrouter.sim.bound import BOUND
from callrouter.sim.informed import parse_informed
from callrouter.sim.report import Summary

LINEAR = "linear"
FTCR_SLACK = 0.005  # the default may trail the best fixed strategy's FTCR by half a point
CONNECT_FACTOR = 1.25  # mean connection at most this many times the bound's
SHARE_FLOOR = 0.5  # no consultant above max(linear's top share, this) of a specialty's calls
# Student's t, 97.5th percentile, by degrees of freedom (95% two-sided intervals).
_T975 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

Run = Mapping[str, Summary]  # one seed's summaries by strategy name


def t975(df: int) -> float:
    return _T975.get(df, 1.96 + 2.5 / df) if df > 0 else math.nan


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean of per-seed values and the 95% confidence half-width of that mean (NaN: 1 seed)."""

    mean: float
    half_width: float

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        clean = [v for v in values if not math.isnan(v)]
        if not clean:
            return Spread(math.nan, math.nan)
        mean = sum(clean) / len(clean)
        if len(clean) < 2:
            return Spread(mean, math.nan)
        var = sum((v - mean) ** 2 for v in clean) / (len(clean) - 1)
        return Spread(mean, t975(len(clean) - 1) * math.sqrt(var / len(clean)))

    def show(self, fmt: str, scale: float = 1.0) -> str:
        text = format(self.mean * scale, fmt)
        if not math.isnan(self.half_width):
            text += " ±" + format(self.half_width * scale, fmt.lstrip("+"))
        return text


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    margin: Spread  # positive: on the good side
    unit: str
    detail: str
    exact: bool = False  # a count that must be zero: no spread to beat

    @property
    def verdict(self) -> str:
        m = self.margin
        if math.isnan(m.mean) or m.mean < 0:
            return "MISSED"
        if self.exact or math.isnan(m.half_width) or m.mean > m.half_width:
            return "met"
        return "met (within noise)"


def bound_ratio(runs: Sequence[Run], name: str) -> float:
    """``name``'s mean connection over the bound's, averaged over the runs (seeds)."""
    return sum(run[name].connect_mean_s / run[BOUND].connect_mean_s for run in runs) / len(runs)


def fixed_strategies(names: Sequence[str], default: str) -> list[str]:
    """The strategies a service could pick: not the default, the bound or the informed
    reference (which reads the true habits)."""
    return [n for n in names if n not in (default, BOUND) and parse_informed(n) is None]


def share_cap(run: Run, specialty: str) -> float:
    """The most of ``specialty``'s calls one consultant may take: max(linear's top share, 50%)."""
    linear = run[LINEAR].per_specialty.get(specialty)
    return max(linear.top_share if linear is not None else 0.0, SHARE_FLOOR)


def share_margin(run: Run, default: str) -> float:
    """The smallest, over specialties, of the share cap - the default's top share."""
    margins = [share_cap(run, k) - s.top_share for k, s in run[default].per_specialty.items()]
    return min(margins, default=math.inf)


def judge(runs: Sequence[Run], default: str) -> list[Goal]:
    """The goals for ``default`` over the runs (one per seed); [] without linear and bound."""
    if not runs or not all({BOUND, LINEAR, default} <= set(run) for run in runs):
        return []
    names = list(runs[0])
    fixed = fixed_strategies(names, default)

    def per_seed(f: Callable[[Run], float]) -> Spread:
        return Spread.of([f(run) for run in runs])

    best = max(fixed, key=lambda n: Spread.of([r[n].ftcr for r in runs]).mean)
    d = per_seed(lambda r: r[default].ftcr)
    b = per_seed(lambda r: r[best].ftcr)
    conn = per_seed(lambda r: r[default].connect_mean_s)
    bound_conn = per_seed(lambda r: r[BOUND].connect_mean_s)
    rings = per_seed(lambda r: r[default].rings_per_connected)
    lin_rings = per_seed(lambda r: r[LINEAR].rings_per_connected)
    share = per_seed(lambda r: r[default].top_share)
    viol = sum(r[n].tier_violations for r in runs for n in names if n != BOUND)
    return [
        Goal(
            "FTCR",
            per_seed(lambda r: r[default].ftcr - r[best].ftcr + FTCR_SLACK),
            "pt",
            f"{d.show('.1f', 100)}% vs best fixed ({best}) {b.show('.1f', 100)}% - 0.5 pt",
        ),
        Goal(
            "connection",
            per_seed(
                lambda r: CONNECT_FACTOR * r[BOUND].connect_mean_s - r[default].connect_mean_s
            ),
            "s",
            f"mean {conn.show('.1f')} s vs the bound's {bound_conn.show('.1f')} s "
            f"(x 1.25 = {CONNECT_FACTOR * bound_conn.mean:.1f} s)",
        ),
        Goal(
            "rings",
            per_seed(lambda r: r[LINEAR].rings_per_connected - r[default].rings_per_connected),
            "",
            f"per connected call {rings.show('.2f')} vs linear's {lin_rings.show('.2f')}",
        ),
        Goal(
            "top share",
            per_seed(lambda r: share_margin(r, default)),
            "pt",
            f"largest share of a specialty {share.show('.1f', 100)}% vs "
            f"max(linear's, {SHARE_FLOOR:.0%})",
        ),
        Goal(
            "tier violations",
            Spread(-float(viol), math.nan),
            "",
            f"{viol} legs to a later tier while a free earlier-tier member was not yet rung",
            exact=True,
        ),
    ]


def goal_lines(goals: Sequence[Goal], default: str) -> list[str]:
    if not goals:
        return []
    out = [f"Goals for the default strategy ({default}), margin on the good side:"]
    for goal in goals:
        scale = 100.0 if goal.unit == "pt" else 1.0
        margin = "" if goal.exact else f"; margin {goal.margin.show('+.2f', scale)} {goal.unit}"
        out.append(f"  [{goal.verdict}] {goal.name}: {goal.detail}{margin}".rstrip())
    return out


@dataclass(frozen=True, slots=True)
class Reach:
    """What the informed reference (true habits, not the draws) reaches within linear's rings
    (and, if asked, the share cap): its fastest setting that keeps them (seed means)."""

    name: str  # the informed setting, "" when none keeps them
    connect_ratio: float  # its mean connection over the bound's
    ftcr_margin: float  # its FTCR minus (best fixed strategy's - 0.5 pt)


def informed_reach(runs: Sequence[Run], default: str, *, keep_share: bool = False) -> Reach:
    """The informed setting, among those run, that connects soonest while ringing no more than
    linear and, with ``keep_share``, keeping every specialty's share cap (the default's goal)."""
    names = [n for n in runs[0] if parse_informed(n) is not None]
    fixed = fixed_strategies(list(runs[0]), default)
    if not names or LINEAR not in runs[0] or not fixed:
        return Reach("", math.nan, math.nan)

    def mean(f: Callable[[Run], float]) -> float:
        return sum(f(run) for run in runs) / len(runs)

    limit = mean(lambda r: r[LINEAR].rings_per_connected)

    def keeps(name: str) -> bool:
        if _mean_of(runs, name, "rings_per_connected") > limit:
            return False
        return not keep_share or sum(share_margin(r, name) for r in runs) >= 0.0

    within = [n for n in names if keeps(n)]
    if not within:
        return Reach("", math.nan, math.nan)
    best = min(within, key=lambda n: bound_ratio(runs, n))
    top = max(_mean_of(runs, f, "ftcr") for f in fixed)
    return Reach(
        best,
        bound_ratio(runs, best),
        mean(lambda r: r[best].ftcr) - top + FTCR_SLACK,
    )


def _mean_of(runs: Sequence[Run], name: str, figure: str) -> float:
    return sum(float(getattr(run[name], figure)) for run in runs) / len(runs)
