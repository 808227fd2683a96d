"""Who is on call for a team at an instant, and why. Pure: the instant is an argument.

Resolution, in order:
1. Each layer, in the team's order, that applies at the instant (inside a restriction window, if
   it has any; passing its bank-holiday rule; started) gives its members on call: a rotation's
   rotated list (current primary first, then the others as backups, cut to ``on_call``), or
   the members of the ICS events covering the instant. Members are de-duplicated, keeping the
   first place.
2. Overrides active at the instant: one with ``replaces`` puts its member in the replaced
   member's place (no effect if the replaced member is not on call); one without is put first
   (several, in file order).

Every boundary is exact: [start, end). A handoff at 08:00 leaves 07:59:59 with the old member.
Boundaries are wall-clock times in the rotas' zone, turned into instants by
``callrouter.core.localtime.instant``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from callrouter.core.localtime import at_wall, instant, wall
from callrouter.core.plan import Candidate
from callrouter.oncall.calendar import bank_holiday_name
from callrouter.settings.dialplan import WEEKDAYS
from callrouter.settings.rota import (
    BankHolidays,
    IcsSource,
    Layer,
    Restriction,
    Rotas,
    Rotation,
    Team,
)

_ONE_DAY = timedelta(days=1)


class UnknownTeamError(LookupError):
    """A team id that the rotas do not define."""


class UnknownMemberError(LookupError):
    """A rota names a member that the rotas do not define (the loader should have refused it)."""


@dataclass(frozen=True, slots=True)
class LayerState:
    """One layer at one instant: whether it applies, a note saying why, and whom it puts on call."""

    name: str
    applies: bool
    note: str
    members: tuple[tuple[str, str], ...]  # (member id, why), in order


@dataclass(frozen=True, slots=True)
class TeamOnCall:
    """The whole answer for one team at one instant."""

    team: str
    at: datetime  # in the rotas' zone
    layers: tuple[LayerState, ...]
    overrides: tuple[str, ...]  # notes on the overrides active at the instant
    candidates: tuple[Candidate, ...]


def _window_days(restrictions: tuple[Restriction, ...], at: datetime, tz: tzinfo) -> list[date]:
    """The start days of the restriction windows that contain ``at`` (a window can start the
    day before, if it crosses midnight)."""
    today = wall(at, tz).date()
    days: list[date] = []
    for window in restrictions:
        for day in (today, today - _ONE_DAY):
            if WEEKDAYS[day.weekday()] not in window.days:
                continue
            end_day = day + _ONE_DAY if window.crosses_midnight else day
            if end_day < today:
                continue
            if at_wall(day, window.from_, tz) <= at < at_wall(end_day, window.to, tz):
                days.append(day)
    return days


def _day_passes(rule: BankHolidays, day: date) -> bool:
    if rule is BankHolidays.INCLUDE:
        return True
    holiday = bank_holiday_name(day) is not None
    return holiday if rule is BankHolidays.ONLY else not holiday


@dataclass(frozen=True, slots=True)
class RotaTurn:
    """The turn of a rotation at an instant: its number (from 0) and when it began and ends."""

    index: int
    began: datetime
    ends: datetime


def current_turn(rotation: Rotation, at: datetime, tz: tzinfo) -> RotaTurn | None:
    """The rotation's turn at ``at``, or None before the rotation starts."""
    clock = rotation.handoff_time
    step = rotation.step_days
    day = wall(at, tz).date()
    if step > 1:  # back to the latest handoff weekday
        day -= timedelta(days=(day.weekday() - rotation.start.weekday()) % 7)
    began = at_wall(day, clock, tz)
    if at < began:
        day -= timedelta(days=step)
        began = at_wall(day, clock, tz)
    if day < rotation.start.date():
        return None
    index = (day - rotation.start.date()).days // step
    return RotaTurn(index, began, at_wall(day + timedelta(days=step), clock, tz))


def _rotation_members(layer: Layer, turn: RotaTurn) -> tuple[tuple[str, str], ...]:
    first = turn.index % len(layer.members)
    rotated = layer.members[first:] + layer.members[:first]
    count = layer.on_call if layer.on_call is not None else len(rotated)
    roles = ["primary"] + [f"backup {n}" for n in range(1, count)]
    return tuple(
        (member, f"layer {layer.name} ({role})")
        for member, role in zip(rotated[:count], roles, strict=True)
    )


def _ics_members(layer: Layer, source: IcsSource, at: datetime) -> tuple[tuple[str, str], ...]:
    shifts = source.shifts or ()
    # Shifts are sorted by start; any that covers `at` starts in (at - longest, at].
    stop = bisect_right(shifts, at, key=lambda shift: shift.start)
    first = bisect_right(shifts, at - source.longest, key=lambda shift: shift.start)
    name = source.path.rsplit("/", 1)[-1]
    return tuple(
        (shift.member, f"layer {layer.name} (ics {name})")
        for shift in shifts[first:stop]
        if shift.start <= at < shift.end
    )


def layer_state(layer: Layer, at: datetime, tz: tzinfo) -> LayerState:
    """Whether ``layer`` applies at ``at``, and whom it puts on call."""
    if layer.restrictions:
        days = _window_days(layer.restrictions, at, tz)
        if not days:
            return LayerState(layer.name, False, "outside its hours", ())
    else:
        days = [wall(at, tz).date()]
    passing = [day for day in days if _day_passes(layer.bank_holidays, day)]
    if not passing:
        holiday = bank_holiday_name(days[0])
        if layer.bank_holidays is BankHolidays.SKIP:
            note = f"not on bank holidays ({holiday})"
        else:
            note = "bank holidays only"
        return LayerState(layer.name, False, note, ())
    if layer.rotation is not None:
        turn = current_turn(layer.rotation, at, tz)
        if turn is None:
            return LayerState(
                layer.name, False, f"starts {layer.rotation.start:%Y-%m-%d %H:%M}", ()
            )
        note = f"turn {turn.index + 1}, hands off {wall(turn.ends, tz):%a %Y-%m-%d %H:%M}"
        return LayerState(layer.name, True, note, _rotation_members(layer, turn))
    assert layer.ics is not None  # the model requires rotation or ics
    members = _ics_members(layer, layer.ics, at)
    note = f"{len(members)} event(s) now"
    if layer.ics.covers_until is not None and at >= layer.ics.covers_until:
        note = f"calendar expanded only until {wall(layer.ics.covers_until, tz):%Y-%m-%d}"
    return LayerState(layer.name, bool(members), note, members)


def _apply_overrides(
    team: Team, entries: list[tuple[str, str]], at: datetime, tz: tzinfo
) -> tuple[list[tuple[str, str]], list[str]]:
    local = wall(at, tz)
    added: list[tuple[str, str]] = []
    notes: list[str] = []
    for override in team.overrides:
        # A cheap wall-clock test first: most overrides are long past or far ahead.
        if override.to < local - _ONE_DAY or override.from_ > local + _ONE_DAY:
            continue
        if not instant(override.from_, tz) <= at < instant(override.to, tz):
            continue
        why = override.why()
        if override.replaces is None:
            added.append((override.member, why))
            notes.append(f"{why}; {override.member} put first")
            continue
        places = [n for n, (member, _) in enumerate(entries) if member == override.replaces]
        if not places:
            notes.append(f"{why}; no effect: {override.replaces} is not on call")
            continue
        entries[places[0]] = (override.member, why)
        notes.append(f"{why}; {override.member} in place of {override.replaces}")
    return added + entries, notes


def _first_places(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    for member, why in entries:
        if member not in seen:
            seen.add(member)
            kept.append((member, why))
    return kept


def explain(rotas: Rotas, team_id: str, at: datetime) -> TeamOnCall:
    """Who is on call for ``team_id`` at aware instant ``at``, layer by layer, and why."""
    team = rotas.teams.get(team_id)
    if team is None:
        raise UnknownTeamError(f"no team has id {team_id!r}")
    tz = rotas.zone
    states = tuple(layer_state(layer, at, tz) for layer in team.layers)
    entries = _first_places([entry for state in states if state.applies for entry in state.members])
    entries, notes = _apply_overrides(team, entries, at, tz)
    candidates: list[Candidate] = []
    for member_id, why in _first_places(entries):
        member = rotas.members.get(member_id)
        if member is None:
            raise UnknownMemberError(f"team {team_id} names member {member_id!r}, not defined")
        candidates.append(Candidate(member_id, member.name, member.uri, why))
    return TeamOnCall(team_id, at.astimezone(tz), states, tuple(notes), tuple(candidates))


def on_call(rotas: Rotas, team_id: str, at: datetime) -> tuple[Candidate, ...]:
    """The members of ``team_id`` on call at aware instant ``at``, in the order to ring them."""
    return explain(rotas, team_id, at).candidates
