"""Consultant phones that answer a worker's INVITE with broken or hostile SIP, through the edge
as shipped: a Content-Length that lies, an out-of-range port, 300 media lines, non-UTF-8
everywhere, a 200 with no To tag, a 40 KB header, an unknown codec, garbage SDP, a 183 then a
603 with a 20 KB Reason. Each leg ends without connecting (refused, or answered with no key
pressed), the worker lives on, and the hunt reaches the last member, who connects the GP."""

from __future__ import annotations

import re

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .hostile_consultant import ANSWERS, ScriptedPhone
from .test_edge import needs_kamailio
from .tree import NUMBER, Member, TreeSpec

pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(180)]

NOT_CONNECTED = {"rejected", "no_confirm", "no_answer", "error", "declined"}


def test_hostile_answers_from_consultants_do_not_kill_the_worker(e2e: E2E) -> None:
    phone = ScriptedPhone()
    try:
        hostile = tuple(Member(f"c-hostile-{n}", phone.port) for n in range(len(ANSWERS)))
        last = member("c-last", "ncn")
        engine = e2e.start(TreeSpec(members=(*hostile, last), workers=1, edge=True))
        taker = e2e.peers.consultant(
            "last", "uas_accept_hangup.xml", port=last.port, ring_ms=200, key_ms=200,
            talk_ms=1000, timeout_s=120,
        )  # fmt: skip
        gp = e2e.peers.gp(  # stays on the line until the consultant leaves
            "gp", "uac_edge_menu_wait_bye.xml", engine=engine.sip_uri_host, number=NUMBER,
            timeout_s=120,
        )  # fmt: skip

        assert gp.wait(timeout=120) == 0, gp.explain() + engine.log()
        assert taker.wait(timeout=30) == 0, taker.explain() + engine.log()
        engine.wait_idle()
        assert phone.answered == [name for name, _ in ANSWERS]
        deaths = re.search(r"^callrouter_worker_deaths_total (\S+)$", engine.scrape(), re.M)
        assert deaths is not None
        assert float(deaths.group(1)) == 0.0, engine.log()
        call = records.only_call(engine.db)
        assert (call["outcome"], call["member_id"]) == ("connected", "c-last"), call
        legs = records.legs(engine.db, call["call_id"])
        assert [leg["member_id"] for leg in legs] == [m.id for m in (*hostile, last)]
        assert {leg["result"] for leg in legs[:-1]} <= NOT_CONNECTED, legs
        assert all(leg["ended_at"] - leg["started_at"] < 15.0 for leg in legs), legs
        assert engine.stop() == 0, engine.log()
    finally:
        phone.close()
