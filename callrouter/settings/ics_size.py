"""How many shifts a calendar can expand to, at most, worked out from its rules before anything is
expanded: so that ``FREQ=SECONDLY`` (a typo away from a rota) is refused in a moment rather than
expanded into millions of events for hours.

The bound is generous: each ``BY`` part that can add occurrences within the rule's period
multiplies by its length (times the most it can match in that period), and ``BYSETPOS`` or
``COUNT`` only lower it where they are written. Real rotas (daily, weekly, monthly rules) come
out in the hundreds or low thousands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

_PER_DAY = {
    "SECONDLY": 86_400.0,
    "MINUTELY": 1_440.0,
    "HOURLY": 24.0,
    "DAILY": 1.0,
    "WEEKLY": 1 / 7,
    "MONTHLY": 1 / 28,
    "YEARLY": 1 / 365,
}
_ORDER = tuple(_PER_DAY)  # finest first
# For each BY part: how many occurrences one listed value can add per period of each frequency
# (0: the part only narrows at that frequency).
_ADDS: Mapping[str, Callable[[str], int]] = {
    "BYSECOND": lambda freq: 1 if _ORDER.index(freq) > 0 else 0,
    "BYMINUTE": lambda freq: 1 if _ORDER.index(freq) > 1 else 0,
    "BYHOUR": lambda freq: 1 if _ORDER.index(freq) > 2 else 0,
    "BYDAY": lambda freq: {"WEEKLY": 1, "MONTHLY": 5, "YEARLY": 53}.get(freq, 0),
    "BYMONTHDAY": lambda freq: {"MONTHLY": 1, "YEARLY": 12}.get(freq, 0),
    "BYYEARDAY": lambda freq: 1 if freq == "YEARLY" else 0,
    "BYWEEKNO": lambda freq: 7 if freq == "YEARLY" else 0,
    "BYMONTH": lambda freq: 1 if freq == "YEARLY" else 0,
}


def most_shifts(events: list[tuple[Any, datetime]], until: datetime) -> float:
    """An upper bound on the occurrences of ``events`` (each a VEVENT and its start) before
    ``until``."""
    total = 0.0
    for event, start in events:
        days = max((until - start).total_seconds() / 86_400, 0.0) + 1
        total += 1 + _rdates(event.get("RDATE"))
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules]:
            if rule is not None:
                total += _rule_bound(rule, days)
    return total


def _rdates(value: Any) -> int:
    if value is None:
        return 0
    return sum(len(getattr(item, "dts", [item])) for item in _as_list(value))


def _rule_bound(rule: Any, days: float) -> float:
    if not isinstance(rule, Mapping):
        return days  # unreadable: the expander says why; assume daily meanwhile
    freq = str(_first(rule, "FREQ") or "DAILY").upper()
    if freq not in _PER_DAY:
        return days
    per_period = 1
    for part, adds in _ADDS.items():
        listed = len(_as_list(rule.get(part, [])))
        if listed and adds(freq):
            per_period *= listed * adds(freq)
    if rule.get("BYSETPOS"):
        per_period = min(per_period, len(_as_list(rule["BYSETPOS"])))
    interval = _whole(_first(rule, "INTERVAL"), 1)
    bound = _PER_DAY[freq] * days / interval * per_period + per_period
    count = _whole(_first(rule, "COUNT"), 0)
    return min(bound, count) if count else bound


def _first(rule: Mapping[str, Any], key: str) -> Any:
    values = _as_list(rule.get(key, []))
    return values[0] if values else None


def _whole(value: Any, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
