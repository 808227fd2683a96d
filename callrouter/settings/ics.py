"""Read the ICS calendars that rota layers name, once, into plain shifts on the model.

A layer ``ics: cover.ics`` names a calendar relative to its rota file. Each event (recurring
ones expanded with ``recurring-ical-events``) puts one member on call from DTSTART to DTEND:

- the member id is the event's ``X-CALLROUTER-MEMBER`` property if it has one, else its
  ``SUMMARY`` (so a plain calendar app can be used: title the event with the member id);
- times with a TZID or Z are taken as given; floating times and all-day dates are local
  wall-clock time in the configured zone (an all-day event runs midnight to midnight);
- ``STATUS:CANCELLED`` events are left out.

Recurring events without an end are expanded up to a horizon (by default two years after
``today``); ``IcsSource.covers_until`` records it and ``callrouter oncall`` says so beyond it.
Reloading the configuration moves the horizon on.

This module does file I/O and reads the date when not given one: it belongs to the shell side.
The result is plain data, so resolution (``callrouter.oncall.rota``) stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events

from callrouter.core.localtime import at_wall, instant
from callrouter.settings.ics_size import most_shifts
from callrouter.settings.rota import IcsShift, IcsSource, Layer, RotaFile, Team
from callrouter.settings.text_file import TextFileError, read_text

MEMBER_PROPERTY = "X-CALLROUTER-MEMBER"
DEFAULT_HORIZON = timedelta(days=731)
_EARLIEST = date(1970, 1, 1)
MAX_NESTING = 10  # VCALENDAR > VEVENT > VALARM is three
MAX_SHIFTS = 20_000  # two years of hourly shifts; a rota has a few a day

Loc = tuple[str | int, ...]


class IcsError(ValueError):
    """A calendar that cannot be read or makes no sense."""


def _when(value: Any, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return instant(value, tz) if value.tzinfo is None else value
    if isinstance(value, date):
        return at_wall(value, time(0), tz)
    raise IcsError(f"unexpected time value {value!r}")


def _label(event: Any) -> str:
    return str(event.get("SUMMARY") or event.get("UID") or "untitled event").strip()


def _one(event: Any, name: str) -> Any:
    """The event's ``name`` property (None if absent); a property written twice is an error, not a
    list where one value belongs."""
    value = event.get(name)
    if isinstance(value, list):
        raise IcsError(f"event {_label(event)!r} has {len(value)} {name} properties")
    return value


def _check_written(event: Any, tz: tzinfo) -> None:
    """Refuse what the expander would quietly repair: it swaps an end written before the start,
    and gives an event with neither DTEND nor DURATION no length at all."""
    label = _label(event)
    start_prop = _one(event, "DTSTART")
    if start_prop is None:
        raise IcsError(f"event {label!r} has no DTSTART")
    end_prop = _one(event, "DTEND")
    start = _when(start_prop.dt, tz)
    if end_prop is not None and _when(end_prop.dt, tz) <= start:
        raise IcsError(f"event {label!r} at {start:%Y-%m-%d %H:%M} ends before it starts")
    timed = isinstance(start_prop.dt, datetime)
    if timed and end_prop is None and _one(event, "DURATION") is None:
        raise IcsError(f"event {label!r} at {start:%Y-%m-%d %H:%M} has no DTEND or DURATION")


def _shift(event: Any, tz: tzinfo) -> IcsShift | None:
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return None
    label = _label(event)
    member = str(event.get(MEMBER_PROPERTY) or event.get("SUMMARY") or "").strip()
    if not member:
        raise IcsError(f"event {label!r} names no member (give SUMMARY or {MEMBER_PROPERTY})")
    start_prop = _one(event, "DTSTART")
    if start_prop is None:
        raise IcsError(f"event {label!r} has no DTSTART")
    start = _when(start_prop.dt, tz)
    end_prop = _one(event, "DTEND")
    if end_prop is not None:
        end = _when(end_prop.dt, tz)
    elif _one(event, "DURATION") is not None:
        end = start + _one(event, "DURATION").dt
    elif not isinstance(start_prop.dt, datetime):
        end = _when(start_prop.dt + timedelta(days=1), tz)
    else:
        raise IcsError(f"event {label!r} at {start:%Y-%m-%d %H:%M} has no DTEND or DURATION")
    if end <= start:
        raise IcsError(f"event {label!r} at {start:%Y-%m-%d %H:%M} has no length")
    return IcsShift(start=start, end=end, member=member, label=label)


def read_calendar(path: Path, tz: tzinfo, until: datetime, written: str | None = None) -> IcsSource:
    """Read ``path`` and expand its events up to ``until`` into an ``IcsSource``."""
    calendar = _parse(path)
    try:
        for component in calendar.walk("VEVENT"):
            _check_written(component, tz)
        shifts = _expand(calendar, tz, until)
    except IcsError as error:
        raise IcsError(f"{path.name}: {error}") from error
    # The expander's complaints (a bad RRULE, say) are not documented: each is a bad calendar.
    except Exception as error:
        raise IcsError(f"{path.name}: cannot expand its events: {error}") from error
    shifts.sort(key=lambda shift: (shift.start, shift.end, shift.member))
    longest = max((shift.end - shift.start for shift in shifts), default=timedelta(0))
    return IcsSource(
        path=written or path.name, shifts=tuple(shifts), covers_until=until, longest=longest
    )


def _expand(calendar: Any, tz: tzinfo, until: datetime) -> list[IcsShift]:
    """Every shift starting before ``until``; refused, before expanding, when the rules could
    give more than ``MAX_SHIFTS`` (a rule repeating every second would fill memory for hours)."""
    events = [(event, _when(_one(event, "DTSTART").dt, tz)) for event in calendar.walk("VEVENT")]
    bound = most_shifts(events, until)
    if bound > MAX_SHIFTS:
        message = (
            f"its rules could give about {bound:,.0f} shifts before {until:%Y-%m-%d}; "
            f"a rota has at most {MAX_SHIFTS:,}"
        )
        raise IcsError(message)
    expanded: Iterable[Any] = recurring_ical_events.of(calendar).between(_EARLIEST, until)
    return [shift for event in expanded if (shift := _shift(event, tz)) is not None]


def _parse(path: Path) -> Any:
    """The calendar in ``path``; IcsError, naming the line:col in it where one is known."""
    try:
        text = read_text(path)
    except TextFileError as error:
        if error.line is None:
            raise IcsError(f"calendar not found: {path}") from None
        raise IcsError(f"{path.name}:{error.line}:{error.col}: {error.message}") from None
    _check_nesting(path, text)
    try:
        return icalendar.Calendar.from_ical(text)
    # The parser's failures on bad text are not documented: whatever it raises is a bad calendar.
    except Exception as error:
        raise IcsError(f"{path.name} is not a valid calendar: {error}") from None


def _check_nesting(path: Path, text: str) -> None:
    """Components (BEGIN:/END:) nest at most ``MAX_NESTING`` deep: the parser and the walk over
    its result recurse once per level."""
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        name = line.partition(":")[0].upper()  # a folded line starts with a space: not a name
        if name == "BEGIN":
            depth += 1
            if depth > MAX_NESTING:
                message = f"components nested too deeply (more than {MAX_NESTING} levels)"
                raise IcsError(f"{path.name}:{number}:1: {message}")
        elif name == "END":
            depth -= 1


def read_calendars(
    rota_file: RotaFile,
    rota_dir: Path,
    tz: tzinfo,
    *,
    today: date | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> tuple[RotaFile, list[tuple[Loc, str]]]:
    """``rota_file`` with every ICS layer's calendar read (paths relative to ``rota_dir``), and
    the problems found, each as (loc inside the file, message) for the loader to place."""
    until = at_wall((today or date.today()) + horizon, time(0), tz)
    problems: list[tuple[Loc, str]] = []
    teams: list[Team] = []
    for t_index, team in enumerate(rota_file.teams):
        layers: list[Layer] = []
        for l_index, layer in enumerate(team.layers):
            if layer.ics is not None:
                try:
                    source = read_calendar(rota_dir / layer.ics.path, tz, until, layer.ics.path)
                    layer = layer.model_copy(update={"ics": source})  # noqa: PLW2901
                except IcsError as error:
                    problems.append((("teams", t_index, "layers", l_index, "ics"), str(error)))
            layers.append(layer)
        teams.append(team.model_copy(update={"layers": tuple(layers)}))
    return rota_file.model_copy(update={"teams": tuple(teams)}), problems
