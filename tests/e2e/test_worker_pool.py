"""``sip.workers: 3``: three worker processes, each on its own SIP port and RTP slice, and a GP
calling any of them is answered there and bridged to a consultant (the consultant's leg made by
the GP's own worker)."""

from __future__ import annotations

import re

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(90)]

WORKERS = 3


class TestThreeWorkers:
    """Every worker listens and connects calls, all at once."""

    def test_a_call_on_each_worker_port_connects(self, e2e: E2E) -> None:
        consultants = [member(f"c-{i}") for i in range(WORKERS)]
        engine = e2e.start(TreeSpec(members=tuple(consultants), workers=WORKERS))
        listening = [e for e in engine.log_events() if e.get("event") == "sip_listening"]
        ports = sorted(int(e["port"]) for e in listening)
        assert ports == [engine.ports.sip + i for i in range(WORKERS)], listening
        assert engine.health()["worker_slots_free"] == 4 * WORKERS
        assert records.sample(engine.scrape(), "callrouter_worker_slots_free") == 4 * WORKERS

        peers = [
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=WORKERS, ring_ms=200, key_ms=200
            )
            for i, c in enumerate(consultants)
        ]
        gps = [
            e2e.peers.gp(
                f"gp{i}",
                "uac_menu_bye.xml",
                engine=f"127.0.0.1:{port}",
                number=NUMBER,
                variables={"talk_ms": 4000},
            )
            for i, port in enumerate(ports)
        ]
        for gp in gps:
            assert gp.wait() == 0, gp.explain() + engine.log()
        engine.wait_idle()
        for peer in peers:
            peer.kill()

        # each GP was answered by the worker on the port it called
        for gp, port in zip(gps, ports, strict=True):
            assert gp.received("200"), gp.explain()
            trace = (gp.log_dir / "messages.log").read_text(errors="replace")
            assert re.search(rf"Contact: <sip:\w+@127\.0\.0\.1:{port}>", trace), trace[-3000:]
        rows = records.calls(engine.db)
        assert len(rows) == WORKERS
        assert {(r["end_reason"], r["outcome"]) for r in rows} == {("completed", "connected")}
        rung = sum(len(peer.received("INVITE")) for peer in peers)
        assert rung == WORKERS  # one consultant leg per call, none failed for want of a slot
        assert engine.stop() == 0, engine.log()
