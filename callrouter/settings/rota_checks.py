"""Checks across rota objects, reported with a location inside the team.

Each problem names a team and a ``loc`` path inside that team's YAML mapping (for example
``("layers", 0, "rotation", "handoff")``), so the loader, which knows which file and node each
team came from, can report ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

from callrouter.core.localtime import Gap, gaps, is_gap
from callrouter.settings.dialplan import WEEKDAYS
from callrouter.settings.rota import Layer, Rotas, Team, Turn

# Years scanned for DST gaps. Europe/London's gap is every year on the last Sunday of March, so
# any year finds it; the span matters only for zones whose gap moves between weekdays.
DEFAULT_GAP_YEARS = range(2025, 2041)

Loc = tuple[str | int, ...]


class RotaProblem(NamedTuple):
    team_id: str
    loc: Loc  # inside the team's mapping, e.g. ("layers", 0, "rotation", "handoff")
    message: str


def _gap_hit(
    all_gaps: list[Gap], clock: time, on_day: Callable[[date], bool]
) -> tuple[date, Gap] | None:
    """The first gap that contains ``clock`` on a day for which ``on_day(day)`` holds."""
    for gap in all_gaps:
        for day in gap.days():
            if on_day(day) and gap.contains(datetime.combine(day, clock)):
                return day, gap
    return None


def _gap_text(clock: time, day: date, gap: Gap) -> str:
    return (
        f"{clock:%H:%M} does not exist on {day:%a %Y-%m-%d}: the clocks go forward and "
        f"{gap.start:%H:%M}-{gap.end:%H:%M} is skipped; choose a time outside it"
    )


def _rotation_problems(
    team: Team, index: int, layer: Layer, all_gaps: list[Gap]
) -> list[RotaProblem]:
    rotation = layer.rotation
    if rotation is None:
        return []
    start = rotation.start
    daily = rotation.turn is Turn.DAILY

    def hands_off(day: date) -> bool:
        return day >= start.date() and (daily or day.weekday() == start.weekday())

    hit = _gap_hit(all_gaps, rotation.handoff_time, hands_off)
    if hit is None:
        return []
    field = "handoff" if rotation.handoff is not None else "start"
    return [
        RotaProblem(
            team.id,
            ("layers", index, "rotation", field),
            f"layer {layer.name}: the handoff at {_gap_text(rotation.handoff_time, *hit)}",
        )
    ]


def _window_starts(days: Collection[str], back: timedelta) -> Callable[[date], bool]:
    """Whether a window boundary on ``day`` belongs to a window that started ``back`` earlier."""
    return lambda day: WEEKDAYS[(day - back).weekday()] in days


def _restriction_problems(
    team: Team, index: int, layer: Layer, all_gaps: list[Gap]
) -> list[RotaProblem]:
    problems: list[RotaProblem] = []
    for number, window in enumerate(layer.restrictions):
        back = timedelta(days=1 if window.crosses_midnight else 0)
        ends: dict[str, tuple[time, Callable[[date], bool]]] = {
            "from": (window.from_, _window_starts(window.days, timedelta(0))),
            "to": (window.to, _window_starts(window.days, back)),
        }
        for field, (clock, on_day) in ends.items():
            hit = _gap_hit(all_gaps, clock, on_day)
            if hit is not None:
                what = "start" if field == "from" else "end"
                problems.append(
                    RotaProblem(
                        team.id,
                        ("layers", index, "restrictions", number, field),
                        f"layer {layer.name}: the window {what} {_gap_text(clock, *hit)}",
                    )
                )
    return problems


def dst_gap_problems(
    rotas: Rotas, tz: tzinfo | None = None, years: Iterable[int] = DEFAULT_GAP_YEARS
) -> list[RotaProblem]:
    """Handoffs, restriction boundaries and override times that fall in a DST gap (01:00-02:00
    on the last Sunday of March in Europe/London) on a day they would take effect."""
    zone = tz if tz is not None else rotas.zone
    all_gaps = [gap for year in years for gap in gaps(zone, year)]
    problems: list[RotaProblem] = []
    for team in rotas.teams.values():
        for index, layer in enumerate(team.layers):
            problems += _rotation_problems(team, index, layer, all_gaps)
            problems += _restriction_problems(team, index, layer, all_gaps)
        for number, override in enumerate(team.overrides):
            for field, moment in (("from", override.from_), ("to", override.to)):
                if is_gap(moment, zone):
                    problems.append(
                        RotaProblem(
                            team.id,
                            ("overrides", number, field),
                            f"override {moment:%Y-%m-%d %H:%M} does not exist: the clocks go "
                            "forward over it",
                        )
                    )
    return problems


def reference_problems(rotas: Rotas) -> list[RotaProblem]:
    """Member ids that no file defines, ICS calendars not read, and members placed in a team of
    a specialty they do not list (when they list any)."""
    problems: list[RotaProblem] = []
    members = rotas.members

    def check(team: Team, member_id: str, loc: tuple[str | int, ...]) -> None:
        member = members.get(member_id)
        if member is None:
            problems.append(RotaProblem(team.id, loc, f"no member has id {member_id!r}"))
        elif member.specialties and team.specialty not in member.specialties:
            problems.append(
                RotaProblem(
                    team.id,
                    loc,
                    f"member {member_id!r} lists specialties {', '.join(member.specialties)}, "
                    f"not {team.specialty}",
                )
            )

    for team in rotas.teams.values():
        for index, layer in enumerate(team.layers):
            for number, member_id in enumerate(layer.members):
                check(team, member_id, ("layers", index, "members", number))
            if layer.ics is not None:
                problems += _ics_problems(team, index, layer, members)
        for number, override in enumerate(team.overrides):
            check(team, override.member, ("overrides", number, "member"))
            if override.replaces is not None and override.replaces not in members:
                problems.append(
                    RotaProblem(
                        team.id,
                        ("overrides", number, "replaces"),
                        f"no member has id {override.replaces!r}",
                    )
                )
    return problems


def _ics_problems(
    team: Team, index: int, layer: Layer, members: Collection[str]
) -> list[RotaProblem]:
    assert layer.ics is not None
    loc: Loc = ("layers", index, "ics")
    if layer.ics.shifts is None:
        return [RotaProblem(team.id, loc, f"calendar {layer.ics.path} was not read")]
    unknown: dict[str, str] = {}
    for shift in layer.ics.shifts:
        if shift.member not in members and shift.member not in unknown:
            unknown[shift.member] = f"{shift.label!r} on {shift.start:%Y-%m-%d %H:%M}"
    return [
        RotaProblem(
            team.id,
            loc,
            f"{layer.ics.path}: event {event} names {member!r}, which is no member's id",
        )
        for member, event in unknown.items()
    ]


def specialty_problems(rotas: Rotas, known: Collection[str]) -> list[RotaProblem]:
    """Teams whose specialty is not in the configured catalogue."""
    return [
        RotaProblem(team.id, ("specialty",), f"specialty {team.specialty!r} is not in config.yaml")
        for team in rotas.teams.values()
        if team.specialty not in known
    ]
