"""A consultant phone that never answers a worker's INVITE at all (unplugged, a firewall that
drops): the edge gives up on it after OUTBOUND_NO_ANSWER_MS with a 408 to the worker, the leg is
recorded as that, and the hunt goes on to the next member, who connects the GP. Real kamailio,
worker and sipp on loopback; the silent phone is the test's ``ScriptedPhone`` with nothing to
say."""

from __future__ import annotations

import pytest

from callrouter.edge.kamailio_cfg import OUTBOUND_NO_ANSWER_MS

from . import records
from .conftest import E2E, member, needs_tools
from .hostile_consultant import ScriptedPhone
from .test_edge import needs_kamailio
from .tree import NUMBER, Member, TreeSpec

pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(120)]

RING_SECONDS = 15.0  # longer than the edge's 10 s: the 408, not the ring time, ends the leg


def test_a_silent_consultant_gets_a_408_from_the_edge_and_the_hunt_moves_on(e2e: E2E) -> None:
    phone = ScriptedPhone(answers=())  # reads INVITEs, never replies
    try:
        silent = Member("c-silent", phone.port)
        after = member("c-after")
        engine = e2e.start(
            TreeSpec(members=(silent, after), workers=1, edge=True, ring_seconds=RING_SECONDS)
        )
        taker = e2e.peers.consultant(
            "after", "uas_accept.xml", port=after.port, ring_ms=200, key_ms=200
        )
        # keys 1, then stays on the line 20 s (through the silent ring) and hangs up
        gp = e2e.gp("gp", "uac_edge_menu_bye.xml", NUMBER, talk_ms=20000)

        assert gp.wait(timeout=60) == 0, gp.explain() + engine.log()
        assert taker.wait() == 0, taker.explain() + engine.log()
        engine.wait_idle()
        call = records.only_call(engine.db)
        assert (call["outcome"], call["member_id"]) == ("connected", "c-after"), call
        first, second = records.legs(engine.db, call["call_id"])
        assert (first["member_id"], first["sip_status"]) == ("c-silent", 408), first
        assert first["result"] != "accepted"
        assert second["member_id"] == "c-after"
        # the edge relayed the INVITE (and its retransmissions) and gave up at its own timer,
        # before the ring time would have
        assert phone.invites, "the INVITE never reached the silent phone"
        given_up = second["started_at"] - first["started_at"]
        limit = OUTBOUND_NO_ANSWER_MS / 1000
        assert limit - 0.5 <= given_up < RING_SECONDS, given_up
        assert len(phone.invites) >= 3  # Timer A's retransmissions: 0.5, 1.5, 3.5 s ...
        assert engine.stop() == 0, engine.log()
    finally:
        phone.close()
