"""The call flow's parts on their own: named timers, the leg book, the IVR session, the compiled
line."""

from __future__ import annotations

import pytest

from callrouter.core import domain as d
from callrouter.core.commands import Hangup, Prompt
from callrouter.core.env import IllegalEvent
from callrouter.core.events import GP, HungUp, LegAnswered, LegRinging, Lost, Tick
from callrouter.core.ivr_session import GiveUp, IvrSession, NhsDone, Picked, Rated, Say, Wait
from callrouter.core.legs import LegBook, LegClosedTwiceError, LegPhase
from callrouter.core.line import MenuNode, NhsCapture
from callrouter.core.plan import Candidate, HuntPolicy, StrategyName
from callrouter.core.timers import Timers
from callrouter.settings.compile import compile_line
from tests.core.harness import GP_NUMBER, dialplan

NAMES = {"cardiology": "Cardiology"}


class TestTimers:
    """Each name holds one instant; ``due`` takes it; ``soonest`` is the earliest armed."""

    def test_soonest_due_and_clear(self) -> None:
        timers = Timers()
        assert timers.soonest() is None
        timers.set("call", 50.0)
        timers.set("digit", 10.0)
        timers.set("digit", 20.0)  # moved, not added
        assert timers.soonest() == 20.0
        assert repr(timers) == "<Timers digit@20 call@50>"
        assert not timers.due("digit", 19.9)
        assert timers.due("digit", 20.0)
        assert not timers.due("digit", 20.0)  # taken once
        timers.clear("call", "absent")
        assert timers.soonest() is None


class TestLegBook:
    """Legs are named in order and each one's end is reported exactly once."""

    def book(self) -> LegBook:
        return LegBook("c9")

    def test_legs_are_named_in_the_order_rung(self) -> None:
        book = self.book()
        first = book.open(Candidate("m1", "M1", "sip:m1@127.0.0.1", "test"), "local", 0.0)
        second = book.open(Candidate("m2", "M2", "sip:m2@127.0.0.1", "test"), "ncn", 1.0)
        assert (first.name, second.name) == ("L1", "L2")
        assert repr(book) == "L1=dialing L2=dialing"

    def test_a_live_leg_is_hung_up_and_reported_once(self) -> None:
        book = self.book()
        leg = book.open(Candidate("m1", "M1", "sip:m1@127.0.0.1", "test"), "local", 0.0)
        out = book.close(leg, d.LegResult.NO_ANSWER, 487, 18.0)
        assert out[0] == Hangup("L1", "no_answer")
        assert out[1] == d.LegEnded(
            "c9", 18.0, "L1", "m1", "local", d.LegResult.NO_ANSWER, 487, 18.0
        )
        assert leg.phase is LegPhase.CLOSING
        with pytest.raises(LegClosedTwiceError):
            book.close(leg, d.LegResult.CANCELLED, 0, 19.0)

    def test_events_must_name_a_leg_of_ours(self) -> None:
        book = self.book()
        book.check(Tick())
        book.check(HungUp(GP))
        with pytest.raises(IllegalEvent, match="unknown leg 'L1'"):
            book.check(LegRinging("L1"))
        with pytest.raises(IllegalEvent, match="names the GP leg"):
            book.check(LegAnswered(GP))

    def test_a_late_report_of_a_live_leg_is_refused(self) -> None:
        book = self.book()
        leg = book.open(Candidate("m1", "M1", "sip:m1@127.0.0.1", "test"), "local", 0.0)
        with pytest.raises(IllegalEvent, match="live leg L1"):
            book.late_report(Lost("L1"))
        book.close(leg, d.LegResult.CANCELLED, 0, 1.0)
        assert book.late_report(LegAnswered("L1")) == [Hangup("L1", "answered after cancel")]
        assert book.late_report(Lost("L1")) == []
        assert leg.phase is LegPhase.DONE


class TestIvrSession:
    """Digits and silences in, outcomes out as data; the session plays nothing."""

    def test_menu_choice_submenu_and_back(self) -> None:
        ivr = IvrSession(compile_line(dialplan(), NAMES))
        assert ivr.menu_digit("1") == Picked("cardiology")
        sub = ivr.menu_digit("9")
        assert isinstance(sub, Say)
        assert sub.prompts[0] == Prompt("For renal, press 1.")
        assert ivr.menu_digit("2") == Wait(3.0)  # '2' may begin '22'
        assert ivr.menu_digit("2") == Picked("ent")
        back = ivr.menu_digit("*")
        assert isinstance(back, Say)
        assert back.prompts[-1] == Prompt("For more specialties, press 9.")

    def test_wrong_keys_reprompt_then_give_up(self) -> None:
        line = compile_line(dialplan(), NAMES)
        ivr = IvrSession(line)
        first = ivr.menu_digit("7")
        assert isinstance(first, Say)
        assert first.prompts[0] == line.prompts.invalid
        assert isinstance(ivr.menu_timeout(), Say)
        assert ivr.menu_timeout() == GiveUp(line.prompts.too_many_attempts, d.EndReason.NO_INPUT)

    def test_the_late_hash_of_an_nhs_number_is_dropped_once(self) -> None:
        ivr = IvrSession(compile_line(dialplan(nhs_number="required"), NAMES))
        for digit in "9434765919":
            assert ivr.nhs_digit(digit) == Wait(3.0)
        assert ivr.nhs_digit("#") == NhsDone("9434765919")
        ivr.start_menu(after_nhs=True)
        assert ivr.menu_digit("#") is None
        assert isinstance(ivr.menu_digit("#"), Say)  # a second '#' is a wrong key

    def test_survey_answers(self) -> None:
        line = compile_line(dialplan(), NAMES)
        ivr = IvrSession(line)
        assert ivr.start_survey().prompts == (line.prompts.consultant_gone, line.prompts.survey)
        assert ivr.survey_digit("1") == Rated(helped=True)
        assert ivr.survey_digit("2") == Rated(helped=False)
        assert ivr.survey_timeout() == GiveUp(line.prompts.goodbye, d.EndReason.COMPLETED)


class TestCompiledLine:
    """A dialplan becomes frozen core values: prompts, digit map, whisper pieces, policies."""

    def test_the_line_of_the_test_dialplan(self) -> None:
        notice = Prompt("This call is recorded.")
        line = compile_line(dialplan(), NAMES, notice)
        assert line.prompts.greeting == Prompt("Welcome to the Barnet advice line.")
        assert line.prompts.hunting == (notice, line.prompts.hunting[-1])
        assert line.nhs is NhsCapture.OFF
        assert set(line.menu.choices) == {"1", "2", "9"}
        sub = line.menu.choices["9"]
        assert isinstance(sub, MenuNode)
        assert sub.prefixes == frozenset({"2"})
        assert line.callers.identify("+44 20 8111 0001").practice_name == "Cherry Tree Surgery"
        whisper = line.whisper.for_call("Cherry Tree Surgery", "cardiology")
        assert [p.text for p in whisper[:4]] == [
            "GP call from",
            "Cherry Tree Surgery",
            "about",
            "Cardiology",
        ]
        assert whisper[4] == notice
        assert line.whisper.for_call(None, "cardiology")[1] == Prompt("an unregistered number")
        policy = line.policies["dermatology"]
        assert isinstance(policy, HuntPolicy)
        assert policy.strategy is StrategyName.RINGALL
        assert policy.ring_seconds == 18
        assert line.callers.identify(GP_NUMBER).known
