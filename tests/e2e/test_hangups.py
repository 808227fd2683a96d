"""Either side hanging up: what the other peers saw, and what the records say."""

from __future__ import annotations

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(90)]


class TestGpHangsUp:
    """The GP leaves: every consultant leg ends with it."""

    def test_mid_hunt_every_ringing_leg_is_cancelled(self, e2e: E2E) -> None:
        team = (member("c-one"), member("c-two"), member("c-three"))
        engine = e2e.start(TreeSpec(members=team, strategy="ringall", ring_seconds=20))
        ringing = [e2e.peers.consultant(m.id, "uas_ring_cancel.xml", port=m.port) for m in team]
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=2000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        for peer in ringing:  # each scenario ends only after CANCEL, 200, 487, ACK
            assert peer.wait() == 0, peer.explain() + engine.log()
            assert len(peer.received("CANCEL")) == 1
            assert peer.received("CANCEL")[0].at >= gp.sent("BYE")[0].at
        engine.wait_idle()

        call = records.only_call(engine.db)
        assert call["end_reason"] == "gp_hangup_hunt", call
        assert call["connected_at"] is None
        legs = records.legs(engine.db, call["call_id"])
        assert sorted(leg["member_id"] for leg in legs) == ["c-one", "c-three", "c-two"]
        assert {leg["result"] for leg in legs} == {"cancelled"}

    def test_mid_call_the_consultant_gets_bye(self, e2e: E2E) -> None:
        consultant = member("c-talks")
        engine = e2e.start(TreeSpec(members=(consultant,)))
        talks = e2e.peers.consultant(
            "talks", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
        )
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=3000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert talks.wait() == 0, talks.explain() + engine.log()  # ends only on our BYE
        engine.wait_idle()

        (bye,) = talks.received("BYE")
        assert bye.at >= gp.sent("BYE")[0].at
        call = records.only_call(engine.db)
        assert (call["outcome"], call["end_reason"]) == ("connected", "completed"), call
        assert call["talk_seconds"] > 0
        assert call["survey_avoided_referral"] is None  # the GP left: no outcome question


class TestConsultantHangsUp:
    """The consultant leaves first: the GP hears the outcome question and answers it."""

    def test_gp_keys_1_and_the_record_says_referral_avoided(self, e2e: E2E) -> None:
        consultant = member("c-leaves")
        engine = e2e.start(TreeSpec(members=(consultant,)))
        leaves = e2e.peers.consultant(
            "leaves",
            "uas_accept_hangup.xml",
            port=consultant.port,
            ring_ms=200,
            key_ms=300,
            talk_ms=1000,
        )
        # connected ~0.6 s after the menu key, consultant gone ~1 s later: answer at 3 s
        gp = e2e.gp("gp", "uac_menu_survey.xml", NUMBER, survey_ms=3000)

        assert leaves.wait() == 0, leaves.explain() + engine.log()
        assert gp.wait() == 0, gp.explain() + engine.log()  # ends only on our BYE
        engine.wait_idle()

        assert gp.marks("survey")[0] > leaves.marks("bye")[0], "answered before the question"
        call = records.only_call(engine.db)
        assert (call["outcome"], call["end_reason"]) == ("connected", "completed"), call
        assert call["survey_avoided_referral"] == 1
        (leg,) = records.legs(engine.db, call["call_id"])
        assert leg["result"] == "accepted"
