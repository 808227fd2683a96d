"""Who is on call: handoffs to the minute, DST weeks, restrictions, bank holidays, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.oncall.rota import UnknownTeamError, explain, on_call
from callrouter.settings.rota import Rotas
from tests.rota.helpers import (
    DAILY,
    LONDON,
    WEEKDAY_DAYS,
    WEEKLY,
    ids,
    london,
    rotas,
    team,
    utc,
    whys,
)

MINUTE = timedelta(minutes=1)


def who(r: Rotas, at: datetime) -> list[str]:
    return ids(on_call(r, "t", at))


def primary(r: Rotas, at: datetime) -> str | None:
    found = who(r, at)
    return found[0] if found else None


class TestDailyHandoff:
    """A daily 08:00 handoff: 07:59 the old member, 08:00 the new, in both DST weeks."""

    r = rotas(team(DAILY))

    def test_ordinary_day_exact_to_the_minute(self) -> None:
        # 2026-03-28 is day 82 after 5 January: 82 % 3 = 1 -> bob (day 81 -> ann).
        assert primary(self.r, london("2026-03-28 07:59")) == "ann"
        assert primary(self.r, london("2026-03-28 08:00")) == "bob"
        assert primary(self.r, london("2026-03-28 08:00") - timedelta(microseconds=1)) == "ann"

    def test_spring_forward_sunday_still_hands_off_at_0800_local(self) -> None:
        # 29 March 2026: clocks go forward at 01:00 GMT. 08:00 BST is 07:00 UTC.
        assert primary(self.r, utc("2026-03-29 06:59")) == "bob"
        assert primary(self.r, utc("2026-03-29 07:00")) == "cat"
        assert primary(self.r, london("2026-03-29 07:59")) == "bob"
        assert primary(self.r, london("2026-03-29 08:00")) == "cat"

    def test_monday_after_spring_change(self) -> None:
        assert primary(self.r, london("2026-03-30 07:59")) == "cat"
        assert primary(self.r, london("2026-03-30 08:00")) == "ann"

    def test_fall_back_sunday_hands_off_at_0800_local(self) -> None:
        # 25 October 2026: clocks go back at 01:00 UTC. 08:00 GMT is 08:00 UTC; 07:00 UTC
        # would have been 08:00 BST and must not hand off.
        assert primary(self.r, utc("2026-10-25 07:00")) == "bob"
        assert primary(self.r, utc("2026-10-25 07:59")) == "bob"
        assert primary(self.r, utc("2026-10-25 08:00")) == "cat"
        assert primary(self.r, london("2026-10-26 07:59")) == "cat"
        assert primary(self.r, london("2026-10-26 08:00")) == "ann"

    @pytest.mark.parametrize("first", ["2026-03-27 00:00", "2026-10-23 00:00"])
    def test_changes_only_at_0800_local_minute_by_minute(self, first: str) -> None:
        at = london(first).astimezone(UTC)
        end = at + timedelta(days=4)
        changes = []
        previous = primary(self.r, at)
        while at < end:
            current = primary(self.r, at)
            if current != previous:
                changes.append(at.astimezone(LONDON).strftime("%m-%d %H:%M"))
            previous = current
            at += MINUTE
        assert len(changes) == 4, changes
        assert all(change.endswith(" 08:00") for change in changes), changes

    def test_rotated_list_primary_then_backups_in_order(self) -> None:
        found = on_call(self.r, "t", london("2026-03-28 12:00"))  # bob's turn
        assert ids(found) == ["bob", "cat", "ann"]
        assert whys(found) == [
            "layer days (primary)",
            "layer days (backup 1)",
            "layer days (backup 2)",
        ]

    def test_before_the_rotation_starts_nobody(self) -> None:
        at = london("2026-01-05 07:59")
        assert who(self.r, at) == []
        assert explain(self.r, "t", at).layers[0].note == "starts 2026-01-05 08:00"
        assert primary(self.r, london("2026-01-05 08:00")) == "ann"

    def test_instant_in_another_zone_means_the_same_moment(self) -> None:
        at = london("2026-07-01 08:00")
        assert who(self.r, at) == who(self.r, at.astimezone(UTC))

    def test_naive_instant_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            on_call(self.r, "t", datetime(2026, 3, 28, 8))

    def test_unknown_team_is_a_lookup_error(self) -> None:
        with pytest.raises(UnknownTeamError, match="nope"):
            on_call(self.r, "nope", london("2026-03-28 08:00"))


class TestWeeklyRotation:
    """Weekly turns hand off on the weekday of ``start`` (Monday) at its time, across DST."""

    r = rotas(team(WEEKLY))

    def test_week_of_spring_change(self) -> None:
        # Week 11 after 5 January (from Mon 23 March): 11 % 4 = 3 -> dan, then ann.
        assert who(self.r, london("2026-03-23 08:00")) == ["dan", "ann", "bob", "cat"]
        assert primary(self.r, london("2026-03-23 07:59")) == "cat"
        assert primary(self.r, london("2026-03-29 03:00")) == "dan"  # Sunday, after the change
        assert primary(self.r, london("2026-03-30 07:59")) == "dan"
        assert primary(self.r, london("2026-03-30 08:00")) == "ann"

    def test_week_of_autumn_change(self) -> None:
        assert primary(self.r, london("2026-10-25 01:30")) == "bob"  # the repeated hour
        assert primary(self.r, utc("2026-10-25 01:30")) == "bob"  # its second occurrence
        assert primary(self.r, london("2026-10-26 07:59")) == "bob"
        assert primary(self.r, london("2026-10-26 08:00")) == "cat"

    def test_wraps_round_the_member_list(self) -> None:
        mondays = [london("2026-01-05 09:00") + timedelta(weeks=n) for n in range(6)]
        assert [primary(self.r, monday) for monday in mondays] == [
            "ann", "bob", "cat", "dan", "ann", "bob",
        ]

    def test_explain_names_the_turn_and_next_handoff(self) -> None:
        state = explain(self.r, "t", london("2026-03-25 12:00")).layers[0]
        assert state.applies
        assert state.note == "turn 12, hands off Mon 2026-03-30 08:00"


class TestOnCallCount:
    """``on_call: N`` keeps the first N of the rotated list: the primary and N-1 backups."""

    r = rotas(team(DAILY.replace("      rotation:", "      on_call: 2\n      rotation:")))

    def test_only_two_on_call(self) -> None:
        found = on_call(self.r, "t", london("2026-03-29 12:00"))  # cat's turn
        assert ids(found) == ["cat", "ann"]
        assert whys(found) == ["layer days (primary)", "layer days (backup 1)"]


class TestRestrictions:
    """A layer applies only inside its windows; a window may run past midnight."""

    r = rotas(team(WEEKDAY_DAYS))
    nights = rotas(
        team(
            """\
    - name: nights
      members: [dan, eve]
      rotation: {start: "2026-01-05 18:30", turn: daily}
      restrictions:
        - {days: [mon, tue, wed, thu, fri], from: "18:30", to: "08:00"}
"""
        )
    )

    def test_weekday_window_edges(self) -> None:
        assert who(self.r, london("2026-03-02 07:59")) == []
        assert who(self.r, london("2026-03-02 08:00")) != []
        assert who(self.r, london("2026-03-06 18:29")) != []
        assert who(self.r, london("2026-03-06 18:30")) == []
        assert who(self.r, london("2026-03-07 12:00")) == []  # Saturday

    def test_outside_its_hours_is_explained(self) -> None:
        state = explain(self.r, "t", london("2026-03-07 12:00")).layers[0]
        assert not state.applies
        assert state.note == "outside its hours"

    def test_window_crossing_midnight_belongs_to_the_day_it_starts(self) -> None:
        assert who(self.r, london("2026-03-02 18:29")) != []
        assert primary(self.nights, london("2026-03-02 18:29")) is None
        assert primary(self.nights, london("2026-03-02 18:30")) is not None
        assert primary(self.nights, london("2026-03-03 07:59")) is not None  # Monday's night
        assert primary(self.nights, london("2026-03-03 08:00")) is None
        assert primary(self.nights, london("2026-03-07 02:00")) is not None  # Friday's night
        assert primary(self.nights, london("2026-03-08 02:00")) is None  # Saturday's: not listed
        assert primary(self.nights, london("2026-03-09 02:00")) is None  # Sunday's: not listed

    def test_night_rotation_hands_off_at_1830(self) -> None:
        monday_night = primary(self.nights, london("2026-03-02 23:00"))
        tuesday_night = primary(self.nights, london("2026-03-03 23:00"))
        assert monday_night != tuesday_night
        assert primary(self.nights, london("2026-03-03 07:59")) == monday_night


class TestBankHolidays:
    """England bank holidays: ``skip`` layers are off all day, ``only`` layers only on them."""

    text = team(
        WEEKDAY_DAYS
        + """\
    - name: holidays
      members: [dan, eve]
      rotation: {start: "2026-01-01 09:00", turn: daily}
      restrictions:
        - {days: [mon, tue, wed, thu, fri, sat, sun], from: "09:00", to: "17:00"}
      bank_holidays: only
"""
    )
    r = rotas(text)

    def test_early_may_bank_holiday(self) -> None:
        # Monday 4 May 2026: the weekday layer skips, the holiday layer takes over 09:00-17:00.
        assert who(self.r, london("2026-05-04 08:30")) == []
        assert who(self.r, london("2026-05-04 08:59")) == []
        found = on_call(self.r, "t", london("2026-05-04 09:00"))
        assert set(ids(found)) == {"dan", "eve"}
        assert all(why.startswith("layer holidays") for why in whys(found))
        assert who(self.r, london("2026-05-04 16:59")) != []
        assert who(self.r, london("2026-05-04 17:00")) == []

    def test_day_after_is_ordinary(self) -> None:
        # Tuesday 5 May: week 17 after 5 January, 17 % 3 = 2 -> cat first.
        assert who(self.r, london("2026-05-05 09:00")) == ["cat", "ann", "bob"]

    def test_christmas_and_observed_boxing_day(self) -> None:
        assert set(who(self.r, london("2026-12-25 10:00"))) == {"dan", "eve"}
        assert set(who(self.r, london("2026-12-28 10:00"))) == {"dan", "eve"}  # Boxing Day (obs)
        assert who(self.r, london("2026-12-24 10:00")) == ["cat", "ann", "bob"]

    def test_skip_is_explained_with_the_holiday(self) -> None:
        state = explain(self.r, "t", london("2026-05-04 10:00")).layers[0]
        assert not state.applies
        assert state.note.startswith("not on bank holidays (")

    @pytest.mark.parametrize(
        "day",
        [
            "2026-03-17",  # St Patrick's Day: Northern Ireland only
            "2026-08-03",  # Summer bank holiday: Scotland only
            "2026-11-30",  # St Andrew's Day: Scotland only
        ],
    )
    def test_other_nations_holidays_are_ordinary_days(self, day: str) -> None:
        found = who(self.r, london(f"{day} 10:00"))
        assert found
        assert "dan" not in found

    def test_night_window_takes_the_holiday_rule_of_its_start_day(self) -> None:
        nights = rotas(
            team(
                """\
    - name: nights
      members: [dan]
      rotation: {start: "2026-01-05 18:30", turn: daily}
      restrictions:
        - {days: [mon, tue, wed, thu, fri, sat, sun], from: "18:30", to: "08:00"}
      bank_holidays: skip
"""
            )
        )
        assert who(nights, london("2026-05-04 20:00")) == []  # starts on the bank holiday
        assert who(nights, london("2026-05-05 07:59")) == []  # still the holiday's night
        assert who(nights, london("2026-05-03 23:00")) == ["dan"]  # Sunday night
        assert who(nights, london("2026-05-04 07:59")) == ["dan"]  # ... ends on the holiday


OVERRIDES = """\
    - from: "2026-03-02 08:00"
      to: "2026-03-09 08:00"
      member: eve
      replaces: bob
      reason: annual leave
"""


class TestOverrides:
    """Overrides begin and end exactly, replace in place or go first, and say so."""

    r = rotas(team(WEEKDAY_DAYS, OVERRIDES))

    def test_replacement_begins_exactly(self) -> None:
        # Week 8 (from 2 March): 8 % 3 = 2 -> cat, ann, bob.
        assert who(self.r, london("2026-03-02 07:59")) == []
        assert who(self.r, london("2026-02-27 18:29")) == ["bob", "cat", "ann"]
        found = on_call(self.r, "t", london("2026-03-02 08:00"))
        assert ids(found) == ["cat", "ann", "eve"]
        assert found[2].why == "override 2026-03-02 cover for bob: annual leave"

    def test_replacement_ends_exactly(self) -> None:
        assert who(self.r, london("2026-03-06 18:29")) == ["cat", "ann", "eve"]
        # The next week starts 9 March 08:00, the same minute the override ends.
        assert who(self.r, london("2026-03-09 08:00")) == ["ann", "bob", "cat"]

    def test_no_effect_while_the_replaced_member_is_not_on_call(self) -> None:
        result = explain(self.r, "t", london("2026-03-07 12:00"))  # Saturday: layer off
        assert result.candidates == ()
        assert result.overrides == (
            "override 2026-03-02 cover for bob: annual leave; no effect: bob is not on call",
        )

    def test_added_member_goes_first_for_exactly_its_window(self) -> None:
        r = rotas(
            team(
                WEEKDAY_DAYS,
                """\
    - {from: "2026-03-03 12:00", to: "2026-03-03 14:00", member: dan}
""",
            )
        )
        assert who(r, london("2026-03-03 11:59")) == ["cat", "ann", "bob"]
        found = on_call(r, "t", london("2026-03-03 12:00"))
        assert ids(found) == ["dan", "cat", "ann", "bob"]
        assert found[0].why == "override 2026-03-03 added"
        assert who(r, london("2026-03-03 13:59")) == ["dan", "cat", "ann", "bob"]
        assert who(r, london("2026-03-03 14:00")) == ["cat", "ann", "bob"]

    def test_added_member_already_on_call_moves_first(self) -> None:
        r = rotas(team(WEEKDAY_DAYS, '    - {from: "2026-03-03 12:00", to: "2026-03-04 00:00", '
                                     "member: bob, reason: on site}\n"))
        found = on_call(r, "t", london("2026-03-03 12:00"))
        assert ids(found) == ["bob", "cat", "ann"]
        assert found[0].why == "override 2026-03-03 added: on site"

    def test_override_may_put_someone_on_outside_every_layer(self) -> None:
        r = rotas(team(WEEKDAY_DAYS, '    - {from: "2026-03-07 00:00", to: "2026-03-08 00:00", '
                                     "member: eve}\n"))
        assert who(r, london("2026-03-07 12:00")) == ["eve"]

    def test_ending_in_the_repeated_autumn_hour_ends_once(self) -> None:
        r = rotas(team(DAILY, '    - {from: "2026-10-24 12:00", to: "2026-10-25 01:30", '
                              "member: dan}\n"))
        assert who(r, utc("2026-10-25 00:29"))[0] == "dan"  # 01:29 BST
        assert who(r, utc("2026-10-25 00:30"))[0] != "dan"  # 01:30 BST: ended
        assert who(r, utc("2026-10-25 01:29"))[0] != "dan"  # 01:29 GMT: stays ended


class TestLayersAndDeduplication:
    """Layers in order; a member on call in two layers keeps their first place."""

    def test_first_place_kept(self) -> None:
        r = rotas(
            team(
                """\
    - name: leads
      members: [cat]
      rotation: {start: "2026-01-05 08:00", turn: weekly}
"""
                + DAILY
            )
        )
        found = on_call(r, "t", london("2026-03-28 12:00"))  # days: bob, cat, ann
        assert ids(found) == ["cat", "bob", "ann"]
        assert whys(found) == ["layer leads (primary)", "layer days (primary)",
                               "layer days (backup 2)"]


class TestSameAnswerInAnyZone:
    """The instant matters, not the zone it is written in (PEP 495 equality pitfalls included)."""

    r = rotas(team(WEEKDAY_DAYS, OVERRIDES))

    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=0, max_value=366 * 24 * 60))
    def test_utc_and_london_agree(self, minutes: int) -> None:
        at = utc("2026-01-01 00:00") + timedelta(minutes=minutes)
        assert on_call(self.r, "t", at) == on_call(self.r, "t", at.astimezone(LONDON))

    @pytest.mark.parametrize("fold", [0, 1])
    def test_repeated_autumn_hour_both_folds(self, fold: int) -> None:
        at = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON, fold=fold)
        assert on_call(self.r, "t", at) == on_call(self.r, "t", at.astimezone(UTC))
