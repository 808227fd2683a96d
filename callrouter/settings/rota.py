"""The model of rotas (``rotas/*.yaml``): members, teams, layers and overrides.

A rota file has optional ``members:`` and ``teams:`` lists; the loader validates each file as a
``RotaFile`` and merges them into one ``Rotas`` (ids are unique across files). Every time in a
rota is local wall-clock time in the configured zone (Europe/London), written without an offset;
``callrouter.core.localtime`` says how a wall-clock boundary becomes an instant across DST.

The project's loader hands every scalar over as text. Data from a plain YAML 1.1 loader gets the
base-60 number 1110 for an unquoted 18:30; that is refused here rather than taken as 00:18:30.

Checks that need more than one object (member references, DST gaps) live in
``callrouter.settings.rota_checks`` and return problems with a location inside the team, so the
loader can report them as file:line:col.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
    field_validator,
    model_validator,
)

from callrouter.settings.base import Frozen, known_zone, usable_path
from callrouter.settings.dialplan import Slug, Weekday
from callrouter.settings.errors import FieldError

MemberId = Slug

_SIP_URI = re.compile(
    r"^sips?:(?P<user>[^@\s;?]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<params>;[^\s?]*)?$"
)
_TEL_URI = re.compile(r"^tel:\+[1-9][0-9]{6,14}$")
_MAX_PORT = 65535
_HH_MM = re.compile(r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?")


def _check_uri(uri: str) -> str:
    if uri.startswith("tel:"):
        if not _TEL_URI.match(uri):
            raise ValueError("a tel: URI must be E.164: 'tel:+' then 7 to 15 digits, no spaces")
        return uri
    match = _SIP_URI.match(uri)
    if match is None:
        raise ValueError("give a sip:user@host[:port], sips:user@host[:port] or tel:+E.164 URI")
    port = match.group("port")
    if port is not None and not 0 < int(port) <= _MAX_PORT:
        raise ValueError(f"port {port} is out of range")
    return uri


def _wall_time(value: object) -> object:
    """Refuse what YAML makes of an unquoted 18:30 (an int) and times with a zone."""
    if isinstance(value, bool | int | float):
        raise ValueError("write the time quoted, e.g. '18:30' (YAML reads 18:30 as 1110)")
    zoned_text = isinstance(value, str) and any(mark in value for mark in "+-Zz")
    if zoned_text or (isinstance(value, time) and value.tzinfo is not None):
        raise ValueError("a rota time is local wall-clock time: give it without a zone")
    if isinstance(value, str) and not _HH_MM.fullmatch(value.strip()):
        raise ValueError("give a time as HH:MM, e.g. '08:00'")
    return value


def _local_datetime(value: object) -> object:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return value  # pydantic says what is wrong with it
    if isinstance(value, datetime) and value.tzinfo is not None:
        raise ValueError("a rota date-time is local wall-clock time: give it without an offset")
    return value


WallTime = Annotated[time, BeforeValidator(_wall_time)]
LocalDateTime = Annotated[NaiveDatetime, BeforeValidator(_local_datetime)]


class Member(Frozen):
    """A consultant who can be rung. ``id`` is a stable slug used by layers and records."""

    id: MemberId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    uri: Annotated[str, Field(max_length=500)]
    specialties: tuple[Slug, ...] = ()

    @field_validator("uri")
    @classmethod
    def _uri(cls, uri: str) -> str:
        return _check_uri(uri)


class Turn(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Rotation(Frozen):
    """Members take turns: the first at ``start``, the next one turn later, and so on.

    ``handoff`` is the local time turns change (default: the time of ``start``; if given it must
    equal it). Weekly turns hand off on the weekday of ``start``. Turns are counted in local
    calendar days, so an 08:00 handoff stays at 08:00 across DST.
    """

    start: LocalDateTime
    turn: Turn
    handoff: WallTime | None = None

    @model_validator(mode="after")
    def _handoff_matches_start(self) -> Self:
        if self.handoff is not None and self.handoff != self.start.time():
            raise FieldError(
                f"start {self.start:%Y-%m-%d %H:%M} is not at the handoff time "
                f"{self.handoff:%H:%M}: the first turn begins at a handoff",
                "handoff",
            )
        return self

    @property
    def handoff_time(self) -> time:
        return self.start.time()

    @property
    def step_days(self) -> int:
        return 1 if self.turn is Turn.DAILY else 7


class Restriction(Frozen):
    """A window, in local time, when a layer applies: from ``from`` on each of ``days`` until
    ``to``. A ``to`` at or before ``from`` ends on the next day (18:30-08:00 is a night;
    00:00-00:00 is a whole day). ``days`` names the day the window starts."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    days: Annotated[tuple[Weekday, ...], Field(min_length=1)]
    from_: WallTime = Field(validation_alias="from")
    to: WallTime

    @property
    def crosses_midnight(self) -> bool:
        return self.to <= self.from_


class BankHolidays(StrEnum):
    INCLUDE = "include"  # apply on bank holidays like any other day
    SKIP = "skip"  # not on England bank holidays
    ONLY = "only"  # only on England bank holidays


class IcsShift(Frozen):
    """One expanded calendar event: ``member`` is on call from ``start`` until ``end``."""

    start: AwareDatetime
    end: AwareDatetime
    member: str
    label: str  # the event's SUMMARY (or UID), for messages


def _usable_path(path: str) -> str:
    usable_path(Path(path))
    return path


class IcsSource(Frozen):
    """An ICS calendar, named by ``path`` relative to the rota file. The loader reads it once
    (``callrouter.settings.ics``) and fills ``shifts``, sorted by start; None = not yet read."""

    path: Annotated[str, Field(min_length=1), AfterValidator(_usable_path)]
    shifts: tuple[IcsShift, ...] | None = None
    covers_until: AwareDatetime | None = None  # recurring events are expanded up to here
    longest: timedelta = timedelta(0)  # the longest shift, to bound the search for overlaps


class Layer(Frozen):
    """One layer of a team's rota: either a rotation of ``members`` or an ``ics`` calendar.

    ``on_call`` says how many of the rotated list are on call at once (default all): the rotated
    list puts the current primary first, then the others in rota order as backups.
    """

    name: Slug
    members: tuple[MemberId, ...] = ()
    rotation: Rotation | None = None
    on_call: Annotated[int, Field(ge=1, le=50)] | None = None
    ics: IcsSource | None = None
    restrictions: tuple[Restriction, ...] = ()
    bank_holidays: BankHolidays = BankHolidays.INCLUDE

    @field_validator("ics", mode="before")
    @classmethod
    def _ics_path(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("members")
    @classmethod
    def _members_unique(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for member in members:
            if member in seen:
                raise ValueError(f"member {member!r} is listed twice")
            seen.add(member)
        return members

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.ics is not None:
            extra = [
                name
                for name, given in (
                    ("members", bool(self.members)),
                    ("rotation", self.rotation is not None),
                    ("on_call", self.on_call is not None),
                )
                if given
            ]
            if extra:
                message = "an ics layer takes no 'members', 'rotation' or 'on_call'"
                raise FieldError(message, extra[0])
            return self
        if not self.members or self.rotation is None:
            raise ValueError("give 'members' and 'rotation', or 'ics'")
        if self.on_call is not None and self.on_call > len(self.members):
            raise FieldError(
                f"on_call {self.on_call} is more than the {len(self.members)} members", "on_call"
            )
        return self


class Override(Frozen):
    """``member`` is on call from ``from`` until ``to`` (local). With ``replaces`` they take that
    member's place (no effect while the replaced member is not on call); without it they are
    put first."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    from_: LocalDateTime = Field(validation_alias="from")
    to: LocalDateTime
    member: MemberId
    replaces: MemberId | None = None
    reason: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if self.to <= self.from_:
            raise FieldError("'to' must be after 'from'", "to")
        if self.replaces == self.member:
            raise FieldError("a member cannot replace themself", "replaces")
        return self

    def why(self) -> str:
        what = f"cover for {self.replaces}" if self.replaces else "added"
        reason = f": {self.reason}" if self.reason else ""
        return f"override {self.from_:%Y-%m-%d} {what}{reason}"


class TeamKind(StrEnum):
    LOCAL = "local"
    NCN = "ncn"  # National Consultant Network


class Team(Frozen):
    """A team answers one specialty. Its ``kind`` names its tier in a hunt plan."""

    id: Slug
    specialty: Slug
    kind: TeamKind
    name: Annotated[str, Field(min_length=1, max_length=200)]
    layers: Annotated[tuple[Layer, ...], Field(min_length=1)]
    overrides: tuple[Override, ...] = ()

    @field_validator("layers")
    @classmethod
    def _layer_names_unique(cls, layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
        seen: set[str] = set()
        for layer in layers:
            if layer.name in seen:
                raise ValueError(f"two layers are named {layer.name!r}")
            seen.add(layer.name)
        return layers


_WithId = TypeVar("_WithId", Member, Team)


def _unique_ids(items: tuple[_WithId, ...], what: str) -> tuple[_WithId, ...]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{what} {item.id!r} is defined twice")
        seen.add(item.id)
    return items


class RotaFile(Frozen):
    """One ``rotas/*.yaml`` file."""

    members: tuple[Member, ...] = ()
    teams: tuple[Team, ...] = ()

    @field_validator("members")
    @classmethod
    def _members_unique(cls, members: tuple[Member, ...]) -> tuple[Member, ...]:
        return _unique_ids(members, "member")

    @field_validator("teams")
    @classmethod
    def _teams_unique(cls, teams: tuple[Team, ...]) -> tuple[Team, ...]:
        return _unique_ids(teams, "team")


class Rotas(Frozen):
    """Every member and team, by id, and the zone their wall-clock times are in."""

    timezone: str = "Europe/London"
    members: dict[MemberId, Member] = Field(default_factory=dict)
    teams: dict[Slug, Team] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, key: str) -> str:
        return known_zone(key)

    @model_validator(mode="after")
    def _keys_are_ids(self) -> Self:
        for key, member in self.members.items():
            if key != member.id:
                raise ValueError(f"member {member.id!r} is filed under {key!r}")
        for key, team in self.teams.items():
            if key != team.id:
                raise ValueError(f"team {team.id!r} is filed under {key!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo keeps its own cache of instances

    @classmethod
    def merge(cls, files: list[RotaFile], timezone: str = "Europe/London") -> Rotas:
        """Merge files; a member or team id defined in two files is a ValueError."""
        members: dict[str, Member] = {}
        teams: dict[str, Team] = {}
        for number, rota_file in enumerate(files):
            for member in rota_file.members:
                if member.id in members:
                    raise ValueError(f"member {member.id!r} is defined again in file {number}")
                members[member.id] = member
            for team in rota_file.teams:
                if team.id in teams:
                    raise ValueError(f"team {team.id!r} is defined again in file {number}")
                teams[team.id] = team
        return cls(timezone=timezone, members=members, teams=teams)

    def teams_for(self, specialty: str) -> list[Team]:
        return [team for team in self.teams.values() if team.specialty == specialty]
