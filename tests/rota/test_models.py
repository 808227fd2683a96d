"""Rota models refuse what would be silently wrong: bad URIs, zoned or numeric times, clashes."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from callrouter.settings.rota import Layer, Member, Override, Restriction, RotaFile, Rotas, Rotation
from tests.rota.helpers import MEMBERS, rota_file, rotas, team


def member(uri: str) -> Member:
    return Member.model_validate({"id": "m-1", "name": "Dr X", "uri": uri})


class TestMemberUri:
    """sip:, sips: and E.164 tel: URIs are accepted; anything else is refused."""

    @pytest.mark.parametrize(
        "uri",
        [
            "sip:m-derm-barnet-1@127.0.0.1:5070",
            "sip:alice@example.org",
            "sips:alice@example.org:5061;transport=tls",
            "sip:bob@[::1]:5070",
            "tel:+442079460001",
        ],
    )
    def test_accepted(self, uri: str) -> None:
        assert member(uri).uri == uri

    @pytest.mark.parametrize(
        ("uri", "words"),
        [
            ("tel:02079460001", "E.164"),
            ("tel:+44 20 7946 0001", "E.164"),
            ("tel:+44", "E.164"),
            ("http://example.org", "sip:user@host"),
            ("sip:example.org", "sip:user@host"),
            ("sip:a@b:99999", "out of range"),
            ("sip:a b@host", "sip:user@host"),
        ],
    )
    def test_refused(self, uri: str, words: str) -> None:
        with pytest.raises(ValidationError, match=words):
            member(uri)


class TestTimes:
    """Rota times are local wall-clock, written as text."""

    def test_base_sixty_number_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="quoted"):
            Restriction.model_validate({"days": ["mon"], "from": 1110, "to": "20:00"})

    def test_time_with_zone_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="without a zone"):
            Restriction.model_validate({"days": ["mon"], "from": "08:00+01:00", "to": "20:00"})

    def test_datetime_with_offset_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="without an offset"):
            Rotation.model_validate({"start": "2026-01-05T08:00:00+00:00", "turn": "daily"})

    def test_handoff_must_be_the_time_of_start(self) -> None:
        with pytest.raises(ValidationError, match="not at the handoff time 09:00"):
            Rotation.model_validate(
                {"start": "2026-01-05 08:00", "turn": "daily", "handoff": "09:00"}
            )

    def test_handoff_defaults_to_start(self) -> None:
        rotation = Rotation.model_validate({"start": "2026-01-05 08:00", "turn": "weekly"})
        assert rotation.handoff_time == time(8, 0)
        assert rotation.step_days == 7

    def test_restriction_by_python_name_or_yaml_key(self) -> None:
        by_key = Restriction.model_validate({"days": ["mon"], "from": "18:30", "to": "08:00"})
        by_name = Restriction(days=("mon",), from_=time(18, 30), to=time(8))
        assert by_key == by_name
        assert by_key.crosses_midnight


class TestLayer:
    """A layer is a rotation or a calendar, never both, never neither."""

    base: dict[str, Any] = {  # noqa: RUF012 - read-only test data
        "name": "days",
        "members": ["a", "b"],
        "rotation": {"start": "2026-01-05 08:00", "turn": "daily"},
    }

    def test_rotation_layer(self) -> None:
        assert Layer.model_validate(self.base).ics is None

    def test_ics_layer_from_a_path(self) -> None:
        layer = Layer.model_validate({"name": "cal", "ics": "cover.ics"})
        assert layer.ics is not None
        assert layer.ics.path == "cover.ics"
        assert layer.ics.shifts is None  # read by the loader, not the model

    def test_ics_layer_with_members_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="an ics layer takes no"):
            Layer.model_validate({**self.base, "ics": "cover.ics"})

    def test_neither_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="give 'members' and 'rotation', or 'ics'"):
            Layer.model_validate({"name": "empty"})

    def test_on_call_more_than_members_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="on_call 3 is more than the 2 members"):
            Layer.model_validate({**self.base, "on_call": 3})

    def test_member_twice_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="listed twice"):
            Layer.model_validate({**self.base, "members": ["a", "a"]})

    def test_unknown_field_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="handof"):
            Layer.model_validate({**self.base, "handof": "08:00"})


class TestOverride:
    """An override needs a real window and a different member."""

    def test_to_before_from_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="'to' must be after 'from'"):
            Override.model_validate(
                {"from": "2026-03-02 08:00", "to": "2026-03-02 08:00", "member": "a"}
            )

    def test_self_replacement_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="cannot replace themself"):
            Override.model_validate(
                {"from": "2026-03-02", "to": "2026-03-03", "member": "a", "replaces": "a"}
            )

    def test_why_names_date_cover_and_reason(self) -> None:
        override = Override.model_validate(
            {"from": "2026-03-02 08:00", "to": "2026-03-09 08:00", "member": "a",
             "replaces": "m-derm-3", "reason": "annual leave"}
        )
        assert override.why() == "override 2026-03-02 cover for m-derm-3: annual leave"
        assert override.from_ == datetime(2026, 3, 2, 8, 0)


class TestFilesAndMerge:
    """Ids are unique within a file and across files; layer names within a team."""

    def test_duplicate_member_in_a_file(self) -> None:
        with pytest.raises(ValidationError, match="member 'ann' is defined twice"):
            rota_file(MEMBERS + '  - {id: ann, name: Again, uri: "sip:ann@127.0.0.1"}\n')

    def test_duplicate_across_files(self) -> None:
        with pytest.raises(ValueError, match="member 'ann' is defined again"):
            rotas(MEMBERS, MEMBERS)

    def test_duplicate_layer_names(self) -> None:
        layer = """\
    - name: same
      members: [ann]
      rotation: {start: "2026-01-05 08:00", turn: daily}
"""
        with pytest.raises(ValidationError, match="two layers are named 'same'"):
            rota_file(team(layer + layer))

    def test_unknown_time_zone(self) -> None:
        with pytest.raises(ValidationError, match="unknown time zone"):
            Rotas(timezone="Europe/Barnet")

    def test_merge_indexes_by_id(self) -> None:
        merged = rotas(team("""\
    - name: days
      members: [ann]
      rotation: {start: "2026-01-05 08:00", turn: daily}
"""))
        assert set(merged.members) == {"ann", "bob", "cat", "dan", "eve"}
        assert [t.id for t in merged.teams_for("dermatology")] == ["t"]
        assert merged.zone.key == "Europe/London"

    def test_empty_file_is_valid(self) -> None:
        assert RotaFile.model_validate({}) == RotaFile()
