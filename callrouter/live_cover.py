"""Live cover: rota overrides added and removed over the bus, while the engine runs.

A command is a JSON object on ``<prefix>/commands/override`` (at most ``MAX_COMMAND_BYTES``)::

    {"action": "add", "request_id": "r-2041", "member": "m-card-barnet-2",
     "specialty": "cardiology", "from": "2026-12-04 17:00", "to": "2026-12-05 08:00",
     "replaces": "m-card-barnet-1", "team": "barnet-cardiology", "reason": "sickness",
     "by": "rota-app:jsmith"}
    {"action": "remove", "request_id": "r-2042", "override_id": "r-2041", "by": "..."}

``from``/``to`` are local wall-clock times in the rotas' zone, without an offset, exactly as in a
rota file; ``replaces``, ``team``, ``reason`` and ``by`` are optional (without ``team``, the one
team of the specialty whose layers list the member). The override is checked like a YAML one
(``oncall.live_cover.check_live``), written to SQLite with its audit row (one transaction, through
the call store and its spool), then applied to the hunt plans at once; its id is the request
id. Every command is answered on ``<prefix>/commands/override/response`` with its request id,
``ok`` and, when refused, the reason; a refused command changes nothing and is audited too. A
command delivered twice (QoS 1 after a reconnect) is answered again and applied once.

At start-up the overrides in force are read back from SQLite; after a SIGHUP reload they are
checked against the new rotas (one that no longer fits is left out, logged, until a reload in
which it fits again, or until it is removed).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Protocol

import structlog
from pydantic import ValidationError

from callrouter.adapters.mqtt_payloads import (
    MAX_BY_CHARS,
    RejectedPayload,
    decode_json_object,
    parse_by,
)
from callrouter.adapters.store_audit import (
    LIVE_COLUMNS,
    LIVE_IN_FORCE,
    CoverRemoved,
    cover_added,
    stored_cover,
)
from callrouter.adapters.store_statements import AuditRecord
from callrouter.audit import AuditTrail
from callrouter.core.localtime import instant
from callrouter.oncall.live_cover import (
    CoverRejectedError,
    LiveOverride,
    check_live,
    choose_team,
    usable,
    with_live_overrides,
)
from callrouter.settings.loader import Settings
from callrouter.settings.rota import Override

log = structlog.get_logger("callrouter.live_cover")

MAX_COMMAND_BYTES: Final = 2048
MAX_LIVE_OVERRIDES: Final = 500  # in force at once; far above any real day's cover
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ADD_FIELDS: Final = frozenset(
    {
        "action",
        "request_id",
        "member",
        "specialty",
        "from",
        "to",
        "replaces",
        "team",
        "reason",
        "by",
    }
)
_REMOVE_FIELDS: Final = frozenset({"action", "request_id", "override_id", "by"})

SqlValue = str | int | float | None
Answer = dict[str, Any]


class CoverStore(Protocol):
    async def note(self, record: AuditRecord) -> None: ...

    async def read(
        self, sql: str, params: tuple[SqlValue, ...] = ()
    ) -> list[tuple[SqlValue, ...]]: ...


class _Refused(Exception):  # internal: never escapes this module
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _request_id(command: dict[str, Any]) -> str:
    request_id = command.get("request_id")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise RejectedPayload("bad_shape", "'request_id' must be 1-64 of [A-Za-z0-9_.:-]")
    return request_id


def _validation_text(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "command"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class LiveCover:
    """The live overrides in force and the settings they make; ``handle`` is the bus's
    ``commands`` handler. ``on_change`` is called with the merged settings after every change."""

    def __init__(
        self,
        settings: Settings,
        trail: AuditTrail,
        store: CoverStore,
        lives: list[LiveOverride] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = settings
        self._trail = trail
        self._store = store
        self._lives: list[LiveOverride] = list(lives or [])
        self._clock = clock
        self.on_change: Callable[[Settings], None] | None = None
        self._settings = self._merge()

    @classmethod
    async def load(
        cls,
        settings: Settings,
        trail: AuditTrail,
        store: CoverStore,
        clock: Callable[[], float] = time.time,
    ) -> LiveCover:
        """The overrides in force as SQLite has them (none, logged, if it cannot be read)."""
        try:
            rows = await store.read(LIVE_IN_FORCE, (clock(),))
        except sqlite3.Error as error:
            log.error("live_overrides_unreadable", error=str(error))
            rows = []
        lives = [stored_cover(row).live for row in rows]
        cover = cls(settings, trail, store, lives, clock)
        log.info("live_overrides_loaded", count=len(lives), applied=len(cover.applied))
        return cover

    def __repr__(self) -> str:
        return f"<LiveCover in_force={len(self._lives)} applied={len(self.applied)}>"

    @property
    def settings(self) -> Settings:
        """The running settings: the files' rotas with the live overrides that fit them."""
        return self._settings

    @property
    def in_force(self) -> tuple[LiveOverride, ...]:
        return tuple(self._lives)

    @property
    def applied(self) -> tuple[LiveOverride, ...]:
        return self._applied

    def rebase(self, fresh: Settings) -> None:
        """New files (a SIGHUP reload): re-check the live overrides against them and apply.
        One that no longer fits is left out and the audit says so (it stays in force in SQLite,
        so a later reload it fits brings it back)."""
        before = {live.override_id for live in self._applied}
        self._base = fresh
        self._changed()
        now_applied = {live.override_id for live in self._applied}
        for live, why in self._left_out:
            if live.override_id in before and live.override_id not in now_applied:
                self._trail.note(
                    "override_left_out",
                    "SIGHUP",
                    subject=live.override_id,
                    ok=False,
                    detail={"reason": why},
                )

    # -- merging ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=self._base.rotas.zone)

    def _merge(self) -> Settings:
        rotas = self._base.rotas
        good, bad = usable(rotas, self._lives, self._now())
        for live, why in bad:
            log.warning("live_override_not_applied", override_id=live.override_id, why=why)
        self._applied = tuple(good)
        self._left_out = tuple(bad)
        return dataclasses.replace(self._base, rotas=with_live_overrides(rotas, good))

    def _changed(self) -> None:
        self._settings = self._merge()
        if self.on_change is not None:
            self.on_change(self._settings)

    # -- commands -----------------------------------------------------------------------------

    async def handle(self, topic: str, payload: bytes) -> Answer:
        """Carry out one command; the answer for the response topic."""
        _, command = decode_json_object(payload, MAX_COMMAND_BYTES)
        if command is None:
            raise RejectedPayload("bad_shape", "a command is a JSON object")
        request_id = _request_id(command)
        action = command.get("action")
        by_given = command.get("by")
        try:
            by = parse_by(by_given)
            if action == "add":
                return await self._add(topic, request_id, command, by)
            if action == "remove":
                return await self._remove(topic, request_id, command, by)
            raise _Refused("'action' must be 'add' or 'remove'")
        except (_Refused, RejectedPayload) as refused:
            reason = refused.reason if isinstance(refused, _Refused) else str(refused)
            actor = by_given[:MAX_BY_CHARS] if isinstance(by_given, str) else None
            kind = f"override_{action}" if action in {"add", "remove"} else "override_command"
            self._trail.note(
                kind,
                topic,
                actor=actor,
                subject=request_id,
                ok=False,
                detail={"request_id": request_id, "reason": reason, "command": command},
            )
            log.warning("live_override_refused", request_id=request_id, reason=reason)
            return {"request_id": request_id, "action": action, "ok": False, "reason": reason}

    def _parse_add(self, request_id: str, command: dict[str, Any], by: str | None) -> LiveOverride:
        unknown = sorted(set(command) - _ADD_FIELDS)
        if unknown:
            raise _Refused(f"unknown field(s): {', '.join(unknown)}")
        specialty = command.get("specialty")
        if not isinstance(specialty, str):
            raise _Refused("'specialty' is required")
        try:
            override = Override.model_validate(
                {
                    k: command[k]
                    for k in ("from", "to", "member", "replaces", "reason")
                    if k in command
                }
            )
        except ValidationError as error:
            raise _Refused(_validation_text(error)) from None
        team_id = command.get("team")
        if team_id is not None and not isinstance(team_id, str):
            raise _Refused("'team' must be a team id")
        rotas = self._base.rotas
        try:
            team = choose_team(rotas, specialty, override.member, team_id)
            live = LiveOverride(request_id, team.id, specialty, override, by)
            check_live(rotas, live, self._now())
        except CoverRejectedError as error:
            raise _Refused(str(error)) from None
        return live

    async def _add(
        self, topic: str, request_id: str, command: dict[str, Any], by: str | None
    ) -> Answer:
        live = self._parse_add(request_id, command, by)
        known = await self._stored(request_id)
        if known is not None:
            same = known.live == live and not known.removed
            if not same:
                raise _Refused(f"request id {request_id} was used already for another command")
            return self._answer(live, "add", duplicate=True)
        zone, now = self._base.rotas.zone, self._now()
        self._lives = [x for x in self._lives if instant(x.override.to, zone) > now]
        if len(self._lives) >= MAX_LIVE_OVERRIDES:
            raise _Refused(f"{MAX_LIVE_OVERRIDES} live overrides in force already")
        to_at = instant(live.override.to, self._base.rotas.zone).timestamp()
        # Straight to the store: if it cannot take the override, the command fails unapplied.
        await self._store.note(cover_added(live, self._trail.now(), to_at, topic))
        self._lives.append(live)
        self._changed()
        log.info("live_override_added", override_id=live.override_id, team=live.team_id)
        return self._answer(live, "add")

    async def _remove(
        self, topic: str, request_id: str, command: dict[str, Any], by: str | None
    ) -> Answer:
        unknown = sorted(set(command) - _REMOVE_FIELDS)
        if unknown:
            raise _Refused(f"unknown field(s): {', '.join(unknown)}")
        override_id = command.get("override_id")
        if not isinstance(override_id, str) or not _REQUEST_ID.match(override_id):
            raise _Refused("'override_id' must be the id of a live override")
        live = next((x for x in self._lives if x.override_id == override_id), None)
        if live is None:
            known = await self._stored(override_id)
            if known is not None and known.removed and known.removed_request == request_id:
                return {"request_id": request_id, "action": "remove", "ok": True,
                        "override_id": override_id, "duplicate": True}  # fmt: skip
            raise _Refused(f"no live override {override_id!r} is in force")
        record = CoverRemoved(self._trail.now(), override_id, by, request_id, topic)
        await self._store.note(record)
        self._lives = [x for x in self._lives if x.override_id != override_id]
        self._changed()
        log.info("live_override_removed", override_id=override_id)
        return {
            "request_id": request_id,
            "action": "remove",
            "ok": True,
            "override_id": override_id,
        }

    async def _stored(self, override_id: str) -> Any:
        sql = f"SELECT {LIVE_COLUMNS} FROM live_overrides WHERE override_id = ?"
        rows = await self._store.read(sql, (override_id,))
        return stored_cover(rows[0]) if rows else None

    def _answer(self, live: LiveOverride, action: str, *, duplicate: bool = False) -> Answer:
        answer: Answer = {
            "request_id": live.override_id,
            "action": action,
            "ok": True,
            "override_id": live.override_id,
            "team": live.team_id,
            "member": live.override.member,
            "from": live.override.from_.isoformat(),
            "to": live.override.to.isoformat(),
        }
        if duplicate:
            answer["duplicate"] = True
        return answer
