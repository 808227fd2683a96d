"""Live cover through the real engine process: an override published on the MQTT command topic
makes ``callrouter oncall`` and the real hunt (sipp GP and consultants) ring the cover first,
survives an engine restart, is removed the same way; the override, its removal and a SIGHUP
reload are in ``callrouter audit export``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import pytest

from callrouter.cli import main as cli_main
from tests.adapters.mosquitto_broker import MosquittoBroker, running_broker

from . import records
from .conftest import E2E, member, needs_tools
from .running_engine import RunningEngine
from .tree import MQTT_PREFIX, NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

COMMANDS = f"{MQTT_PREFIX}/commands/override"
WAIT = 15.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(tmp_path) as server:
        yield server


def command(port: int, body: dict[str, Any]) -> dict[str, Any]:
    async def send() -> dict[str, Any]:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe(f"{COMMANDS}/response", qos=1)
            await client.publish(COMMANDS, json.dumps(body).encode(), qos=1)
            async with asyncio.timeout(WAIT):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    answer: dict[str, Any] = json.loads(message.payload)
                    return answer
        raise AssertionError("no answer")

    return asyncio.run(send())


def mark_ready(port: int) -> None:
    """A retained mark: once the engine logs it, its command subscription is in place too."""

    async def send() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.publish(f"{MQTT_PREFIX}/availability/m-ready", b"available", retain=True)

    asyncio.run(send())


def bus_ready(engine: RunningEngine, starts: int = 1) -> None:
    """Until the engine's ``starts``-th run has the retained mark (the log file is appended)."""
    deadline = time.monotonic() + WAIT
    while True:
        seen = [
            e
            for e in engine.log_events()
            if e.get("event") == "bus_availability" and e.get("member_id") == "m-ready"
        ]
        if len(seen) >= starts:
            return
        assert time.monotonic() < deadline, engine.log()
        time.sleep(0.05)


def oncall_first(engine: RunningEngine, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    argv = ["oncall", "--config", str(engine.config), "--specialty", "cardiology", "--json"]
    assert cli_main([*argv, "--db", str(engine.db)]) == 0
    report = json.loads(capsys.readouterr().out)
    first: str = report["tiers"][0]["members"][0]["member_id"]
    return first


def audit_rows(engine: RunningEngine, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert cli_main(["audit", "export", "--db", str(engine.db), "--format", "json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def one_call(e2e: E2E, engine: RunningEngine, name: str, port: int) -> None:
    """A GP call that the consultant on ``port`` answers and accepts."""
    peer = e2e.peers.consultant(name, "uas_accept.xml", port=port, ring_ms=300, key_ms=300)
    gp = e2e.gp(f"gp-{name}", "uac_menu_bye.xml", NUMBER, talk_ms=1500)
    assert gp.wait() == 0, gp.explain() + engine.log()
    assert peer.wait() == 0, peer.explain() + engine.log()
    engine.wait_idle()


class TestLiveCoverEndToEnd:
    """One override's life in a running engine, as the GP, the rota app and the auditor see it."""

    def test_override_rings_first_survives_restart_and_is_removed(
        self, e2e: E2E, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
    ) -> None:
        usual, cover = member("c-usual"), member("c-cover")
        mark_ready(broker.port)
        engine = e2e.start(TreeSpec(members=(usual, cover), mqtt_port=broker.port, live_cover=True))
        bus_ready(engine)
        assert oncall_first(engine, capsys) == "c-usual"

        now = datetime.now(ZoneInfo("Europe/London")).replace(tzinfo=None, second=0, microsecond=0)
        added = command(
            broker.port,
            {
                "action": "add",
                "request_id": "e2e-1",
                "member": "c-cover",
                "specialty": "cardiology",
                "team": "test-local-cardiology",
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": (now + timedelta(hours=2)).isoformat(),
                "by": "rota-app:e2e",
            },
        )
        assert added["ok"] is True, added
        assert added["node"] == "e2e-node"
        assert oncall_first(engine, capsys) == "c-cover"

        one_call(e2e, engine, "cover-1", cover.port)
        [call] = records.calls(engine.db)
        legs = records.legs(engine.db, call["call_id"])
        assert [leg["member_id"] for leg in legs] == ["c-cover"]  # rung first, and accepted
        assert call["member_id"] == "c-cover"

        # Restart: the override is read back from SQLite and still rung first.
        assert engine.stop() == 0, engine.log()
        engine.start()
        loaded = [e for e in engine.log_events() if e.get("event") == "live_overrides_loaded"]
        assert (loaded[-1]["count"], loaded[-1]["applied"]) == (1, 1)
        bus_ready(engine, starts=2)  # the bus is back, commands heard again
        one_call(e2e, engine, "cover-2", cover.port)
        second = records.calls(engine.db)[-1]
        assert [leg["member_id"] for leg in records.legs(engine.db, second["call_id"])] == [
            "c-cover"
        ]

        # SIGHUP: reloaded (audited), the live override still applies.
        assert engine.process is not None
        reloads = sum(1 for e in engine.log_events() if e.get("event") == "reloaded")
        os.kill(engine.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while sum(1 for e in engine.log_events() if e.get("event") == "reloaded") == reloads:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.05)

        # Removed over the bus: the usual consultant is rung first again.
        removed = command(
            broker.port, {"action": "remove", "request_id": "e2e-2", "override_id": "e2e-1"}
        )
        assert removed["ok"] is True, removed
        assert oncall_first(engine, capsys) == "c-usual"
        one_call(e2e, engine, "usual", usual.port)
        third = records.calls(engine.db)[-1]
        assert [leg["member_id"] for leg in records.legs(engine.db, third["call_id"])] == [
            "c-usual"
        ]
        assert engine.stop() == 0, engine.log()

        rows = audit_rows(engine, capsys)
        summary = [(r["kind"], r["source"], r["outcome"]) for r in rows]
        assert ("override_add", COMMANDS, "ok") in summary
        assert ("config_reload", "SIGHUP", "ok") in summary
        assert ("override_remove", COMMANDS, "ok") in summary
        adds = [r for r in rows if r["kind"] == "override_add"]
        assert [(r["subject"], r["actor"]) for r in adds] == [("e2e-1", "rota-app:e2e")]
