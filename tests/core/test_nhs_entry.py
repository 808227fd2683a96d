"""NHS-number entry ends on the '#' the prompt asks for; that '#' never reaches the menu.

Driven through the call flow with a hand-advanced clock: the number is judged on '#' or after
the inter-digit timeout, never at the tenth digit, so the key that follows is not a menu choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core.callflow import State
from callrouter.core.events import GP, Digit, Offered, PromptDone
from callrouter.core.ivr import NhsEntry, NhsTooLong
from callrouter.settings.dialplan import Dialplan, NhsNumberCapture
from callrouter.settings.loader import load_settings
from tests.core.harness import GP_NUMBER, Harness, dialplan

REPO = Path(__file__).resolve().parents[2]
NUMBER = "9434765919"  # a valid Modulus 11 number
BAD_CHECK = "9434765918"  # the same with a wrong check digit
INTER_DIGIT = 2.5  # not the default 3 s, so the tests show the setting is the one used
INVALID_CHOICE = "Sorry, that is not a valid choice."
NHS_PROMPT = "Please key the patient's ten digit NHS number, then the hash key."


def nhs_dialplan(mode: str = "required", **overrides: Any) -> Dialplan:
    """The harness dialplan with NHS capture on and a menu that has a '3'."""
    return dialplan(
        nhs_number=mode,
        ivr={"inter_digit_seconds": INTER_DIGIT, "max_attempts": 3},
        menu={
            "prompt": "Choose a specialty.",
            "options": [
                {"digits": "1", "specialty": "cardiology"},
                {"digits": "2", "specialty": "dermatology"},
                {"digits": "3", "specialty": "renal"},
            ],
        },
        **overrides,
    )


def at_nhs_prompt(mode: str = "required") -> Harness:
    """Greeting heard; the NHS prompt is playing."""
    h = Harness(nhs_dialplan(mode))
    h.send(Offered(GP_NUMBER))
    h.send(PromptDone(GP), after=4)
    assert h.flow.state is State.NHS
    return h


def after_nhs_prompt(mode: str = "required") -> Harness:
    h = at_nhs_prompt(mode)
    h.send(PromptDone(GP), after=5)
    return h


def key(h: Harness, keys: str, gap: float = 0.0) -> list[Any]:
    """Key each character, ``gap`` seconds apart; every effect, in order."""
    out: list[Any] = []
    for k in keys:
        out += h.send(Digit(GP, k), after=gap)
    return out


def texts(h: Harness, out: list[Any] | None = None) -> list[str]:
    """Every prompt text played to the GP, in order."""
    return [p.text for play in h.of(c.Play, out) if play.leg == GP for p in play.prompts]


def nhs_played_again(h: Harness, out: list[Any], why: str) -> None:
    [play] = h.of(c.Play, out)
    assert [p.text for p in play.prompts] == [why, h.dialplan.prompts.nhs_number.text]
    assert h.flow.state is State.NHS
    assert h.of(d.NhsNumberCaptured) == []


class TestHashEndsTheNumber:
    """'#' after ten digits takes the number; the menu is next and hears no '#'."""

    def test_ten_digits_then_hash_goes_to_the_menu(self) -> None:
        h = after_nhs_prompt()
        assert h.of(d.NhsNumberCaptured, key(h, NUMBER, gap=0.3)) == []  # not at the 10th digit
        assert h.flow.next_deadline() == pytest.approx(h.now + INTER_DIGIT)  # waits for '#'
        out = key(h, "#", gap=0.3)
        [captured] = h.of(d.NhsNumberCaptured, out)
        assert captured.nhs_number == NUMBER
        assert h.flow.state is State.MENU
        assert texts(h, out)[0] == "Choose a specialty."
        assert INVALID_CHOICE not in texts(h)

    def test_burst_with_the_menu_digit_takes_both(self) -> None:
        h = after_nhs_prompt()
        out = key(h, NUMBER + "#3")  # one burst, no time between keys
        [captured] = h.of(d.NhsNumberCaptured, out)
        assert captured.nhs_number == NUMBER
        [chosen] = h.of(d.SpecialtyChosen, out)
        assert chosen.specialty == "renal"
        assert h.flow.state is State.HUNTING
        assert c.StopPlay(GP) in out  # the '3' barged into the menu prompt
        assert INVALID_CHOICE not in texts(h)

    def test_digits_keyed_during_the_prompt_count(self) -> None:
        h = at_nhs_prompt()  # the NHS prompt is still playing
        out = key(h, NUMBER + "#", gap=0.2)
        assert out[0] == c.StopPlay(GP)
        assert h.of(d.NhsNumberCaptured, out)[0].nhs_number == NUMBER
        assert h.flow.state is State.MENU

    def test_a_second_hash_is_not_a_menu_choice(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER + "#")
        out = key(h, "#", gap=0.2)
        assert out == []  # dropped: no stop of the menu prompt, no re-prompt
        h.send(PromptDone(GP), after=8)
        out = key(h, "2", gap=1)
        assert h.of(d.SpecialtyChosen, out)[0].specialty == "dermatology"
        assert INVALID_CHOICE not in texts(h)

    def test_a_hash_in_the_menu_after_a_choice_key_is_still_checked(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER + "#")
        h.send(PromptDone(GP), after=8)
        out = key(h, "7#")  # '7' is no option; only the first key after the number is spared
        assert texts(h, out)[0] == INVALID_CHOICE


class TestPauseEndsTheNumber:
    """A GP who forgets the '#' is taken after the inter-digit timeout."""

    def test_ten_digits_then_timeout_is_accepted(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER, gap=0.4)
        assert h.flow.next_deadline() == pytest.approx(h.now + INTER_DIGIT)
        out = h.advance_to_deadline()
        [captured] = h.of(d.NhsNumberCaptured, out)
        assert captured.nhs_number == NUMBER
        assert h.flow.state is State.MENU
        assert texts(h, out)[0] == "Choose a specialty."

    def test_late_hash_after_the_timeout_is_dropped(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER)
        h.advance_to_deadline()  # taken; the menu starts
        out = h.send(Digit(GP, "#"), after=0.5)  # the '#' comes just too late
        assert out == []
        assert h.flow.state is State.MENU
        out = key(h, "1", gap=0.5)
        assert out[0] == c.StopPlay(GP)
        assert h.of(d.SpecialtyChosen, out)[0].specialty == "cardiology"
        assert INVALID_CHOICE not in texts(h)


class TestWrongEntries:
    """Too short, too long, a wrong check digit, a stray '*': said why, asked again."""

    def test_hash_before_ten_digits_is_too_short(self) -> None:
        h = after_nhs_prompt()
        out = key(h, NUMBER[:7] + "#")
        nhs_played_again(h, out, "That number is too short.")

    def test_pause_before_ten_digits_is_too_short(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER[:9])
        nhs_played_again(h, h.advance_to_deadline(), "That number is too short.")

    def test_hash_alone_is_too_short(self) -> None:
        h = after_nhs_prompt()
        nhs_played_again(h, key(h, "#"), "That number is too short.")

    def test_eleven_digits_then_hash_is_too_long(self) -> None:
        h = after_nhs_prompt()
        assert h.of(c.Play, key(h, NUMBER + "1")) == []  # judged at the end, not the 11th key
        nhs_played_again(h, key(h, "#"), "That number is too long.")

    def test_eleven_digits_then_timeout_is_too_long(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER + "3")  # e.g. the menu key pressed without the '#'
        nhs_played_again(h, h.advance_to_deadline(), "That number is too long.")

    def test_bad_check_digit_then_hash(self) -> None:
        h = after_nhs_prompt()
        nhs_played_again(h, key(h, BAD_CHECK + "#"), "That NHS number is not valid.")

    def test_bad_check_digit_then_timeout(self) -> None:
        h = after_nhs_prompt()
        key(h, BAD_CHECK)
        nhs_played_again(h, h.advance_to_deadline(), "That NHS number is not valid.")

    def test_star_after_digits_is_invalid(self) -> None:
        # The prompt offers '*' only to skip; it never says '*' starts again.
        h = after_nhs_prompt("optional")
        nhs_played_again(h, key(h, "943*"), "That NHS number is not valid.")

    def test_right_number_after_a_wrong_one(self) -> None:
        h = after_nhs_prompt()
        key(h, NUMBER[:5] + "#")
        out = key(h, NUMBER + "#", gap=0.3)  # barges into the re-prompt
        assert h.of(d.NhsNumberCaptured, out)[0].nhs_number == NUMBER
        assert h.flow.state is State.MENU

    def test_wrong_entries_use_up_the_attempts(self) -> None:
        h = after_nhs_prompt("required")
        key(h, "#")
        key(h, NUMBER + "12#")
        key(h, BAD_CHECK + "#")
        assert h.flow.state is State.FAREWELL
        assert h.of(d.NhsNumberCaptured) == []


class TestEntryBuffer:
    """The digit buffer itself."""

    def test_a_long_run_of_digits_stays_bounded(self) -> None:
        entry = NhsEntry(may_skip=False)
        for _ in range(10_000):
            entry.feed("4")
        assert len(entry.buffer) == 11
        assert entry.feed("#") == NhsTooLong("4" * 11)
        assert entry.buffer == ""


class TestPromptText:
    """What the prompt says is what the entry does."""

    def test_required_prompt_does_not_offer_to_skip(self) -> None:
        h = Harness(nhs_dialplan("required"))
        h.send(Offered(GP_NUMBER))
        out = h.send(PromptDone(GP), after=4)
        assert texts(h, out) == [NHS_PROMPT]

    def test_optional_prompt_offers_star_to_skip(self) -> None:
        h = Harness(nhs_dialplan("optional"))
        h.send(Offered(GP_NUMBER))
        out = h.send(PromptDone(GP), after=4)
        assert texts(h, out) == [NHS_PROMPT + " To skip, press the star key."]
        key(h, "*")
        assert h.flow.state is State.MENU

    def test_a_prompt_given_in_the_dialplan_is_kept(self) -> None:
        plan = nhs_dialplan(
            "required", prompts={"greeting": "Hello.", "nhs_number": "Key it, then hash."}
        )
        assert plan.prompts.nhs_number.text == "Key it, then hash."

    def test_shipped_dialplans_ask_for_the_hash(self) -> None:
        settings = load_settings(REPO / "config.yaml")
        plans = settings.dialplans.values()
        asking = [p for p in plans if p.nhs_number is not NhsNumberCapture.OFF]
        assert asking, "no shipped dialplan captures the NHS number"
        for plan in asking:
            text = plan.prompts.nhs_number.text
            assert "ten digit" in text
            assert "then the hash key" in text
            offers_skip = "star key" in text
            assert offers_skip == (plan.nhs_number is NhsNumberCapture.OPTIONAL), plan.area

    def test_shipped_barnet_line_takes_number_hash_and_menu_key(self) -> None:
        plan = load_settings(REPO / "config.yaml").dialplans["barnet"]
        h = Harness(plan)
        h.send(Offered(GP_NUMBER))
        h.send(PromptDone(GP), after=4)
        out = key(h, NUMBER + "#3", gap=0.1)
        assert h.of(d.NhsNumberCaptured, out)[0].nhs_number == NUMBER
        assert h.of(d.SpecialtyChosen, out)[0].specialty == "mental-health"
        assert INVALID_CHOICE not in texts(h)
