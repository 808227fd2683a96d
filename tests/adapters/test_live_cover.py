"""Live cover and availability over a real mosquitto, into real SQLite files: an override added
on the command topic is answered, audited, shown by ``callrouter oncall``, survives a restart and
can be removed; a bad command is answered with its reason and changes nothing; an availability
mark with ``until`` expires by the injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from callrouter.adapters.mqtt import MqttBus
from callrouter.adapters.store_sqlite import CallStore
from callrouter.audit import AuditTrail
from callrouter.cli import build_parser
from callrouter.cli import main as cli_main
from callrouter.cli_oncall import run_oncall
from callrouter.live_cover import MAX_COMMAND_BYTES, LiveCover
from callrouter.settings.loader import Settings, load_settings
from tests.adapters.mosquitto_broker import MosquittoBroker, running_broker
from tests.adapters.test_mqtt import PREFIX, make_bus, next_message, running, wait_until
from tests.rota.helpers import london

REPO = Path(__file__).resolve().parents[2]
NOW = london("2026-12-07 10:00").timestamp()  # a Monday: Barnet cardiology's weekday layer
AT = "2026-12-07T10:00"
COVER = "m-card-enfield-2"  # an Enfield consultant covering Barnet for the day
COMMANDS = f"{PREFIX}/commands/override"
RESPONSES = f"{COMMANDS}/response"
ADD = {
    "action": "add",
    "request_id": "r-1",
    "member": COVER,
    "specialty": "cardiology",
    "team": "barnet-cardiology",
    "from": "2026-12-07 09:00",
    "to": "2026-12-07 17:00",
    "reason": "sickness",
    "by": "rota-app:jsmith",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the shipped tree (the real rotas: 216 members)."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "dialplans", tmp_path / "dialplans")
    shutil.copytree(REPO / "rotas", tmp_path / "rotas")
    return tmp_path / "config.yaml"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Node:
    """What ``callrouter run`` wires for live cover: store, audit trail, cover, bus."""

    store: CallStore
    trail: AuditTrail
    cover: LiveCover
    bus: MqttBus


@contextlib.asynccontextmanager
async def node(db: Path, settings: Settings, port: int, clock: Clock) -> AsyncIterator[Node]:
    async with await CallStore.open(db) as store:
        trail = AuditTrail(store, clock)
        cover = await LiveCover.load(settings, trail, store, clock)
        bus = make_bus(port, clock=clock, on_availability=trail.availability, commands=cover.handle)
        async with running(bus):
            # A retained mark arrives only once both subscriptions are in place.
            await wait_until(lambda: "m-ready" in bus.availability())
            yield Node(store, trail, cover, bus)
            await trail.drain()


async def seed_ready(port: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(f"{PREFIX}/availability/m-ready", b"available", qos=1, retain=True)


async def command(port: int, body: dict[str, Any] | bytes) -> dict[str, Any]:
    """Publish a command and return its answer from the response topic."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(RESPONSES, qos=1)
        await client.publish(COMMANDS, payload, qos=1)
        message = await next_message(client)
    assert isinstance(message.payload, bytes)
    answer: dict[str, Any] = json.loads(message.payload)
    return answer


def oncall(config: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    argv = ["oncall", "--config", str(config), "--specialty", "cardiology", "--area", "barnet"]
    capsys.readouterr()  # what the engine side logged (structlog prints to stdout by default)
    assert cli_main([*argv, "--at", AT, "--json", "--db", str(db)]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def first_local(report: dict[str, Any]) -> str:
    member: str = report["tiers"][0]["members"][0]["member_id"]
    return member


def audit(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert cli_main(["audit", "export", "--db", str(db), "--format", "json", *extra]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


class TestLiveOverride:
    """Add, see, restart, remove: the whole life of one live override."""

    def test_added_shown_audited_survives_restart_and_removed(
        self,
        tmp_path: Path,
        broker: MosquittoBroker,
        config: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)
        clock = Clock(NOW)
        before = first_local(oncall(config, db, capsys))
        assert before != COVER

        async def add_then_restart_then_remove() -> tuple[dict[str, Any], ...]:
            await seed_ready(broker.port)
            async with node(db, settings, broker.port, clock) as first:
                added = await command(broker.port, ADD)
                plan = first.cover.settings
                in_force = first.cover.in_force
            assert [x.override_id for x in in_force] == ["r-1"]
            assert plan.rotas.teams["barnet-cardiology"].overrides[-1].member == COVER
            async with node(db, settings, broker.port, clock) as second:
                restored = [x.override_id for x in second.cover.applied]
                assert restored == ["r-1"]
                removed = await command(
                    broker.port,
                    {"action": "remove", "request_id": "r-2", "override_id": "r-1", "by": "ops"},
                )
                assert second.cover.in_force == ()
            return added, removed

        added, removed = asyncio.run(add_then_restart_then_remove())
        assert added["ok"] is True
        assert added["request_id"] == "r-1"
        assert added["team"] == "barnet-cardiology"
        assert added["node"] == "node-a"
        assert removed == {
            "request_id": "r-2",
            "action": "remove",
            "ok": True,
            "override_id": "r-1",
            "node": "node-a",
        }
        assert first_local(oncall(config, db, capsys)) == before  # removed: back to the rota
        [(removed_by, removed_request)] = table(
            db, "SELECT removed_by, removed_request FROM live_overrides"
        )
        assert (removed_by, removed_request) == ("ops", "r-2")
        rows = audit(db, capsys)
        kinds = [(r["kind"], r["outcome"], r["subject"], r["actor"]) for r in rows]
        assert ("override_add", "ok", "r-1", "rota-app:jsmith") in kinds
        assert ("override_remove", "ok", "r-1", "ops") in kinds
        add_row = next(r for r in rows if r["kind"] == "override_add")
        assert add_row["source"] == COMMANDS
        assert add_row["detail"]["member"] == COVER
        assert add_row["detail"]["team"] == "barnet-cardiology"

    def test_oncall_shows_the_override_while_in_force(
        self,
        tmp_path: Path,
        broker: MosquittoBroker,
        config: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)

        async def add() -> dict[str, Any]:
            await seed_ready(broker.port)
            async with node(db, settings, broker.port, Clock(NOW)):
                return await command(broker.port, ADD)

        assert asyncio.run(add())["ok"] is True
        report = oncall(config, db, capsys)
        assert first_local(report) == COVER
        why = report["tiers"][0]["members"][0]["why"]
        assert why == "override 2026-12-07 added: live r-1 by rota-app:jsmith: sickness"
        assert [live["override_id"] for live in report["live_overrides"]] == ["r-1"]
        argv = ["oncall", "--config", str(config), "--specialty", "cardiology", "--area", "barnet"]
        assert cli_main([*argv, "--at", AT, "--db", str(db)]) == 0
        text = capsys.readouterr().out
        assert "live override r-1 by rota-app:jsmith" in text
        # After its end it no longer shows.
        later = [*argv, "--at", "2026-12-07T17:00", "--json", "--db", str(db)]
        assert cli_main(later) == 0
        assert json.loads(capsys.readouterr().out)["live_overrides"] == []

    def test_a_command_delivered_twice_is_applied_once(
        self, tmp_path: Path, broker: MosquittoBroker, config: Path
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)

        async def twice() -> tuple[dict[str, Any], dict[str, Any], int]:
            await seed_ready(broker.port)
            async with node(db, settings, broker.port, Clock(NOW)) as live:
                one = await command(broker.port, ADD)
                two = await command(broker.port, ADD)
                return one, two, len(live.cover.in_force)

        one, two, count = asyncio.run(twice())
        assert one["ok"] is True
        assert "duplicate" not in one
        assert two["ok"] is True
        assert two["duplicate"] is True
        assert count == 1
        assert table(db, "SELECT COUNT(*) FROM live_overrides") == [(1,)]


BAD_COMMANDS: list[tuple[dict[str, Any] | bytes, str, str | None]] = [
    ({**ADD, "member": "m-nobody"}, "no member has id 'm-nobody'", "r-1"),
    ({**ADD, "member": "m-derm-barnet-1"}, "lists specialties dermatology, not cardiology", "r-1"),
    ({**ADD, "team": "barnet-dermatology"}, "answers dermatology, not cardiology", "r-1"),
    ({**ADD, "team": "no-such-team"}, "no team has id 'no-such-team'", "r-1"),
    ({**ADD, "to": "2026-12-07 08:00"}, "'to' must be after 'from'", "r-1"),
    ({**ADD, "to": "2026-12-07T17:00+00:00"}, "without an offset", "r-1"),
    ({**ADD, "from": "2027-03-28 01:30", "to": "2027-03-28 09:00"}, "clocks go forward", "r-1"),
    ({**ADD, "to": "2026-12-07 09:30"}, "has already passed", "r-1"),
    ({**ADD, "colour": "red"}, "unknown field(s): colour", "r-1"),
    ({**ADD, "action": "swap"}, "'action' must be 'add' or 'remove'", "r-1"),
    ({"action": "remove", "request_id": "r-9", "override_id": "r-404"}, "no live override", "r-9"),
    ({**ADD, "request_id": "has space"}, "request_id", None),
    (b"not json at all", "bad_shape", None),
    (b'{"action": ' + b"[" * 500, "bad_json", None),
    (b"{" + b" " * MAX_COMMAND_BYTES + b"}", "too_large", None),
]


class TestBadCommands:
    """Every refusal is answered with its reason and request id, and changes nothing."""

    def test_each_is_answered_and_nothing_changes(
        self,
        tmp_path: Path,
        broker: MosquittoBroker,
        config: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)

        async def send_all() -> tuple[list[dict[str, Any]], dict[str, int]]:
            await seed_ready(broker.port)
            async with node(db, settings, broker.port, Clock(NOW)) as live:
                answers = [await command(broker.port, body) for body, _, _ in BAD_COMMANDS]
                assert live.cover.in_force == ()
                assert live.cover.settings.rotas == settings.rotas
                return answers, dict(live.bus.rejected)

        answers, rejected = asyncio.run(send_all())
        for answer, (_, words, request_id) in zip(answers, BAD_COMMANDS, strict=True):
            assert answer["ok"] is False, answer
            assert words in answer["reason"], answer
            assert answer["request_id"] == request_id
        assert rejected["refused_command"] == 11
        assert rejected["bad_shape"] == 2
        assert rejected["too_large"] == 1
        assert table(db, "SELECT COUNT(*) FROM live_overrides") == [(0,)]
        assert first_local(oncall(config, db, capsys)) != COVER
        refusals = [r for r in audit(db, capsys) if r["outcome"] == "rejected"]
        assert len(refusals) == 11  # the ones with a request id; the rest never were commands
        assert refusals[0]["detail"]["reason"] == "no member has id 'm-nobody'"
        assert refusals[0]["actor"] == "rota-app:jsmith"


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat()


class TestAvailabilityUntil:
    """A mark with ``until`` expires by the bus's clock; changes are audited, repeats are not."""

    def test_mark_expires_and_is_audited_once(
        self,
        tmp_path: Path,
        broker: MosquittoBroker,
        config: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)
        clock = Clock(NOW)
        topic = f"{PREFIX}/availability/m-card-barnet-1"
        mark = json.dumps({"available": False, "until": iso(NOW + 600), "by": "dr-patel"})

        async def scenario() -> list[bool]:
            await seed_ready(broker.port)
            seen = []
            async with node(db, settings, broker.port, clock) as live:
                bus = live.bus
                async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                    await client.publish(topic, mark.encode(), qos=1, retain=True)
                    await wait_until(lambda: not bus.is_available("m-card-barnet-1"))
                    seen.append(bus.is_available("m-card-barnet-1"))
                    clock.now = NOW + 599
                    seen.append(bus.is_available("m-card-barnet-1"))
                    # The same mark again (as a reconnect redelivers it): no change, no audit.
                    await client.publish(topic, mark.encode(), qos=1, retain=True)
                    naive = b'{"available": false, "until": "2026-12-07T11:00:00"}'
                    await client.publish(topic, naive, qos=1)
                    await wait_until(lambda: bus.rejected.get("bad_shape", 0) == 1)
                    clock.now = NOW + 600
                    seen.append(bus.is_available("m-card-barnet-1"))
                    seen.append("m-card-barnet-1" in bus.availability())
                    await client.publish(topic, b"", qos=1, retain=True)  # tidy the broker
            return seen

        assert asyncio.run(scenario()) == [False, False, True, False]
        rows = [r for r in audit(db, capsys) if r["subject"] == "m-card-barnet-1"]
        assert len(rows) == 1
        [row] = rows
        assert row["kind"] == "availability"
        assert row["source"] == topic
        assert row["actor"] == "dr-patel"
        assert row["detail"] == {"available": False, "until": NOW + 600}


class TestUnreadableDatabase:
    """A records file that cannot be read is said out loud, never taken as "no overrides"."""

    def test_oncall_warns_and_still_answers(
        self, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "records.sqlite3"
        db.write_bytes(b"this is not a database" * 100)
        report = oncall(config, db, capsys)  # exits 0 with the files' rota
        assert report["live_overrides"] == []
        assert first_local(report) != COVER

    def test_warning_text(self, tmp_path: Path, config: Path) -> None:
        db = tmp_path / "records.sqlite3"
        db.write_bytes(b"this is not a database" * 100)
        err = io.StringIO()
        argv = ["oncall", "--config", str(config), "--specialty", "cardiology", "--area", "barnet"]
        args = build_parser().parse_args([*argv, "--at", AT, "--db", str(db)])
        assert run_oncall(args, stdout=io.StringIO(), stderr=err) == 0
        assert "WARNING: live overrides not read from" in err.getvalue()
        assert "not a database" in err.getvalue()

    def test_audit_export_fails_plainly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "records.sqlite3"
        db.write_bytes(b"this is not a database" * 100)
        assert cli_main(["audit", "export", "--db", str(db)]) == 1
        assert "not a database" in capsys.readouterr().err


class TestReloadLeavesOut:
    """A reload that drops the covering member leaves the override out, and audits that."""

    def test_left_out_and_audited(
        self, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        db = tmp_path / "records.sqlite3"
        settings = load_settings(config)
        members = {k: v for k, v in settings.rotas.members.items() if k != COVER}
        without = dataclasses.replace(
            settings, rotas=settings.rotas.model_copy(update={"members": members})
        )

        async def scenario() -> tuple[int, int, int]:
            async with await CallStore.open(db) as store:
                trail = AuditTrail(store, Clock(NOW))
                cover = await LiveCover.load(settings, trail, store, Clock(NOW))
                answer = await cover.handle(COMMANDS, json.dumps(ADD).encode())
                assert answer["ok"] is True
                applied = len(cover.applied)
                cover.rebase(without)
                left = len(cover.applied)
                cover.rebase(settings)  # the member is back: so is the override
                await trail.drain()
                return applied, left, len(cover.applied)

        assert asyncio.run(scenario()) == (1, 0, 1)
        rows = [r for r in audit(db, capsys) if r["kind"] == "override_left_out"]
        assert [(r["subject"], r["source"], r["outcome"]) for r in rows] == [
            ("r-1", "SIGHUP", "rejected")
        ]
        assert rows[0]["detail"] == {"reason": f"no member has id {COVER!r}"}
