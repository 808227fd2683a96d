"""Calls refused at the door: 403 from outside the trunk allow-list, 404 for an unknown number,
503 with Retry-After when the engine is full. None of them may ring a consultant."""

from __future__ import annotations

import time

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, UNKNOWN_NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(60)]


class TestRefused:
    """Each refusal as the GP's sipp saw it, with no consultant rung and no call recorded."""

    def test_source_outside_the_trunk_allow_list_gets_403_and_no_leg(self, e2e: E2E) -> None:
        consultant = member("c-untouched")
        # sipp binds 127.0.0.1; only 127.0.0.2 may call in
        engine = e2e.start(TreeSpec(members=(consultant,), trunk_allow=("127.0.0.2/32",)))
        untouched = e2e.peers.consultant("untouched", "uas_accept.xml", port=consultant.port)
        gp = e2e.gp("gp", "uac_expect_403.xml", NUMBER)

        assert gp.wait() == 0, gp.explain() + engine.log()  # the scenario demands a 403
        assert not gp.received("200")
        engine.wait_idle()
        time.sleep(0.5)  # a leg, had one been started, would have reached sipp by now
        untouched.kill()
        assert untouched.messages() == [], "a consultant was rung for a refused call"
        assert records.calls(engine.db) == []

    def test_unknown_number_gets_404(self, e2e: E2E) -> None:
        consultant = member("c-untouched")
        engine = e2e.start(TreeSpec(members=(consultant,)))
        gp = e2e.gp("gp", "uac_expect_404.xml", UNKNOWN_NUMBER)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert not gp.received("200")
        engine.wait_idle()
        assert records.calls(engine.db) == []

    def test_over_max_concurrent_calls_gets_503_with_retry_after(self, e2e: E2E) -> None:
        consultant = member("c-untouched")
        engine = e2e.start(TreeSpec(members=(consultant,), max_concurrent_calls=1))
        # the first GP is answered and listens to the greeting for 4 s, holding the one place
        first = e2e.gp("first", "uac_answer_bye.xml", NUMBER, pause_ms=4000)
        deadline = time.monotonic() + 10
        while engine.health().get("active_calls") != 1:
            assert time.monotonic() < deadline, "the first call never became active"
            time.sleep(0.05)
        second = e2e.gp("second", "uac_expect_503.xml", NUMBER)

        assert second.wait() == 0, second.explain() + engine.log()  # 503, Retry-After: 30
        assert first.wait() == 0, first.explain() + engine.log()
        assert second.received("503")[0].at < first.sent("BYE")[0].at
        engine.wait_idle()
        call = records.only_call(engine.db)  # the refused call left no record
        assert call["end_reason"] == "gp_hangup_ivr"
