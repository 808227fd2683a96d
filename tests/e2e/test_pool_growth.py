"""Workers on demand behind the edge (``sip.max_workers``), as ``callrouter run`` does it: one
worker to start with, a spare started when a call takes a slot, the edge sends the next call to
the spare, and the spare stops again once idle. Real kamailio, sipp and workers on loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .running_engine import RunningEngine
from .test_edge import contact_port, edge_lines, needs_kamailio, wait_connected
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(120)]

MOST = 3
IDLE_SECONDS = 5  # the least spare_idle_seconds allows


def on_demand(config: dict[str, Any]) -> None:
    config["sip"].update(workers=1, max_workers=MOST, spare_idle_seconds=IDLE_SECONDS)


def wait_event(
    engine: RunningEngine, name: str, count: int = 1, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The engine's ``name`` log events, once there are ``count`` of them (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in engine.log_events() if e.get("event") == name]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {count} x {name}:\n" + engine.log()
        time.sleep(0.1)


def dispatcher_flags(engine: RunningEngine) -> dict[int, int]:
    """Port -> flags in the edge's generated dispatcher list."""
    path = Path(engine.config).parent / "var" / "edge" / "dispatcher.list"
    found = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            _, uri, flags, *_ = line.split()
            found[int(uri.rsplit(":", 1)[1])] = int(flags)
    return found


class TestSpareThroughTheEdge:
    """A call makes a spare start; the edge gives it the next call; idle, it stops."""

    def test_grows_under_load_serves_then_retires(self, e2e: E2E) -> None:
        consultants = [member(f"c-{i}") for i in range(2)]
        engine = e2e.start(
            TreeSpec(members=tuple(consultants), workers=MOST, edge=True), config=on_demand
        )
        first_port = engine.ports.sip
        spare_port = first_port + 1
        assert engine.health()["worker_slots_free"] == 4, engine.log()  # one worker running
        flags = dispatcher_flags(engine)
        assert flags == {first_port: 0, spare_port: 1, first_port + 2: 1}  # standing by: off
        for i, c in enumerate(consultants):
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=2, ring_ms=200, key_ms=200
            )

        first = e2e.gp("first", "uac_edge_menu_bye.xml", NUMBER, talk_ms=8000)
        wait_connected(engine, 1)
        (grown,) = wait_event(engine, "worker_grown")
        assert (grown["worker"], grown["port"]) == ("w1", spare_port)
        assert edge_lines(engine, f"port={spare_port} state=ap"), engine.log()
        second = e2e.gp("second", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1000)
        assert second.wait() == 0, second.explain() + engine.log()
        assert contact_port(second) == spare_port  # the edge gave the new call to the spare
        assert first.wait() == 0, first.explain() + engine.log()
        assert contact_port(first) == first_port

        (retired,) = wait_event(engine, "worker_retired", timeout=IDLE_SECONDS + 15)
        assert retired["worker"] == "w1"
        assert edge_lines(engine, f"port={spare_port} state=d"), engine.log()
        assert not [e for e in engine.log_events() if e.get("event") == "worker_died"]
        assert len(wait_event(engine, "worker_grown")) == 1  # never a third while one sufficed

        third = e2e.gp("third", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1000)
        assert third.wait() == 0, third.explain() + engine.log()
        assert contact_port(third) == first_port  # not to the retired one
        engine.wait_idle()
        silent = [
            e for e in engine.log_events() if "edge_worker_silent" in str(e.get("message", ""))
        ]
        assert not silent, silent  # no INVITE was ever sent to a worker that was not there
        rows = records.calls(engine.db)
        assert [(r["end_reason"], r["outcome"]) for r in rows] == [("completed", "connected")] * 3
