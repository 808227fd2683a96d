"""The bound under the goals' own rules: does meeting the other goals make 1.25 x unreachable?

The bound (bound.py) connects every call through its fastest answerer. A strategy that meets
the issue's other goals is held to more than that: it must connect at least as many calls as
the FTCR goal asks, keep every consultant under their specialty's share cap, and ring no more
per connected call than linear. Would a clairvoyant held to the same rules still be near the
bound, or do the rules themselves push the soonest reachable mean connection past 1.25 x?

Any such strategy's run is a choice of connected calls and, for each, the member who took it,
no sooner than that member's earliest time on that call (``member_options``), having rung at
least that option's legs. So the least mean over every such choice that keeps the rules is a
lower bound on the strategy's mean connection. That choice is a 0/1 programme; its linear
relaxation (fractional calls allowed) is lower still, so it is a bound too, and solving it
exactly is easy. With the mean a ratio, the Charnes-Cooper change of variables makes it linear:
y = x / (connected calls), t = 1 / (connected calls).

Needs scipy (``pip install 'callrouter[analysis]'``); only the analysis uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from callrouter.sim.bound import CallOptions
from callrouter.sim.verdict import FTCR_SLACK, LINEAR, Run, share_cap


@dataclass(frozen=True, slots=True)
class Rules:
    """What a strategy meeting the other goals keeps to, in one seed's world."""

    min_connected: int  # calls connected at least (the FTCR goal)
    share_caps: Mapping[str, float]  # by specialty: no member above this share of its calls
    max_rings_per_connected: float  # legs rung per connected call at most (the rings goal)


def constrained_mean(calls: Sequence[CallOptions], rules: Rules) -> float:
    """The least mean connection (seconds) of any choice of connected calls and members that
    keeps ``rules``, relaxed to fractions (so a lower bound); NaN if no choice keeps them."""
    try:
        import numpy as np  # noqa: PLC0415 - only the analysis needs scipy
        from scipy.optimize import linprog  # type: ignore[import-untyped]  # noqa: PLC0415
        from scipy.sparse import coo_matrix  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - the test extra installs scipy
        raise RuntimeError(
            "the constrained bound needs scipy: pip install 'callrouter[analysis]'"
        ) from exc

    # One variable per (call, option), then t. Rows (each "<= 0" unless said):
    #   per call:            sum of its options' y - t            (a call is connected once)
    #   the FTCR goal:       min_connected * t  <= 1              (at least so many connected)
    #   per specialty/member: y(member) - cap * y(specialty)     (the share cap)
    #   the rings goal:      sum (legs - max rings) * y
    cost: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    owner: list[tuple[str, str]] = []
    for row, call in enumerate(calls):
        for option in call.options:
            rows.append(row)
            cols.append(len(cost))
            vals.append(1.0)
            cost.append(option.seconds)
            owner.append((call.specialty, option.member))
    n = len(cost)
    if n == 0 or rules.min_connected > sum(1 for call in calls if call.options):
        return math.nan
    t = n
    rows.extend(range(len(calls)))
    cols.extend([t] * len(calls))
    vals.extend([-1.0] * len(calls))
    bounds_ub = [0.0] * len(calls)
    ftcr_row = len(calls)
    rows.append(ftcr_row)
    cols.append(t)
    vals.append(float(rules.min_connected))
    bounds_ub.append(1.0)
    share_rows = {key: ftcr_row + 1 + k for k, key in enumerate(sorted(set(owner)))}
    by_specialty: dict[str, list[int]] = {}
    for (specialty, _), row in share_rows.items():
        by_specialty.setdefault(specialty, []).append(row)
    for var, (specialty, member) in enumerate(owner):
        cap = rules.share_caps.get(specialty, 1.0)
        for row in by_specialty[specialty]:
            rows.append(row)
            cols.append(var)
            vals.append((1.0 if row == share_rows[(specialty, member)] else 0.0) - cap)
    bounds_ub.extend([0.0] * len(share_rows))
    rings_row = ftcr_row + 1 + len(share_rows)
    if math.isfinite(rules.max_rings_per_connected):
        legs = [option.legs for call in calls for option in call.options]
        rows.extend([rings_row] * n)
        cols.extend(range(n))
        vals.extend(count - rules.max_rings_per_connected for count in legs)
    bounds_ub.append(0.0)  # an empty row when there is no rings rule
    a_ub = coo_matrix((vals, (rows, cols)), shape=(rings_row + 1, n + 1)).tocsr()
    a_eq = coo_matrix(([1.0] * n, ([0] * n, list(range(n)))), shape=(1, n + 1)).tocsr()
    result = linprog(
        np.array([*cost, 0.0]),
        A_ub=a_ub,
        b_ub=np.array(bounds_ub),
        A_eq=a_eq,
        b_eq=np.array([1.0]),
        bounds=(0.0, None),
        method="highs",
    )
    return float(result.fun) if result.status == 0 else math.nan


def rules_of_goals(run: Run, best_fixed: str) -> Rules:
    """The rules the issue's goals set in one seed's world: FTCR at least ``best_fixed``'s
    less half a point, shares under max(linear's, 50%) by specialty, rings at most linear's."""
    linear = run[LINEAR]
    chosen = run[best_fixed].calls
    return Rules(
        min_connected=math.ceil((run[best_fixed].ftcr - FTCR_SLACK) * chosen - 1e-9),
        share_caps={name: share_cap(run, name) for name in linear.per_specialty},
        max_rings_per_connected=linear.rings_per_connected,
    )
