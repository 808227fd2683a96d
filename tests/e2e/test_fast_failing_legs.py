"""Consultant legs that fail at once (a consultant trunk answering 486 to everything): two hunts
run through a 40-member rota in a second, and the worker placing those legs lives on.

Each call pjsua makes holds two select-ioqueue handles until 500 ms after it ends, out of 64.
Before the worker's Dials shared the gate's new-call budget, these two hunts placed 28 legs in
20 ms and the worker aborted (``pj_ioqueue_register_sock2: Assertion ... free_list``), losing
both GPs. Now a Dial over the budget waits for room, and both GPs reach the last members."""

from __future__ import annotations

import re

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .test_edge import needs_kamailio
from .tree import NUMBER, Member, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

REFUSING = 40  # members on a trunk that refuses every call at once


@pytest.mark.parametrize(
    "edge", [False, pytest.param(True, marks=needs_kamailio)], ids=["direct", "through the edge"]
)
def test_a_rota_refusing_every_call_at_once_does_not_kill_the_worker(e2e: E2E, edge: bool) -> None:
    trunk = member("trunk")
    refusing = tuple(
        Member(f"c-refuse-{n:02d}", trunk.port, "local" if n < REFUSING // 2 else "ncn")
        for n in range(REFUSING)
    )
    last = (member("c-last-1", "ncn"), member("c-last-2", "ncn"))
    engine = e2e.start(TreeSpec(members=(*refusing, *last), workers=1, edge=edge))
    refuses = e2e.peers.consultant("trunk", "uas_busy.xml", port=trunk.port, calls=4 * REFUSING)
    takers = [
        e2e.peers.consultant(m.id, "uas_accept.xml", port=m.port, ring_ms=200, key_ms=200)
        for m in last
    ]
    scenario = "uac_edge_menu_bye.xml" if edge else "uac_menu_bye.xml"  # follows Record-Route
    gps = [e2e.gp(f"gp{n}", scenario, NUMBER, talk_ms=8000) for n in range(2)]  # 8 s after "1"

    for gp in gps:
        assert gp.wait() == 0, gp.explain() + engine.log()
    for taker in takers:
        assert taker.wait() == 0, taker.explain() + engine.log()
    engine.wait_idle()

    deaths = re.search(r"^callrouter_worker_deaths_total (\S+)$", engine.scrape(), re.M)
    assert deaths is not None
    assert float(deaths.group(1)) == 0.0, engine.log()
    calls = records.calls(engine.db)
    assert sorted((c["outcome"], c["member_id"]) for c in calls) == [
        ("connected", "c-last-1"),
        ("connected", "c-last-2"),
    ], calls
    legs = [leg for call in calls for leg in records.legs(engine.db, call["call_id"])]
    refused = [leg for leg in legs if leg["result"] == "busy"]
    # every refusal reached the trunk and was answered 486; no leg failed for want of room
    assert len(refused) == len(refuses.received("INVITE")) >= REFUSING
    assert {leg["sip_status"] for leg in refused} == {486}
    assert {leg["result"] for leg in legs} == {"busy", "accepted"}, legs
    for taker in takers:
        assert len(taker.received("INVITE")) == 1
    assert engine.stop() == 0, engine.log()
