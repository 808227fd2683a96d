"""Live cover reaches the hunt: the engine (with a fake of our SIP port, the shipped rotas and a
real SQLite file) rings the covering consultant first as soon as the override is taken, keeps
doing so across a SIGHUP reload, and stops once it is removed; reloads are audited."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from callrouter.adapters.store_sqlite import CallStore
from callrouter.app import build_env, reload_settings
from callrouter.audit import AuditTrail
from callrouter.core.learning import MemberStats
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.live_cover import LiveCover
from callrouter.settings.loader import Settings, load_settings
from callrouter.sip import protocol as p
from tests.engine.fake_clock import FakeClock
from tests.engine.test_engine import FakeSip, Prompts, Recorder, incoming, settle
from tests.engine.test_reload import copy_tree
from tests.rota.helpers import london

NOW = london("2026-12-07 10:00").timestamp()  # Monday, Barnet's weekday layer on
BARNET = "02080000001"
COVER = "m-card-enfield-2"
TOPIC = "cr/commands/override"
ADD = {
    "action": "add",
    "request_id": "r-7",
    "member": COVER,
    "specialty": "cardiology",
    "team": "barnet-cardiology",
    "from": "2026-12-07 09:00",
    "to": "2026-12-07 17:00",
    "by": "rota-app",
}


async def first_rung(sip: FakeSip, leg: str) -> str:
    """Call Barnet, skip the NHS number, choose cardiology: the member the hunt rings first."""
    before = len(sip.of(p.Dial))
    await sip.events.put(incoming(leg, to=BARNET))
    await settle()
    for digit in "*1":
        await sip.events.put(p.Digit(leg, digit, "rfc4733"))
        await settle()
    dials = sip.of(p.Dial)[before:]
    assert dials, f"no leg dialled for {leg}"
    dial = dials[0]
    assert isinstance(dial, p.Dial)
    uri = dial.uri
    await sip.events.put(p.HungUp(leg, 0))
    await settle()
    return uri.removeprefix("sip:").split("@", 1)[0]


class Prepared:
    async def __call__(self, fresh: Settings) -> None:
        pass


class TestHunt:
    """Who the engine rings first follows the live overrides, at once."""

    def test_override_changes_who_is_rung_first_until_removed(self, tmp_path: Path) -> None:
        config = copy_tree(tmp_path)
        settings = load_settings(config)
        db = tmp_path / "records.sqlite3"

        async def main() -> list[str]:
            firsts: list[str] = []
            async with await CallStore.open(db) as store:
                trail = AuditTrail(store, lambda: NOW)
                cover = await LiveCover.load(settings, trail, store, lambda: NOW)
                presence = EnginePresence()
                sip = FakeSip()
                engine = Engine(
                    sip=sip,
                    dialplans=cover.settings,
                    env=build_env(cover.settings, presence, MemberStats()),
                    presence=presence,
                    prompts=Prompts(),
                    sink=Recorder(),
                    limits=EngineLimits(max_concurrent_calls=5, trunk_allows=lambda _h: True),
                    clock=FakeClock(wall=NOW),
                )
                cover.on_change = lambda merged: engine.reload(
                    merged, build_env(merged, engine.presence, engine.env.stats)
                )
                serving = asyncio.create_task(engine.serve())
                firsts.append(await first_rung(sip, "in-1"))
                answer = await cover.handle(TOPIC, json.dumps(ADD).encode())
                assert answer["ok"] is True, answer
                firsts.append(await first_rung(sip, "in-2"))
                # SIGHUP, as app.run does it: the reload, then the live overrides on top.
                errors: list[str] = []
                fresh = await reload_settings(engine, config, Prepared(), errors.append)
                assert fresh is not None
                trail.config_reload(str(config), errors[0] if errors else None)
                cover.rebase(fresh)
                firsts.append(await first_rung(sip, "in-3"))
                remove = {"action": "remove", "request_id": "r-8", "override_id": "r-7"}
                answer = await cover.handle(TOPIC, json.dumps(remove).encode())
                assert answer["ok"] is True, answer
                firsts.append(await first_rung(sip, "in-4"))
                # A bad tree: refused, audited with its error; the engine keeps what runs.
                barnet = tmp_path / "dialplans" / "barnet.yaml"
                barnet.write_text(barnet.read_text() + "\nmystery_key: 1\n", encoding="utf-8")
                errors.clear()
                assert await reload_settings(engine, config, Prepared(), errors.append) is None
                trail.config_reload(str(config), errors[0] if errors else None)
                await trail.drain()
                await sip.events.put(None)
                await asyncio.wait_for(serving, 5)
            return firsts

        firsts = asyncio.run(main())
        rota_first = firsts[0]
        assert rota_first.startswith("m-card-barnet-")
        assert firsts == [rota_first, COVER, COVER, rota_first]
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute(
                "SELECT kind, source, outcome, detail FROM audit ORDER BY seq"
            ).fetchall()
        assert [(kind, outcome) for kind, _, outcome, _ in rows] == [
            ("override_add", "ok"),
            ("config_reload", "ok"),
            ("override_remove", "ok"),
            ("config_reload", "rejected"),
        ]
        refused = json.loads(rows[-1][3])
        assert rows[-1][1] == "SIGHUP"
        assert "mystery_key" in refused["error"]
        assert "barnet.yaml" in refused["error"]
