"""The commissioner's summary of the call records: per area and specialty, how many calls were
put through and how many of the GPs' post-call answers say a referral or admission was avoided.

``avoided_share`` = answers "avoided" / answers given (the same ratio as the Prometheus rule
``area_specialty:callrouter_referral_avoided:ratio1h``, over the chosen period instead of an
hour); ``answered_share`` = answers given / calls connected (how far to trust it);
``ftcr`` = calls connected / calls that chose a specialty. A share with nothing to divide by
is empty (CSV) or null (JSON), never 0. The last row, ``all``, sums the whole period.
"""

from __future__ import annotations

import csv
import json
from typing import Final, Literal, TextIO

import aiosqlite

GROUPINGS: Final = {
    "area-specialty": ("area", "specialty"),
    "area": ("area",),
    "specialty": ("specialty",),
}
ALL: Final = "all"
NO_SPECIALTY: Final = "(none)"  # calls that ended before a specialty was chosen

FIELDS: Final = (
    "area",
    "specialty",
    "calls",
    "chose_specialty",
    "connected",
    "ftcr",
    "survey_answered",
    "referral_avoided",
    "referral_needed",
    "avoided_share",
    "answered_share",
)

_COUNTS: Final = (
    "COUNT(*), COUNT(specialty_at), COUNT(connected_at), COUNT(survey_avoided_referral),"
    " COALESCE(SUM(survey_avoided_referral = 1), 0), COALESCE(SUM(survey_avoided_referral = 0), 0)"
)

Row = dict[str, str | int | float | None]


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _row(labels: dict[str, str], counts: tuple[int, ...]) -> Row:
    calls, chose, connected, answered, avoided, needed = (int(n) for n in counts)
    return {
        "area": labels.get("area", ALL),
        "specialty": labels.get("specialty", ALL),
        "calls": calls,
        "chose_specialty": chose,
        "connected": connected,
        "ftcr": _share(connected, chose),
        "survey_answered": answered,
        "referral_avoided": avoided,
        "referral_needed": needed,
        "avoided_share": _share(avoided, answered),
        "answered_share": _share(answered, connected),
    }


async def summarise(
    db: aiosqlite.Connection, since: float | None, until: float | None, by: str
) -> list[Row]:
    """One row per group of calls offered in [since, until), then the ``all`` row."""
    columns = GROUPINGS[by]
    bounds = (
        float("-inf") if since is None else since,
        float("inf") if until is None else until,
    )
    where = "WHERE offered_at >= ? AND offered_at < ?"
    keys = ", ".join(f"COALESCE({c}, '{NO_SPECIALTY}')" for c in columns)
    rows: list[Row] = []
    sql = f"SELECT {keys}, {_COUNTS} FROM calls {where} GROUP BY {keys} ORDER BY {keys}"
    async with db.execute(sql, bounds) as cursor:
        async for values in cursor:
            labels = dict(zip(columns, (str(v) for v in values[: len(columns)]), strict=True))
            rows.append(_row(labels, tuple(values[len(columns) :])))
    async with db.execute(f"SELECT {_COUNTS} FROM calls {where}", bounds) as cursor:
        total = await cursor.fetchone()
    assert total is not None  # an aggregate always gives a row
    rows.append(_row({}, tuple(total)))
    return rows


def write_summary(rows: list[Row], fmt: Literal["csv", "json"], out: TextIO) -> None:
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    else:
        json.dump(rows, out, indent=1)
        out.write("\n")
