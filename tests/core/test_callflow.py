"""The call flow driven through every transition with a hand-advanced clock."""

from __future__ import annotations

import pytest

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core.callflow import IllegalEvent, State
from callrouter.core.events import (
    GP,
    Digit,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    Lost,
    MediaTimeout,
    Offered,
    PromptDone,
    Tick,
)
from tests.core.harness import GP_NUMBER, Harness, dialplan


def to_menu(h: Harness) -> None:
    h.send(Offered(GP_NUMBER))
    h.send(PromptDone(GP), after=4)
    h.send(PromptDone(GP), after=10)


def to_hunting(h: Harness, digit: str = "1") -> None:
    to_menu(h)
    h.send(Digit(GP, digit), after=1)


def to_bridged(h: Harness) -> None:
    to_hunting(h)
    h.send(LegRinging("L1"), after=0.1)
    h.send(LegAnswered("L1"), after=5)
    h.send(PromptDone("L1"), after=3)
    h.send(Digit("L1", "1"), after=1)


def ended(h: Harness) -> d.CallEnded:
    [end] = h.of(d.CallEnded)
    return end


class TestHappyPath:
    """A GP reaches the first consultant, talks, and answers the outcome question."""

    def test_offered_answers_and_greets(self) -> None:
        h = Harness()
        out = h.send(Offered(GP_NUMBER))
        assert isinstance(out[0], d.CallOffered)
        assert out[0].practice == "Cherry Tree Surgery"
        assert c.Answer() in out
        [play] = h.of(c.Play, out)
        assert play.prompts[0].text.startswith("Welcome")
        assert h.flow.state is State.GREETING

    def test_menu_is_spoken_after_greeting(self) -> None:
        h = Harness()
        h.send(Offered(GP_NUMBER))
        out = h.send(PromptDone(GP), after=4)
        [play] = h.of(c.Play, out)
        texts = [p.text for p in play.prompts]
        assert texts[0] == "Choose a specialty."
        assert "For Cardiology, press 1." in texts
        assert "For more specialties, press 9." in texts
        assert h.flow.state is State.MENU

    def test_digit_chooses_and_hunt_dials_first_local(self) -> None:
        h = Harness()
        to_menu(h)
        out = h.send(Digit(GP, "1"), after=2)
        [chosen] = h.of(d.SpecialtyChosen, out)
        assert chosen.specialty == "cardiology"
        assert chosen.ivr_seconds == pytest.approx(16.0)
        [dial] = h.of(c.Dial, out)
        assert (dial.leg, dial.member_id) == ("L1", "a1")
        assert dial.caller_display == "Cherry Tree Surgery"
        [started] = h.of(d.LegStarted, out)
        assert (started.tier, started.why) == ("local", "layer test (primary)")
        assert h.flow.state is State.HUNTING

    def test_whisper_names_practice_and_specialty(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(LegAnswered("L1"), after=5)
        [play] = h.of(c.Play, out)
        assert play.leg == "L1"
        assert [p.text for p in play.prompts] == [
            "GP call from",
            "Cherry Tree Surgery",
            "about",
            "Cardiology",
            "Press 1 to accept, 2 to decline.",
        ]

    def test_accept_bridges_and_reports_connection_time(self) -> None:
        h = Harness()
        to_hunting(h)
        h.send(LegRinging("L1"), after=0.5)
        h.send(LegAnswered("L1"), after=5)
        h.send(PromptDone("L1"), after=3)
        out = h.send(Digit("L1", "1"), after=1.5)
        assert c.StopPlay(GP) in out
        # The whisper may still play when 1 barges in: it stops before the bridge.
        assert out.index(c.StopPlay("L1")) < out.index(c.Bridge(GP, "L1"))
        [conn] = h.of(d.Connected, out)
        assert conn.connect_seconds == pytest.approx(10.0)
        assert (conn.member_id, conn.tier) == ("a1", "local")
        assert h.flow.state is State.BRIDGED

    def test_consultant_hangs_up_then_survey_then_goodbye(self) -> None:
        h = Harness()
        to_bridged(h)
        out = h.send(HungUp("L1"), after=260)
        [leg_end] = h.of(d.LegEnded, out)
        assert leg_end.result is d.LegResult.ACCEPTED
        [play] = h.of(c.Play, out)
        assert "avoided a hospital referral" in play.prompts[-1].text
        assert h.flow.state is State.SURVEY
        h.send(PromptDone(GP), after=6)
        out = h.send(Digit(GP, "1"), after=2)
        [outcome] = h.of(d.OutcomeRecorded, out)
        assert outcome.avoided_referral is True
        out = h.send(PromptDone(GP), after=2)
        assert c.Hangup(GP, "completed") in out
        end = ended(h)
        assert (end.reason, end.connected) == (d.EndReason.COMPLETED, True)
        assert end.talk_seconds == pytest.approx(260.0)
        assert h.flow.ended
        assert h.flow.next_deadline() is None


class TestIvr:
    """Menu and NHS-number entry: barge-in, codes, sub-menus, retries."""

    def test_barge_in_during_greeting_chooses_directly(self) -> None:
        h = Harness()
        h.send(Offered(GP_NUMBER))
        out = h.send(Digit(GP, "2"), after=1)
        assert out[0] == c.StopPlay(GP)
        assert h.of(d.SpecialtyChosen, out)[0].specialty == "dermatology"

    def test_barge_in_during_menu_stops_prompt(self) -> None:
        h = Harness()
        h.send(Offered(GP_NUMBER))
        h.send(PromptDone(GP), after=4)
        out = h.send(Digit(GP, "1"), after=1)
        assert out[0] == c.StopPlay(GP)
        assert h.flow.specialty == "cardiology"

    def test_submenu_two_digit_code(self) -> None:
        h = Harness()
        to_menu(h)
        out = h.send(Digit(GP, "9"))
        [play] = h.of(c.Play, out)
        assert [p.text for p in play.prompts] == ["For renal, press 1.", "For ent, press 2 2."]
        h.send(PromptDone(GP), after=3)
        assert h.send(Digit(GP, "2")) == []
        assert h.flow.next_deadline() == pytest.approx(h.now + 3.0)
        h.send(Digit(GP, "2"), after=1)
        assert h.flow.specialty == "ent"

    def test_partial_code_times_out_as_invalid(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(Digit(GP, "9"))
        h.send(PromptDone(GP), after=3)
        h.send(Digit(GP, "2"))
        out = h.advance_to_deadline()
        [play] = h.of(c.Play, out)
        assert play.prompts[0].text.startswith("Sorry, that is not a valid choice")
        assert h.flow.state is State.MENU

    def test_hash_ends_entry(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(Digit(GP, "9"))
        h.send(Digit(GP, "1"))
        assert h.flow.specialty == "renal"

    def test_star_goes_back_from_submenu(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(Digit(GP, "9"))
        out = h.send(Digit(GP, "*"))
        [play] = h.of(c.Play, out)
        assert play.prompts[0].text == "Choose a specialty."
        h.send(Digit(GP, "1"))
        assert h.flow.specialty == "cardiology"

    def test_invalid_digit_reprompts(self) -> None:
        h = Harness()
        to_menu(h)
        out = h.send(Digit(GP, "7"))
        [play] = h.of(c.Play, out)
        assert play.prompts[0].text == "Sorry, that is not a valid choice."
        assert play.prompts[1].text == "Choose a specialty."

    def test_no_input_reprompts_then_gives_up(self) -> None:
        h = Harness()
        to_menu(h)
        out = h.advance_to_deadline()
        assert h.of(c.Play, out)[0].prompts[0].text == "Sorry, I did not hear a choice."
        h.send(PromptDone(GP), after=10)
        h.advance_to_deadline()
        h.send(PromptDone(GP), after=10)
        out = h.advance_to_deadline()
        assert h.flow.state is State.FAREWELL
        assert "Please call again" in h.of(c.Play, out)[0].prompts[0].text
        h.send(PromptDone(GP), after=3)
        assert ended(h).reason is d.EndReason.NO_INPUT

    def nhs(self, mode: str) -> Harness:
        h = Harness(dialplan(nhs_number=mode))
        h.send(Offered(GP_NUMBER))
        out = h.send(PromptDone(GP), after=4)
        assert "NHS number" in h.of(c.Play, out)[0].prompts[0].text
        assert h.flow.state is State.NHS
        h.send(PromptDone(GP), after=5)
        return h

    def test_nhs_number_valid_is_captured(self) -> None:
        h = self.nhs("required")
        out: list[object] = []
        for digit in "9434765919#":
            out = list(h.send(Digit(GP, digit)))
        [captured] = h.of(d.NhsNumberCaptured, out)  # type: ignore[arg-type]
        assert captured.nhs_number == "9434765919"
        assert h.flow.state is State.MENU

    def test_nhs_number_bad_check_digit_reprompts(self) -> None:
        h = self.nhs("required")
        for digit in "9434765918":
            h.send(Digit(GP, digit))
        out = h.send(Digit(GP, "#"))
        [play] = h.of(c.Play, out)
        assert play.prompts[0].text == "That NHS number is not valid."
        assert h.flow.state is State.NHS

    def test_nhs_short_number_then_hash_is_too_short(self) -> None:
        h = self.nhs("required")
        h.send(Digit(GP, "9"))
        out = h.send(Digit(GP, "#"))
        assert h.of(c.Play, out)[0].prompts[0].text == "That number is too short."

    def test_nhs_optional_star_skips(self) -> None:
        h = self.nhs("optional")
        h.send(Digit(GP, "*"))
        assert h.flow.state is State.MENU
        assert h.of(d.NhsNumberCaptured) == []

    def test_nhs_required_star_is_invalid(self) -> None:
        h = self.nhs("required")
        out = h.send(Digit(GP, "*"))
        assert h.of(c.Play, out)[0].prompts[0].text == "That NHS number is not valid."

    def test_nhs_required_gives_up_after_attempts(self) -> None:
        h = self.nhs("required")
        for _ in range(3):
            h.send(Digit(GP, "#"))
        assert h.flow.state is State.FAREWELL

    def test_nhs_optional_goes_on_after_attempts(self) -> None:
        h = self.nhs("optional")
        h.advance_to_deadline()
        h.send(PromptDone(GP))
        h.advance_to_deadline()
        h.send(PromptDone(GP))
        h.advance_to_deadline()
        assert h.flow.state is State.MENU

    def test_nhs_partial_entry_times_out_and_resolves(self) -> None:
        h = self.nhs("required")
        h.send(Digit(GP, "1"))
        out = h.advance_to_deadline()
        assert h.of(c.Play, out)[0].prompts[0].text == "That number is too short."


class TestAdmission:
    """Closed lines and unknown callers hear a message and are hung up."""

    def test_out_of_hours(self) -> None:
        h = Harness(is_open=False)
        out = h.send(Offered(GP_NUMBER))
        assert "closed" in h.of(c.Play, out)[0].prompts[0].text
        h.send(PromptDone(GP), after=8)
        assert ended(h).reason is d.EndReason.OUT_OF_HOURS

    def test_unknown_caller_rejected_by_policy(self) -> None:
        h = Harness(dialplan(unknown_callers="reject"))
        h.send(Offered("07700900123"))
        assert h.flow.state is State.FAREWELL
        h.advance_to_deadline()
        assert ended(h).reason is d.EndReason.UNKNOWN_CALLER
        assert c.Hangup(GP, "unknown_caller") in h.log

    def test_unknown_caller_allowed_is_announced_as_unregistered(self) -> None:
        h = Harness()
        h.send(Offered("07700900123"))
        h.send(Digit(GP, "1"))
        out = h.send(LegAnswered("L1"))
        assert h.of(c.Play, out)[0].prompts[1].text == "an unregistered number"

    def test_gp_hangs_up_in_ivr(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(HungUp(GP))
        assert ended(h).reason is d.EndReason.GP_HANGUP_IVR
        assert h.of(c.Hangup) == []

    def test_gp_hangs_up_before_answer(self) -> None:
        h = Harness()
        h.send(HungUp(GP))
        assert ended(h).reason is d.EndReason.GP_HANGUP_IVR


class TestHunting:
    """Leg failures move the hunt on; the first accept wins."""

    def test_hold_music_after_hunting_prompt(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(PromptDone(GP), after=3)
        [play] = h.of(c.Play, out)
        assert play.loop
        assert play.prompts[0].text == "Please continue to hold."

    def test_no_answer_then_busy_then_ncn_accepts(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.advance_to_deadline()
        assert c.Hangup("L1", "no_answer") in out
        assert h.of(d.LegEnded, out)[0].result is d.LegResult.NO_ANSWER
        assert h.of(c.Dial, out)[0].member_id == "a2"
        out = h.send(LegFailed("L2", 486, "Busy Here"), after=0.05)
        assert h.of(d.LegEnded, out)[0].result is d.LegResult.BUSY
        [dial] = h.of(c.Dial, out)
        assert dial.member_id == "n1"
        assert h.of(d.LegStarted, out)[0].tier == "ncn"
        h.send(LegAnswered("L3"), after=4)
        h.send(Digit("L3", "1"), after=2)
        assert h.of(d.Connected)[0].tier == "ncn"
        assert h.of(d.Connected)[0].connect_seconds == pytest.approx(18.05 + 6)

    @pytest.mark.parametrize(
        ("status", "result"),
        [
            (480, d.LegResult.UNAVAILABLE),
            (404, d.LegResult.UNAVAILABLE),
            (603, d.LegResult.REJECTED),
            (503, d.LegResult.ERROR),
            (408, d.LegResult.NO_ANSWER),
        ],
    )
    def test_leg_failures_map_to_results(self, status: int, result: d.LegResult) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(LegFailed("L1", status, "x"))
        assert h.of(d.LegEnded, out)[0].result is result
        assert h.of(c.Dial, out)[0].leg == "L2"

    def test_voicemail_pickup_without_key_is_skipped(self) -> None:
        h = Harness()
        to_hunting(h)
        h.send(LegAnswered("L1"), after=3)
        h.send(PromptDone("L1"), after=4)
        assert h.flow.next_deadline() == pytest.approx(h.now + 10.0)
        out = h.advance_to_deadline()
        assert c.Hangup("L1", "no_confirm") in out
        assert h.of(c.Dial, out)[0].member_id == "a2"

    def test_whisper_that_never_ends_still_times_out(self) -> None:
        h = Harness()
        to_hunting(h)
        h.send(LegAnswered("L1"))
        assert h.flow.next_deadline() == pytest.approx(h.now + 30.0)

    def test_decline_moves_on_and_member_is_not_rung_again(self) -> None:
        h = Harness(dialplan(hunt_defaults={"strategy": "linear", "loops": 2}))
        h.plans.tiers["cardiology"] = [("local", ["a1"])]
        to_hunting(h)
        h.send(LegAnswered("L1"))
        out = h.send(Digit("L1", "2"))
        assert h.of(d.LegEnded, out)[0].result is d.LegResult.DECLINED
        assert c.Hangup("L1", "declined") in out
        assert h.of(c.Dial, out) == []
        assert h.flow.state is State.FAREWELL

    def test_other_key_in_whisper_repeats_the_keys(self) -> None:
        h = Harness()
        to_hunting(h)
        h.send(LegAnswered("L1"))
        out = h.send(Digit("L1", "5"))
        assert out == [c.Play("L1", (c.Prompt("Press 1 to accept, 2 to decline."),))]

    def test_nobody_accepts(self) -> None:
        h = Harness()
        to_hunting(h)
        for _ in range(3):
            h.advance_to_deadline()
        assert h.flow.state is State.FAREWELL
        assert "no consultant is free" in h.of(c.Play)[-1].prompts[0].text
        h.send(PromptDone(GP))
        assert ended(h).reason is d.EndReason.NOBODY_ACCEPTED
        assert not ended(h).connected

    def test_max_wait_ends_the_hunt(self) -> None:
        plan = dialplan(hunt_defaults={"strategy": "linear", "loops": 5, "max_wait_seconds": 30})
        h = Harness(plan)
        to_hunting(h)
        h.advance_to_deadline()
        out = h.advance_to_deadline()
        assert c.Hangup("L2", "cancelled") in out
        h.send(PromptDone(GP))
        assert ended(h).reason is d.EndReason.MAX_WAIT

    def test_busy_member_is_skipped(self) -> None:
        h = Harness()
        h.presence.busy.add("a1")
        to_hunting(h)
        assert h.of(c.Dial)[0].member_id == "a2"

    def test_nobody_on_the_rota_apologises_at_once(self) -> None:
        h = Harness()
        h.plans.tiers["cardiology"] = [("local", []), ("ncn", [])]
        to_menu(h)
        out = h.send(Digit(GP, "1"))
        assert h.of(c.Dial, out) == []
        assert "no consultant is free" in h.of(c.Play, out)[0].prompts[0].text
        h.send(PromptDone(GP), after=9)
        assert ended(h).reason is d.EndReason.NOBODY_ACCEPTED

    def test_everyone_busy_holds_then_gives_up(self) -> None:
        h = Harness()
        h.presence.busy.update({"a1", "a2", "n1"})
        to_hunting(h)
        assert h.flow.state is State.FAREWELL
        assert h.of(c.Dial) == []

    def test_ringall_first_accept_wins_and_others_are_cancelled(self) -> None:
        h = Harness()
        to_menu(h)
        out = h.send(Digit(GP, "2"))
        assert [x.member_id for x in h.of(c.Dial, out)] == ["a1", "a2"]
        h.send(LegAnswered("L2"), after=3)
        out = h.send(Digit("L2", "1"), after=2)
        assert c.Hangup("L1", "cancelled") in out
        assert c.Bridge(GP, "L2") in out
        # 200 OK to L1 crossed our CANCEL: hang it up again; then its end report is accepted.
        assert h.send(LegAnswered("L1")) == [c.Hangup("L1", "answered after cancel")]
        assert h.send(HungUp("L1")) == []

    def test_no_accept_needed_bridges_on_answer(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(Digit(GP, "9"))
        h.send(Digit(GP, "1"))
        out = h.send(LegAnswered("L1"), after=4)
        assert c.Bridge(GP, "L1") in out

    def test_gp_hangs_up_mid_hunt_cancels_every_leg(self) -> None:
        h = Harness()
        to_menu(h)
        h.send(Digit(GP, "2"))
        out = h.send(HungUp(GP), after=5)
        assert c.Hangup("L1", "cancelled") in out
        assert c.Hangup("L2", "cancelled") in out
        assert c.Hangup(GP, "gp_hangup_hunt") not in out
        assert ended(h).reason is d.EndReason.GP_HANGUP_HUNT
        assert h.send(LegFailed("L1", 487, "Request Terminated")) == []

    def test_consultant_hangs_up_during_whisper(self) -> None:
        h = Harness()
        to_hunting(h)
        h.send(LegAnswered("L1"))
        out = h.send(HungUp("L1"))
        assert h.of(d.LegEnded, out)[0].result is d.LegResult.HUNG_UP
        assert h.of(c.Hangup, out) == []
        assert h.of(c.Dial, out)[0].leg == "L2"

    def test_gp_media_timeout_during_hunt(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(MediaTimeout(GP))
        assert c.Hangup(GP, "media timeout") in out
        assert c.Hangup("L1", "cancelled") in out
        assert ended(h).reason is d.EndReason.MEDIA_TIMEOUT

    def test_staggered_adds_legs_while_earlier_ring(self) -> None:
        h = Harness(dialplan(hunt_defaults={"strategy": "staggered", "stagger_seconds": 5}))
        to_hunting(h)
        assert [x.member_id for x in h.of(c.Dial)] == ["a1"]
        out = h.advance_to_deadline()
        assert [x.member_id for x in h.of(c.Dial, out)] == ["a2"]
        out = h.advance_to_deadline()
        assert [x.member_id for x in h.of(c.Dial, out)] == ["n1"]


class TestLostWorker:
    """A worker that dies takes its legs: the call is recorded as lost, never hangs."""

    def test_gp_lost_mid_hunt_ends_lost(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(Lost(GP), after=3)
        assert c.Hangup("L1", "cancelled") in out
        assert not [x for x in h.of(c.Hangup, out) if x.leg == GP]
        assert ended(h).reason is d.EndReason.LOST
        assert h.flow.next_deadline() is None

    def test_gp_lost_mid_call_keeps_talk_time(self) -> None:
        h = Harness()
        to_bridged(h)
        h.send(Lost(GP), after=100)
        end = ended(h)
        assert (end.reason, end.connected) == (d.EndReason.LOST, True)
        assert end.talk_seconds == pytest.approx(100)

    def test_consultant_lost_while_ringing_moves_on(self) -> None:
        h = Harness()
        to_hunting(h)
        out = h.send(Lost("L1"))
        assert h.of(d.LegEnded, out)[0].result is d.LegResult.ERROR
        assert h.of(c.Dial, out)[0].member_id == "a2"

    def test_lost_leg_after_the_end_is_accepted(self) -> None:
        h = drive_to(State.ENDED)
        assert h.flow.handle(Lost("L1"), h.now) == []
        assert h.flow.handle(Lost(GP), h.now) == []


class TestBridged:
    """The conversation and its end."""

    def test_gp_hangs_up_mid_call(self) -> None:
        h = Harness()
        to_bridged(h)
        out = h.send(HungUp(GP), after=120)
        assert c.Hangup("L1", "accepted") in out
        end = ended(h)
        assert (end.reason, end.talk_seconds) == (d.EndReason.COMPLETED, pytest.approx(120))

    def test_max_call_length(self) -> None:
        h = Harness()
        to_bridged(h)
        out = h.advance_to_deadline()
        assert c.Hangup("L1", "accepted") in out
        assert c.Hangup(GP, "max_call_length") in out
        assert ended(h).talk_seconds == pytest.approx(3600)

    def test_consultant_media_timeout_goes_to_survey(self) -> None:
        h = Harness()
        to_bridged(h)
        out = h.send(MediaTimeout("L1"))
        assert c.Hangup("L1", "media timeout") in out
        assert h.flow.state is State.SURVEY

    def test_digits_in_conversation_are_ignored(self) -> None:
        h = Harness()
        to_bridged(h)
        assert h.send(Digit(GP, "5")) == []
        assert h.send(Digit("L1", "5")) == []

    def test_survey_invalid_then_timeout(self) -> None:
        h = Harness()
        to_bridged(h)
        h.send(HungUp("L1"))
        h.send(PromptDone(GP))
        out = h.send(Digit(GP, "7"))
        assert h.of(c.Play, out)[0].prompts[0].text == "Sorry, that is not a valid choice."
        h.send(PromptDone(GP))
        h.advance_to_deadline()
        h.send(PromptDone(GP))
        end = ended(h)
        assert end.reason is d.EndReason.COMPLETED
        assert h.of(d.OutcomeRecorded) == []

    def test_survey_answer_two(self) -> None:
        h = Harness()
        to_bridged(h)
        h.send(HungUp("L1"))
        h.send(Digit(GP, "2"))
        assert h.of(d.OutcomeRecorded)[0].avoided_referral is False

    def test_gp_hangs_up_during_survey(self) -> None:
        h = Harness()
        to_bridged(h)
        h.send(HungUp("L1"))
        h.send(HungUp(GP))
        assert ended(h).reason is d.EndReason.COMPLETED
        assert ended(h).connected


def drive_to(state: State) -> Harness:
    h = Harness(dialplan(nhs_number="optional")) if state is State.NHS else Harness()
    steps = {
        State.OFFERED: lambda: None,
        State.GREETING: lambda: h.send(Offered(GP_NUMBER)),
        State.NHS: lambda: (h.send(Offered(GP_NUMBER)), h.send(PromptDone(GP))),
        State.MENU: lambda: to_menu(h),
        State.HUNTING: lambda: to_hunting(h),
        State.BRIDGED: lambda: to_bridged(h),
        State.SURVEY: lambda: (to_bridged(h), h.send(HungUp("L1"))),
        State.FAREWELL: lambda: (to_bridged(h), h.send(HungUp("L1")), h.send(Digit(GP, "1"))),
        State.ENDED: lambda: (to_bridged(h), h.send(HungUp(GP))),
    }
    steps[state]()
    assert h.flow.state is state
    return h


ALL_EVENTS = [
    Offered(GP_NUMBER),
    PromptDone(GP),
    Digit(GP, "1"),
    LegRinging("L1"),
    LegAnswered("L1"),
    LegFailed("L1", 486, "busy"),
    HungUp(GP),
    MediaTimeout(GP),
    Lost(GP),
    Tick(),
]
ILLEGAL = {
    State.OFFERED: {
        "PromptDone",
        "Digit",
        "LegRinging",
        "LegAnswered",
        "LegFailed",
        "MediaTimeout",
        "Tick",
    },
    State.GREETING: {"Offered", "LegRinging", "LegAnswered", "LegFailed"},
    State.NHS: {"Offered", "LegRinging", "LegAnswered", "LegFailed"},
    State.MENU: {"Offered", "LegRinging", "LegAnswered", "LegFailed"},
    State.HUNTING: {"Offered"},
    State.BRIDGED: {"Offered", "LegAnswered"},  # L1 is the live winner: a 2nd answer is wrong
    State.SURVEY: {"Offered"},
    State.FAREWELL: {"Offered"},
    State.ENDED: {"Offered", "PromptDone", "Digit", "LegRinging", "MediaTimeout", "Tick"},
}


class TestIllegalEvents:
    """Every event a state cannot take raises and leaves the flow exactly as it was."""

    @pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
    def test_illegal_events_raise_and_change_nothing(self, state: State) -> None:
        for event in ALL_EVENTS:
            if type(event).__name__ not in ILLEGAL[state]:
                continue
            h = drive_to(state)
            before = (repr(h.flow), h.flow.next_deadline(), len(h.log))
            with pytest.raises(IllegalEvent):
                h.flow.handle(event, h.now + 1)
            assert (repr(h.flow), h.flow.next_deadline(), len(h.log)) == before

    def test_unknown_leg_is_illegal(self) -> None:
        h = drive_to(State.HUNTING)
        with pytest.raises(IllegalEvent, match="unknown leg"):
            h.flow.handle(LegAnswered("L9"), h.now)
        assert h.flow.state is State.HUNTING

    def test_gp_leg_cannot_ring(self) -> None:
        h = drive_to(State.HUNTING)
        with pytest.raises(IllegalEvent, match="GP leg"):
            h.flow.handle(LegRinging(GP), h.now)

    def test_late_report_of_live_leg_after_end_is_illegal(self) -> None:
        h = drive_to(State.ENDED)
        # L1 was closed at the end, so its report is legal; nothing else lives.
        assert h.flow.handle(HungUp("L1"), h.now) == []
