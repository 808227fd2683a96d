"""The workload file (``workloads/*.yaml``): who calls, how often, and how consultants behave.

Read with the settings' YAML loader, so a bad value is reported as ``file:line:col: field:
message`` exactly like config.yaml. Cross-file facts (override ids that name no member, a
specialty with no team) are checked by ``check_workload`` once the member universe is known.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from callrouter.settings.base import Frozen
from callrouter.settings.dialplan import SLUG, HuntDefaults
from callrouter.settings.errors import ConfigError, ConfigIssue, FieldError
from callrouter.settings.source import SourceFile, read_model

Probability = Annotated[float, Field(ge=0, le=1)]
MAX_SECONDS = 86_400.0
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
_TRAFFIC_KEY = re.compile(SLUG[:-1] + r"(/[a-z0-9]+(-[a-z0-9]+)*)?$")  # "renal", "barnet/renal"
Z90 = 1.2815515655446004  # the standard normal's 90th percentile


class Spread(Frozen):
    """A lognormal duration given by its median and 90th percentile (seconds)."""

    median: Seconds
    p90: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.p90 < self.median:
            raise FieldError("must be at least the median", "p90")
        return self

    @property
    def mu(self) -> float:
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / Z90


Hour = Annotated[int, Field(ge=0, le=23)]
Multiplier = Annotated[float, Field(ge=0, le=100)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Away(Frozen):
    """Availability sessions: spells when a member answers nothing (clinic, theatre, a ward
    round), then is back. ``per_day`` spells a day on average (Poisson), each lasting the
    lognormal ``minutes``, starting anywhere in the service hours."""

    per_day: Annotated[float, Field(ge=0, le=24)] = 0.0
    minutes: Spread = Spread(median=60, p90=120)


class BehaviourOverride(Frozen):
    """One member's (or one tier's) own habits; any field left out is taken from above."""

    answer_probability: Probability | None = None
    answer_delay_seconds: Spread | None = None
    accept_probability: Probability | None = None
    by_hour: dict[Hour, Multiplier] | None = None
    away: Away | None = None


class Consultants(Frozen):
    """How every consultant behaves, unless ``tiers`` (by tier kind: ``local``, ``ncn``) or
    ``overrides`` (by member id) say otherwise, field by field: member over tier over these."""

    answer_probability: Probability = 0.75  # a free consultant answers a ringing call at all
    answer_delay_seconds: Spread = Spread(median=8, p90=20)
    accept_probability: Probability = 0.97  # presses 1 after the whisper (else 2)
    # Answer-probability multiplier from each listed hour (local time) to the next listed one;
    # before the first listed hour: 1. {9: 0.5, 12: 1.2, 14: 0.8}: clinic mornings, free lunch.
    by_hour: dict[Hour, Multiplier] = Field(default_factory=dict)
    away: Away = Away()
    tiers: dict[Annotated[str, Field(pattern=r"^(local|ncn)$")], BehaviourOverride] = Field(
        default_factory=dict
    )
    overrides: dict[str, BehaviourOverride] = Field(default_factory=dict)


class ArrivalProfile(Frozen):
    """Multipliers on ``calls_per_hour``: by hour of the day (from that hour to the next listed,
    1 before the first) and by weekday (``mon`` … ``sun``; 1 when not listed)."""

    by_hour: dict[Hour, Multiplier] = Field(default_factory=dict)
    by_weekday: dict[str, Multiplier] = Field(default_factory=dict)

    @field_validator("by_weekday")
    @classmethod
    def _weekdays(cls, days: dict[str, float]) -> dict[str, float]:
        for day in days:
            if day not in WEEKDAYS:
                raise FieldError(f"{day!r} is not a weekday ({', '.join(WEEKDAYS)})", day)
        return days

    def rate_factor(self, weekday: int, hour: int) -> float:
        return self.by_weekday.get(WEEKDAYS[weekday], 1.0) * step_at(self.by_hour, hour)


def step_at(steps: Mapping[int, float], hour: int) -> float:
    """The value of a step function given as {hour it starts: value} at ``hour`` (1 before)."""
    value = 1.0
    for start in sorted(steps):
        if start <= hour:
            value = steps[start]
    return value


class TeamSize(Frozen):
    """A synthetic always-on-call team: ``<specialty>-local-<n>`` then ``<specialty>-ncn-<n>``."""

    local: Annotated[int, Field(ge=0, le=100)]
    ncn: Annotated[int, Field(ge=0, le=100)] = 0


class Workload(Frozen):
    config: Path | None = None  # the config tree whose rotas to use (relative to this file)
    seed: int = 1
    start: date  # the first simulated day (Europe/London); weekends are skipped
    days: Annotated[int, Field(ge=1, le=3660)]
    hours: tuple[time, time] = (time(8, 0), time(18, 30))
    calls_per_hour: Annotated[
        dict[str, Annotated[float, Field(ge=0, le=10_000)]], Field(min_length=1)
    ]
    teams: dict[Annotated[str, Field(pattern=SLUG)], TeamSize] | None = None
    consultants: Consultants = Consultants()
    call_length_seconds: Spread = Spread(median=220, p90=480)
    # A GP still waiting this long after choosing hangs up: one figure, or a lognormal spread
    # drawn per call.
    gp_patience_seconds: Spread = Spread(median=120, p90=120)
    arrivals: ArrivalProfile = ArrivalProfile()
    weekends: bool = False  # simulate Saturdays and Sundays too (default: weekdays only)
    hunt: HuntDefaults = HuntDefaults()  # synthetic teams only: the hunt policy of every specialty

    @field_validator("calls_per_hour")
    @classmethod
    def _traffic_keys(cls, traffic: dict[str, float]) -> dict[str, float]:
        for key in traffic:
            if not _TRAFFIC_KEY.match(key):
                raise FieldError(
                    f"{key!r} is not a specialty id like 'dermatology' or 'barnet/dermatology'",
                    key,
                )
        return traffic

    @field_validator("hours")
    @classmethod
    def _hours_ordered(cls, hours: tuple[time, time]) -> tuple[time, time]:
        if hours[1] <= hours[0]:
            raise FieldError("the end must be after the start", 1)
        return hours

    @field_validator("gp_patience_seconds", mode="before")
    @classmethod
    def _fixed_patience(cls, value: object) -> object:
        """One figure is a spread of zero width (YAML scalars arrive as text: typed by key)."""
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                seconds = float(value)
            except ValueError:
                raise FieldError(
                    f"not a number of seconds or a {{median, p90}}: {value!r}"
                ) from None
            if not 0 < seconds <= MAX_SECONDS:
                raise FieldError(f"must be more than 0 and at most {MAX_SECONDS:.0f} seconds")
            return {"median": seconds, "p90": seconds}
        return value

    def patience(self) -> Spread:
        """The GP's patience, drawn per call (a fixed figure is a spread of zero width)."""
        return self.gp_patience_seconds

    def traffic(self) -> list[tuple[str | None, str, float]]:
        """``(area or None, specialty, calls per hour)`` per key, in file order."""
        out: list[tuple[str | None, str, float]] = []
        for key, rate in self.calls_per_hour.items():
            area, _, specialty = key.rpartition("/")
            out.append((area or None, specialty, rate))
        return out

    def synthetic_members(self) -> dict[str, list[str]]:
        """Member ids of the synthetic teams by specialty, local first."""
        members: dict[str, list[str]] = {}
        for specialty, size in (self.teams or {}).items():
            members[specialty] = [f"{specialty}-local-{n}" for n in range(1, size.local + 1)] + [
                f"{specialty}-ncn-{n}" for n in range(1, size.ncn + 1)
            ]
        return members


def read_workload(path: Path) -> SourceFile[Workload]:
    """Parse and validate ``path``; raise ``ConfigError`` with every problem at its line."""
    source, issues = read_model(path, Workload)
    if source is None:
        raise ConfigError(issues)
    return source


def check_workload(
    source: SourceFile[Workload],
    known_members: Iterable[str],
    served: Mapping[str | None, set[str]] | None = None,
) -> None:
    """Cross-checks that need the members and specialties the run will use.

    ``served`` maps an area (None: any area) to the specialties it can route; None skips the check
    (synthetic teams: every specialty with traffic must have a team instead).
    """
    workload = source.model
    known = set(known_members)
    issues: list[ConfigIssue] = []
    for member in workload.consultants.overrides:
        if member not in known:
            hint = ", ".join(sorted(known)[:6]) + (", …" if len(known) > 6 else "")
            issues.append(
                source.issue(
                    ("consultants", "overrides", member),
                    f"no member with this id (known: {hint})",
                    at_key=True,
                )
            )
    for key in workload.calls_per_hour:
        area, _, specialty = key.rpartition("/")
        if workload.teams is not None:
            if specialty not in workload.teams:
                issues.append(
                    source.issue(
                        ("calls_per_hour", key),
                        f"no team for {specialty!r} under 'teams'",
                        at_key=True,
                    )
                )
        elif served is not None:
            wanted = area or None
            if wanted is not None and wanted not in served:
                issues.append(
                    source.issue(
                        ("calls_per_hour", key), f"no dialplan for area {area!r}", at_key=True
                    )
                )
            elif specialty not in served.get(wanted, set()):
                issues.append(
                    source.issue(
                        ("calls_per_hour", key),
                        f"no dialplan routes {specialty!r}" + (f" in {area}" if area else ""),
                        at_key=True,
                    )
                )
    if issues:
        raise ConfigError(issues)
