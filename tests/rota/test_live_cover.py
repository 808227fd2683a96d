"""Live overrides as data: checked with the rota loader's own rules, merged without touching the
files' rotas; availability marks that expire. Pure: every instant is given."""

from __future__ import annotations

from datetime import datetime

import pytest

from callrouter.core.availability import AvailabilityMarks, Mark, TooManyMarksError
from callrouter.oncall.live_cover import (
    CoverRejectedError,
    LiveOverride,
    check_live,
    choose_team,
    usable,
    with_live_overrides,
)
from callrouter.oncall.rota import explain
from callrouter.settings.rota import Override, Rotas
from tests.rota.helpers import ids, london, rotas

ROTA = """
members:
  - {id: ann, name: Dr A. Ash, uri: "sip:ann@127.0.0.1:5070", specialties: [dermatology]}
  - {id: bob, name: Dr B. Birch, uri: "sip:bob@127.0.0.1:5070", specialties: [dermatology]}
  - {id: cat, name: Dr C. Cedar, uri: "sip:cat@127.0.0.1:5070", specialties: [dermatology]}
  - {id: kim, name: Dr K. Kay, uri: "sip:kim@127.0.0.1:5070", specialties: [cardiology]}
teams:
  - id: derm-local
    specialty: dermatology
    kind: local
    name: Local dermatology
    layers:
      - name: days
        members: [ann, bob]
        rotation: {start: "2026-01-05 08:00", turn: daily, handoff: "08:00"}
  - id: derm-ncn
    specialty: dermatology
    kind: ncn
    name: NCN dermatology
    layers:
      - name: all
        members: [cat]
        rotation: {start: "2026-01-05 08:00", turn: weekly}
  - id: card-local
    specialty: cardiology
    kind: local
    name: Local cardiology
    layers:
      - name: all
        members: [kim]
        rotation: {start: "2026-01-05 08:00", turn: weekly}
"""

NOW = london("2026-03-10 12:00")  # a Tuesday; ann's day (turn 65 of ann, bob)


def the_rotas() -> Rotas:
    return rotas(ROTA)


def live(
    member: str = "cat",
    *,
    team: str = "derm-local",
    specialty: str = "dermatology",
    start: str = "2026-03-10 09:00",
    end: str = "2026-03-10 18:00",
    replaces: str | None = None,
    oid: str = "r1",
) -> LiveOverride:
    override = Override.model_validate(
        {"from": start, "to": end, "member": member, "replaces": replaces, "reason": "sick"}
    )
    return LiveOverride(oid, team, specialty, override, "rota-app")


class TestCheck:
    """A live override passes exactly the checks a YAML one does, and a few of its own."""

    def test_a_good_override_passes(self) -> None:
        check_live(the_rotas(), live(), NOW)

    @pytest.mark.parametrize(
        ("bad", "words"),
        [
            (live("zed"), "no member has id 'zed'"),
            (live("kim"), "lists specialties cardiology, not dermatology"),
            (live(replaces="zed"), "no member has id 'zed'"),
            (live(team="nope"), "no team has id 'nope'"),
            (live(team="card-local"), "answers cardiology, not dermatology"),
            (live(end="2026-03-10 11:00"), "has already passed"),
            (live(start="2026-03-29 01:30", end="2026-03-29 09:00"), "clocks go forward"),
        ],
    )
    def test_refused_with_the_reason(self, bad: LiveOverride, words: str) -> None:
        with pytest.raises(CoverRejectedError, match=words):
            check_live(the_rotas(), bad, NOW)

    def test_team_is_chosen_from_the_member_when_not_given(self) -> None:
        assert choose_team(the_rotas(), "dermatology", "ann", None).id == "derm-local"
        assert choose_team(the_rotas(), "dermatology", "cat", None).id == "derm-ncn"

    def test_team_must_be_named_when_the_member_is_in_none(self) -> None:
        with pytest.raises(CoverRejectedError, match=r"give 'team'.*derm-local, derm-ncn"):
            choose_team(the_rotas(), "dermatology", "kim", None)

    def test_usable_splits_with_reasons(self) -> None:
        good, bad = usable(the_rotas(), [live(), live("zed", oid="r2")], NOW)
        assert [x.override_id for x in good] == ["r1"]
        assert [(x.override_id, why) for x, why in bad] == [("r2", "no member has id 'zed'")]


class TestMerge:
    """The merged rotas change who is on call; the files' rotas are untouched."""

    def test_added_member_is_put_first(self) -> None:
        base = the_rotas()
        merged = with_live_overrides(base, [live()])
        assert ids(explain(base, "derm-local", NOW.astimezone(base.zone)).candidates) == [
            "ann",
            "bob",
        ]
        found = explain(merged, "derm-local", NOW).candidates
        assert ids(found) == ["cat", "ann", "bob"]
        assert found[0].why == "override 2026-03-10 added: live r1 by rota-app: sick"
        assert len(base.teams["derm-local"].overrides) == 0

    def test_replacing_takes_the_place(self) -> None:
        merged = with_live_overrides(the_rotas(), [live(replaces="ann")])
        assert ids(explain(merged, "derm-local", NOW).candidates) == ["cat", "bob"]

    def test_outside_its_window_it_changes_nothing(self) -> None:
        merged = with_live_overrides(the_rotas(), [live()])
        evening = london("2026-03-10 18:00")
        assert ids(explain(merged, "derm-local", evening).candidates) == ["ann", "bob"]

    def test_no_overrides_gives_the_same_rotas(self) -> None:
        base = the_rotas()
        assert with_live_overrides(base, []) is base


T0 = datetime(2026, 3, 10, 12, 0).timestamp()


class TestMarks:
    """Availability marks: until expires them, by the clock handed in."""

    def test_mark_without_until_stays(self) -> None:
        marks = AvailabilityMarks(10)
        assert marks.set("ann", Mark(available=False), T0)
        assert not marks.is_available("ann", T0 + 10**6)

    def test_mark_expires_at_until_and_is_dropped(self) -> None:
        marks = AvailabilityMarks(10)
        marks.set("ann", Mark(available=False, until=T0 + 60), T0)
        assert not marks.is_available("ann", T0 + 59.9)
        assert marks.is_available("ann", T0 + 60)
        assert len(marks) == 0

    def test_an_expired_mark_clears(self) -> None:
        marks = AvailabilityMarks(10)
        marks.set("ann", Mark(available=False), T0)
        assert marks.set("ann", Mark(available=False, until=T0 - 1), T0)
        assert marks.is_available("ann", T0)

    def test_same_mark_again_is_no_change(self) -> None:
        marks = AvailabilityMarks(10)
        assert marks.set("ann", Mark(False, T0 + 60, "x"), T0)
        assert not marks.set("ann", Mark(False, T0 + 60, "y"), T0 + 1)
        assert marks.set("ann", Mark(False, T0 + 120, "y"), T0 + 1)

    def test_bound_makes_room_from_expired_marks_only(self) -> None:
        marks = AvailabilityMarks(2)
        marks.set("ann", Mark(False, T0 + 5), T0)
        marks.set("bob", Mark(False), T0)
        with pytest.raises(TooManyMarksError):
            marks.set("cat", Mark(False), T0)
        marks.set("cat", Mark(False), T0 + 5)  # ann's expired: room
        assert marks.snapshot(T0 + 5) == {"bob": False, "cat": False}
