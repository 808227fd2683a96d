"""Hunts that end connected, as the sipp consultants saw them and as the records tell it.

Every consultant is a sipp UAS on the port in its rota URI; the GP is a sipp UAC that keys 1 at
the menu (RFC 4733, barging into the greeting) and hangs up after ``talk_ms``.
"""

from __future__ import annotations

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, PRACTICE, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(90)]

CONFIRM_SECONDS = 3.0


class TestConnected:
    """The first consultant rung answers and accepts."""

    def test_first_consultant_accepts(self, e2e: E2E) -> None:
        first, second = member("c-first"), member("c-second")
        engine = e2e.start(TreeSpec(members=(first, second)))
        consultant = e2e.peers.consultant(
            "first", "uas_accept.xml", port=first.port, ring_ms=300, key_ms=300
        )
        other = e2e.peers.consultant("second", "uas_accept.xml", port=second.port)
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=3000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert consultant.wait() == 0, consultant.explain() + engine.log()
        engine.wait_idle()

        call = records.only_call(engine.db)
        assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call
        assert (call["member_id"], call["tier"]) == ("c-first", "local")
        assert call["practice"] == PRACTICE
        assert call["specialty"] == "cardiology"
        (leg,) = records.legs(engine.db, call["call_id"])
        assert (leg["result"], leg["accepted"], leg["member_id"]) == ("accepted", 1, "c-first")
        assert len(consultant.received("INVITE")) == 1
        other.kill()
        assert other.messages() == [], "the second consultant was rung"
        assert engine.stop() == 0, engine.log()  # SIGTERM: drained and stopped cleanly


class TestHuntMovesOn:
    """A leg that does not end in an accept is released and the hunt goes on."""

    def test_local_no_answer_then_local_busy_then_ncn_accepts(self, e2e: E2E) -> None:
        quiet, busy, ncn = member("c-quiet"), member("c-busy"), member("c-ncn", "ncn")
        engine = e2e.start(TreeSpec(members=(quiet, busy, ncn), ring_seconds=5))
        rings = e2e.peers.consultant("quiet", "uas_ring_cancel.xml", port=quiet.port)
        refuses = e2e.peers.consultant("busy", "uas_busy.xml", port=busy.port)
        accepts = e2e.peers.consultant(
            "ncn", "uas_accept.xml", port=ncn.port, ring_ms=300, key_ms=300
        )
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=9000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        for peer in (rings, refuses, accepts):
            assert peer.wait() == 0, peer.explain() + engine.log()
        engine.wait_idle()

        # the peers saw the hunt in order: CANCEL after the ring time, 486, then the accept
        assert rings.received("CANCEL"), rings.explain()
        assert rings.received("INVITE")[0].at < refuses.received("INVITE")[0].at
        assert refuses.received("INVITE")[0].at < accepts.received("INVITE")[0].at
        call = records.only_call(engine.db)
        assert (call["outcome"], call["member_id"], call["tier"]) == ("connected", "c-ncn", "ncn")
        legs = records.legs(engine.db, call["call_id"])
        assert [(leg["member_id"], leg["tier"], leg["result"]) for leg in legs] == [
            ("c-quiet", "local", "no_answer"),
            ("c-busy", "local", "busy"),
            ("c-ncn", "ncn", "accepted"),
        ]
        assert legs[1]["sip_status"] == 486

    def test_voicemail_pickup_without_accept_is_skipped(self, e2e: E2E) -> None:
        machine, person = member("c-voicemail"), member("c-person")
        engine = e2e.start(TreeSpec(members=(machine, person), confirm_seconds=CONFIRM_SECONDS))
        voicemail = e2e.peers.consultant(
            "voicemail", "uas_voicemail.xml", port=machine.port, ring_ms=200
        )
        accepts = e2e.peers.consultant(
            "person", "uas_accept.xml", port=person.port, ring_ms=300, key_ms=300
        )
        # the whisper (~6 s) plus the confirm time (3 s) pass before the voicemail is dropped
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=14000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert voicemail.wait() == 0, voicemail.explain() + engine.log()
        assert accepts.wait() == 0, accepts.explain() + engine.log()
        engine.wait_idle()

        # the machine got our BYE, and the next consultant was rung only once the confirm
        # time had run out after the answer (BYE and INVITE leave together, in either order)
        assert voicemail.received("BYE"), voicemail.explain()
        answered = voicemail.received("ACK")[0].at
        assert accepts.received("INVITE")[0].at >= answered + CONFIRM_SECONDS
        call = records.only_call(engine.db)
        assert (call["outcome"], call["member_id"]) == ("connected", "c-person")
        legs = records.legs(engine.db, call["call_id"])
        assert [(leg["member_id"], leg["result"]) for leg in legs] == [
            ("c-voicemail", "no_confirm"),
            ("c-person", "accepted"),
        ]
        assert legs[0]["answered_at"] is not None
        assert legs[0]["accepted"] == 0

    def test_consultant_declines_then_next_accepts(self, e2e: E2E) -> None:
        first, second = member("c-declines"), member("c-accepts")
        engine = e2e.start(TreeSpec(members=(first, second)))
        declines = e2e.peers.consultant(
            "declines", "uas_decline.xml", port=first.port, ring_ms=200, key_ms=300
        )
        accepts = e2e.peers.consultant(
            "accepts", "uas_accept.xml", port=second.port, ring_ms=200, key_ms=300
        )
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=4000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert declines.wait() == 0, declines.explain() + engine.log()
        assert accepts.wait() == 0, accepts.explain() + engine.log()
        engine.wait_idle()

        assert declines.received("BYE"), "the declining consultant was not released"
        call = records.only_call(engine.db)
        assert (call["outcome"], call["member_id"]) == ("connected", "c-accepts")
        legs = records.legs(engine.db, call["call_id"])
        assert [(leg["member_id"], leg["result"]) for leg in legs] == [
            ("c-declines", "declined"),
            ("c-accepts", "accepted"),
        ]
        assert legs[0]["accepted"] == 0
