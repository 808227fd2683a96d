"""The side-by-side table and the JSON of a run, over one seed or several."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence

from callrouter.sim.report import Summary
from callrouter.sim.verdict import Goal, Spread

Run = Mapping[str, Summary]

_COLUMNS = (
    ("strategy", 14),
    ("calls", 7),
    ("FTCR", 13),
    ("conn mean", 13),
    ("p50", 7),
    ("p90", 7),
    ("rings/conn", 12),
    ("call len", 9),
    ("per cons", 9),
    ("max", 6),
    ("top", 6),
    ("abandons", 9),
    ("sys-ended", 10),
    ("tier viol", 10),
)


def _spread(runs: Sequence[Run], name: str, f: Callable[[Summary], float]) -> Spread:
    return Spread.of([f(run[name]) for run in runs])


def table(runs: Sequence[Run], default: str) -> str:
    """One row per strategy (mean over the seeds; ± the 95% confidence half-width when several
    seeds ran). ``top``: the largest share of a specialty's calls one consultant took."""
    first = max(_COLUMNS[0][1], *(len(name) + 2 for name in runs[0]))  # informed-fair@0.35
    head = "".join(
        f"{title:>{width}}" if i else f"{title:<{first}}"
        for i, (title, width) in enumerate(_COLUMNS)
    )
    rows = [head, "-" * len(head)]
    for name in runs[0]:

        def mean(f: Callable[[Summary], float], n: str = name) -> float:
            return _spread(runs, n, f).mean

        mark = "*" if name == default else " "
        cells = (
            f"{name + mark:<{first}}",
            f"{mean(lambda s: s.calls):>7.0f}",
            f"{_spread(runs, name, lambda s: s.ftcr).show('.1f', 100) + '%':>13}",
            f"{_spread(runs, name, lambda s: s.connect_mean_s).show('.1f') + 's':>13}",
            f"{mean(lambda s: s.connect_p50_s):>6.1f}s",
            f"{mean(lambda s: s.connect_p90_s):>6.1f}s",
            f"{_spread(runs, name, lambda s: s.rings_per_connected).show('.2f'):>12}",
            f"{mean(lambda s: s.mean_call_length_s):>8.0f}s",
            f"{mean(lambda s: s.mean_calls_per_consultant):>9.1f}",
            f"{mean(lambda s: s.max_calls_per_consultant):>6.0f}",
            f"{mean(lambda s: s.top_share) * 100:>5.0f}%",
            f"{mean(lambda s: s.abandoned):>9.0f}",
            f"{mean(lambda s: s.gave_up):>10.0f}",
            f"{mean(lambda s: s.tier_violations):>10.0f}",
        )
        rows.append("".join(cells).replace("nans", "   -").replace("nan", "  -"))
    return "\n".join(rows)


def to_json(runs: Sequence[Run], seeds: Sequence[int], goals: Sequence[Goal] = ()) -> str:
    """One seed: ``{"strategies": {name: figures}}`` (every table column, per specialty, per
    consultant). Several: ``{"seeds": [...], "runs": [one such object per seed], "mean": {name:
    {figure: {"mean", "ci95"}}}}``. Goals, when judged, under ``"goals"``."""
    out: dict[str, object] = {}
    if len(runs) == 1:
        out["seed"] = seeds[0]
        out["strategies"] = {name: s.as_json() for name, s in runs[0].items()}
    else:
        out["seeds"] = list(seeds)
        out["runs"] = [{name: s.as_json() for name, s in run.items()} for run in runs]
        out["mean"] = {name: _means(runs, name) for name in runs[0]}
    if goals:
        out["goals"] = {
            g.name: {
                "verdict": g.verdict,
                "margin": _num(g.margin.mean),
                "ci95": _num(g.margin.half_width),
                "detail": g.detail,
            }
            for g in goals
        }
    return json.dumps(out, indent=2)


_NUMERIC = (
    "ftcr",
    "connect_mean_s",
    "connect_p50_s",
    "connect_p90_s",
    "rings_per_connected",
    "mean_call_length_s",
    "abandoned",
    "gave_up",
    "tier_violations",
    "top_share",
)


def _means(runs: Sequence[Run], name: str) -> dict[str, dict[str, float | None]]:
    out = {}
    for field in _NUMERIC:
        spread = _spread(runs, name, lambda s, f=field: float(getattr(s, f)))  # type: ignore[misc]
        key = "system_ended" if field == "gave_up" else field
        out[key] = {"mean": _num(spread.mean), "ci95": _num(spread.half_width)}
    return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)  # NaN → null
