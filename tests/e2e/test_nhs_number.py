"""The NHS-number prompt's '#' keyed by a real sipp GP: the number is taken, the '#' is not a
menu choice, and the menu key that follows reaches a consultant.

The line allows one attempt (``max_attempts: 1``): had the '#' reached the menu as an invalid
choice, or the number been refused, the call would have ended there with ``no_input``. So a
connected call whose record carries the number proves no invalid-choice prompt was played.
"""

from __future__ import annotations

import pytest

from callrouter.adapters.sealing import SealingKey, open_field
from callrouter.sinks import nhs_context

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(90)]

NHS_NUMBER = "4010294701"  # what uac_nhs_hash_menu.xml keys, then '#', then '1' (see there)


class TestNhsNumberThenHash:
    """A GP keys the number, '#', then the menu digit, all as RFC 4733 events."""

    def test_number_hash_and_menu_key_reach_the_consultant(self, e2e: E2E) -> None:
        consultant = member("c-nhs")
        spec = TreeSpec(
            members=(consultant,), extra_ivr={"max_attempts": 1}, nhs_number="required"
        )
        engine = e2e.start(spec)
        accepts = e2e.peers.consultant(
            "accepts", "uas_accept.xml", port=consultant.port, ring_ms=300, key_ms=300
        )
        gp = e2e.gp("gp", "uac_nhs_hash_menu.xml", NUMBER, talk_ms=3000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        engine.wait_idle()
        call = records.only_call(engine.db)  # read first: a refused key ends the call at once
        assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call
        assert accepts.wait() == 0, accepts.explain() + engine.log()

        assert call["specialty"] == "cardiology"
        key = SealingKey.parse((engine.config.parent / "var" / "sealing.key").read_text(), "key")
        assert NHS_NUMBER not in call["nhs_number"]  # sealed at rest
        assert open_field(key, call["nhs_number"], nhs_context(call["call_id"])) == NHS_NUMBER
        assert call["member_id"] == "c-nhs"
        names = [item.get("event") for item in engine.log_events()]
        flow = [n for n in names if n in {"NhsNumberCaptured", "SpecialtyChosen", "Connected"}]
        assert flow == ["NhsNumberCaptured", "SpecialtyChosen", "Connected"], engine.log()
        assert "illegal_event" not in names
        assert NHS_NUMBER not in engine.log_path.read_text()  # never in a log line
        assert engine.stop() == 0, engine.log()
