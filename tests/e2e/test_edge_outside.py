"""Consultants on a real network behind a local edge (the shipped layout: the workers' SIP on
loopback, their media and the edge's outer socket on ``sip.listen_host``): a worker cannot send
from its loopback socket to a consultant elsewhere, so its calls leave through the edge, which
records the route; everything in those dialogs comes back through it, both ways.

The consultant (sipp) runs in a network namespace at ``10.213.n.2``, the engine with its edge
and workers in the test's namespace at ``10.213.n.1`` on the bridge (``netns.hosts``); the GP on
loopback at 127.0.0.2, the only address in ``trunk_allow``, so neither the consultant nor the
engine's reaper (127.0.0.1) is on the allow-list: what they send in a dialog must still pass.
No packet leaves the bridge. Real kamailio, pjsua2 workers and sipp."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from . import records
from .conftest import E2E, needs_tools
from .netns import Host, can_make_namespaces, hosts
from .peers import Peer
from .running_engine import RunningEngine
from .test_edge import contact_port, edge_lines, needs_kamailio, wait_connected, worker_pid
from .test_multinode import free_udp_port
from .test_worker_crash import wait_received
from .tree import NUMBER, Member, TreeSpec

needs_root = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2")
pytestmark = [needs_tools, needs_kamailio, needs_root, pytest.mark.sip, pytest.mark.timeout(120)]

GP_SOURCE = "127.0.0.2"  # the only trunk on the allow-list


@dataclass
class Outside:
    """The engine (its SIP and media on the bridge address) and a consultant in a namespace."""

    e2e: E2E
    engine: RunningEngine
    bridge: str
    consultant_host: Host
    member: Member

    def consultant(self, scenario: str, **variables: float) -> Peer:
        return self.e2e.peers.consultant(
            "c-out",
            scenario,
            port=self.member.port,
            host=self.consultant_host.address,
            netns=self.consultant_host.netns,
            **variables,
        )

    def gp(self, name: str, scenario: str, **variables: float) -> Peer:
        return self.e2e.peers.gp(
            name,
            scenario,
            engine=self.engine.sip_uri_host,
            number=NUMBER,
            variables=variables,
            source=GP_SOURCE,
        )

    def via_edge(self, peer: Peer, method: str) -> list[str]:
        """The ``method`` requests the consultant received whose last hop was the edge's outer
        socket (top Via: the bridge address and the edge's port)."""
        edge_via = f"Via: SIP/2.0/UDP {self.bridge}:{self.engine.ports.edge};"
        trace = (peer.log_dir / "messages.log").read_text(errors="replace")
        blocks = re.split(r"\n-{20,} ", trace)
        return [
            b
            for b in blocks
            if re.search(rf"received \[\d+\] bytes :\n\n{method} ", b)
            and _top_via(b).startswith(edge_via)
        ]


def _top_via(block: str) -> str:
    found = re.search(r"^Via: [^\n]*", block, re.MULTILINE)
    return found.group(0) if found else ""


@pytest.fixture
def outside(e2e: E2E) -> Iterator[Outside]:
    with hosts(1) as network:
        (host,) = network.hosts
        member = Member("c-out", free_udp_port(network.bridge_address), host=host.address)

        def on_the_bridge(config: dict[str, Any]) -> None:
            config["sip"]["listen_host"] = network.bridge_address  # media, and the edge's outside

        spec = TreeSpec(members=(member,), workers=2, edge=True, trunk_allow=(f"{GP_SOURCE}/32",))
        engine = e2e.start(spec, config=on_the_bridge)
        try:
            yield Outside(e2e, engine, network.bridge_address, host, member)
        finally:
            e2e.peers.kill_all()  # before the namespace goes
            engine.stop()


def _assert_nothing_refused(engine: RunningEngine) -> None:
    refused = [e for e in engine.log_events() if "edge_refused" in str(e.get("message"))]
    assert refused == [], refused


class TestConsultantOutside:
    def test_gp_hangs_up_and_the_bye_reaches_the_consultant_through_the_edge(
        self, outside: Outside
    ) -> None:
        consultant = outside.consultant("uas_accept.xml", ring_ms=200, key_ms=200)
        gp = outside.gp("gp", "uac_edge_menu_bye.xml", talk_ms=2500)

        engine = outside.engine
        assert gp.wait() == 0, gp.explain() + engine.log()
        assert consultant.wait() == 0, consultant.explain() + engine.log()
        engine.wait_idle()
        call = records.only_call(engine.db)
        assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call
        (leg,) = records.legs(engine.db, call["call_id"])
        assert leg["result"] == "accepted", leg  # the consultant's DTMF 1 reached the worker
        assert len(outside.via_edge(consultant, "INVITE")) == 1, consultant.explain()
        assert len(outside.via_edge(consultant, "ACK")) == 1, consultant.explain()
        assert len(outside.via_edge(consultant, "BYE")) == 1, consultant.explain()
        _assert_nothing_refused(engine)
        assert engine.stop() == 0, engine.log()

    def test_consultant_hangs_up_through_the_edge_and_the_gp_gets_bye(
        self, outside: Outside
    ) -> None:
        consultant = outside.consultant(
            "uas_accept_hangup.xml", ring_ms=200, key_ms=200, talk_ms=2000
        )
        gp = outside.gp("gp", "uac_edge_menu_wait_bye.xml", talk_ms=0)

        engine = outside.engine
        # the consultant's BYE (sent to the edge with its Route) got its 200 from the worker
        assert consultant.wait() == 0, consultant.explain() + engine.log()
        assert gp.wait() == 0, gp.explain() + engine.log()  # and the GP heard the end
        engine.wait_idle()
        call = records.only_call(engine.db)
        assert call["outcome"] == "connected", call
        assert call["end_reason"] != "gp_hangup", call
        assert len(consultant.sent("BYE")) == 1
        assert consultant.received("200")[-1:], consultant.explain()
        _assert_nothing_refused(engine)

    def test_a_dead_workers_consultant_gets_bye_through_the_edge(self, outside: Outside) -> None:
        consultant = outside.consultant("uas_accept.xml", ring_ms=200, key_ms=200)
        gp = outside.gp("doomed", "uac_edge_menu_wait_bye.xml", talk_ms=0)
        engine = outside.engine
        wait_connected(engine, 1)
        os.kill(worker_pid(contact_port(gp)), signal.SIGKILL)

        assert gp.wait(15) == 0, gp.explain() + engine.log()  # the edge's BYE to the GP
        wait_received(consultant, "BYE")  # the reaper's, relayed by the edge
        (bye,) = outside.via_edge(consultant, "BYE")
        assert "worker lost" in bye, bye
        assert consultant.wait(10) == 0, consultant.explain()
        assert edge_lines(engine, "edge_worker_down")
        _assert_nothing_refused(engine)

    def test_a_dead_workers_ringing_consultant_gets_cancel_through_the_edge(
        self, outside: Outside
    ) -> None:
        consultant = outside.consultant("uas_ring_cancel.xml")
        gp = outside.gp("doomed", "uac_edge_menu_wait_bye.xml", talk_ms=0)
        engine = outside.engine
        wait_received(consultant, "INVITE")  # ringing: no dialog the edge could end itself
        os.kill(worker_pid(contact_port(gp)), signal.SIGKILL)

        assert gp.wait(15) == 0, gp.explain() + engine.log()  # the edge's BYE to the GP
        wait_received(consultant, "CANCEL")  # the reaper's, matched and relayed by the edge
        assert outside.via_edge(consultant, "CANCEL"), consultant.explain()
        assert consultant.wait(10) == 0, consultant.explain()  # 487 acknowledged by the edge
        _assert_nothing_refused(engine)

    def test_after_an_edge_restart_the_consultants_bye_still_reaches_the_worker(
        self, outside: Outside
    ) -> None:
        consultant = outside.consultant(
            "uas_accept_hangup.xml", ring_ms=200, key_ms=200, talk_ms=4000
        )
        gp = outside.gp("gp", "uac_edge_menu_wait_bye.xml", talk_ms=0)
        engine = outside.engine
        wait_connected(engine, 1)
        (first,) = [e["pid"] for e in engine.log_events() if e.get("event") == "edge_listening"]
        os.kill(first, signal.SIGKILL)  # the new edge knows nothing of the dialog
        deadline = time.monotonic() + 15
        while not [e for e in engine.log_events() if e.get("event") == "edge_restarted"]:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.1)

        # the consultant (outside trunk_allow) hangs up: its BYE names a worker, so it passes
        assert consultant.wait() == 0, consultant.explain() + engine.log()
        assert gp.wait() == 0, gp.explain() + engine.log()
        assert outside.via_edge(consultant, "INVITE"), consultant.explain()
        _assert_nothing_refused(engine)

    def test_a_busy_consultant_gets_one_ack_from_the_edge(self, outside: Outside) -> None:
        consultant = outside.consultant("uas_busy_linger.xml")
        gp = outside.gp("gp", "uac_edge_menu_wait_bye.xml", talk_ms=0)
        engine = outside.engine
        assert gp.wait() == 0, gp.explain() + engine.log()  # told nobody is free, then BYE
        assert consultant.wait() == 0, consultant.explain()
        engine.wait_idle()
        (leg,) = records.legs(engine.db, records.only_call(engine.db)["call_id"])
        assert leg["result"] == "busy", leg
        # the edge acknowledges the 486 itself (hop by hop); the worker's own ACK stops there
        assert len(consultant.received("ACK")) == 1, consultant.explain()
        assert outside.via_edge(consultant, "ACK"), consultant.explain()
        _assert_nothing_refused(engine)
