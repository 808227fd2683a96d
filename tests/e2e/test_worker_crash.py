"""``kill -9`` of one worker mid-call, behind the edge (issue 8, "Must show"): both ends of its
call hear it is over (the GP a BYE from the edge, the consultant a BYE from the engine's reaper);
the call is recorded as lost with its worker; the call on the other worker goes on; a new call
made at once connects; the worker comes back. Real kamailio, sipp and workers on loopback."""

from __future__ import annotations

import os
import signal
import time

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .peers import Peer
from .running_engine import RunningEngine
from .test_edge import contact_port, edge_lines, needs_kamailio, wait_connected, worker_pid
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(120)]


def wait_received(peer: Peer, method: str, count: int = 1, timeout: float = 10.0) -> None:
    """Until ``peer``'s trace shows ``count`` ``method`` requests received (bounded)."""
    deadline = time.monotonic() + timeout
    while len(peer.received(method)) < count:
        assert time.monotonic() < deadline, f"{peer.name} got no {method}:\n" + peer.explain()
        time.sleep(0.1)


def log_events(engine: RunningEngine, name: str) -> list[dict[str, object]]:
    return [e for e in engine.log_events() if e.get("event") == name]


class TestWorkerKilledMidCall:
    """Every surviving peer of the dead worker hears the end; the rest of the service goes on."""

    def test_both_ends_told_others_go_on_worker_returns(self, e2e: E2E) -> None:
        consultants = [member(f"c-{i}") for i in range(2)]
        engine = e2e.start(TreeSpec(members=tuple(consultants), workers=2, edge=True))
        c0, c1 = (
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=3, ring_ms=200, key_ms=200
            )
            for i, c in enumerate(consultants)
        )
        doomed = e2e.gp("doomed", "uac_edge_menu_wait_bye.xml", NUMBER, talk_ms=0)
        wait_connected(engine, 1)  # with c-0, the first in the rota
        survivor = e2e.gp("survivor", "uac_edge_menu_bye.xml", NUMBER, talk_ms=8000)
        wait_connected(engine, 2)  # with c-1: c-0 is busy
        dead_port = contact_port(doomed)
        assert contact_port(survivor) != dead_port  # the edge put them on different workers
        assert not c0.received("BYE")
        killed = worker_pid(dead_port)
        os.kill(killed, signal.SIGKILL)

        assert doomed.wait(15) == 0, doomed.explain() + engine.log()  # the edge's BYE
        wait_received(c0, "BYE")  # the reaper's BYE: the consultant is not left talking
        assert not c1.received("BYE")  # not the survivor's consultant
        (reaped,) = log_events(engine, "reaping_lost_legs")
        assert reaped["requests"] == ["BYE"]
        assert len(reaped["legs"]) == 1  # type: ignore[arg-type]  # the consultant's leg only
        assert edge_lines(engine, "edge_worker_down"), engine.log()

        during = e2e.gp("during", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1000)
        assert during.wait() == 0, during.explain() + engine.log()  # c-0 is free again
        assert survivor.wait() == 0, survivor.explain() + engine.log()
        assert survivor.sent("BYE")[0].at > doomed.received("BYE")[0].at  # it went on

        engine.wait_idle()
        rows = {r["call_id"]: r for r in records.calls(engine.db)}
        by_outcome = sorted((r["end_reason"], r["outcome"]) for r in rows.values())
        assert by_outcome.count(("completed", "connected")) == 2, by_outcome
        (lost,) = [r for r in rows.values() if r["end_reason"] != "completed"]
        assert lost["end_reason"] in {"interrupted", "lost"}, lost  # the GP's leg died with it

        deadline = time.monotonic() + 15  # the pool restarted the worker on its port
        while engine.health()["worker_slots_free"] != 2 * 4:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.2)
        assert len(log_events(engine, "worker_died")) == 1, engine.log()
        assert worker_pid(dead_port) != killed  # a fresh process on the dead one's port
        back = e2e.gp("back", "uac_edge_menu_bye.xml", NUMBER, talk_ms=500)
        assert back.wait() == 0, back.explain() + engine.log()
