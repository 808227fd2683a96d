"""Pydantic errors mapped to file:line:col, with messages a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from callrouter.settings.base import Frozen
from callrouter.settings.dialplan import Dialplan, Slug
from callrouter.settings.errors import ConfigError, ConfigIssue, FieldError
from callrouter.settings.source import format_loc, read_model


class Leaf(Frozen):
    size: Annotated[int, Field(ge=1)]
    name: Slug = "a"


class Pair(Frozen):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high <= self.low:
            raise FieldError("must be above low", "high")
        return self


class Root(Frozen):
    leaves: tuple[Leaf, ...] = ()
    by_name: dict[Slug, Leaf] = Field(default_factory=dict)
    pair: Pair | None = None
    title: str


def issues_of(tmp_path: Path, text: str, model: type[BaseModel] = Root) -> list[ConfigIssue]:
    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    source, issues = read_model(path, model)
    assert source is None
    return issues


def brief(issues: list[ConfigIssue]) -> list[tuple[int | None, int | None, str, str]]:
    return [(i.line, i.col, i.field, i.message) for i in issues]


class TestMapping:
    """Each pydantic error lands on the node it is about."""

    def test_value_error_at_the_value(self, tmp_path: Path) -> None:
        text = "title: t\nleaves:\n  - size: 0\n"
        assert brief(issues_of(tmp_path, text)) == [
            (3, 11, "leaves[0].size", "Input should be greater than or equal to 1, not '0'")
        ]

    def test_unknown_field_at_its_key(self, tmp_path: Path) -> None:
        text = "title: t\nleaves:\n  - size: 1\n    colour: red\n"
        assert brief(issues_of(tmp_path, text)) == [
            (4, 5, "leaves[0].colour", "unknown field (known: size, name)")
        ]

    def test_unknown_field_suggests_the_close_one(self, tmp_path: Path) -> None:
        text = "title: t\nleaves:\n  - size: 1\n    nmae: x\n"
        assert brief(issues_of(tmp_path, text))[0][3] == "unknown field (did you mean 'name'?)"

    def test_missing_field_at_the_parent_mapping(self, tmp_path: Path) -> None:
        text = "title: t\nleaves:\n  - name: x\n"
        assert brief(issues_of(tmp_path, text)) == [
            (3, 5, "leaves[0].size", "required field missing")
        ]

    def test_missing_top_level_field_at_the_first_key(self, tmp_path: Path) -> None:
        text = "# comment\nleaves: []\n"
        assert brief(issues_of(tmp_path, text)) == [(2, 1, "title", "required field missing")]

    def test_dict_key_error_at_the_key(self, tmp_path: Path) -> None:
        text = "title: t\nby_name:\n  Big: {size: 1}\n"
        issues = issues_of(tmp_path, text)
        assert brief(issues)[0][:3] == (3, 3, "by_name.Big")
        assert "lowercase id" in issues[0].message

    def test_model_validator_with_field_error_at_the_field(self, tmp_path: Path) -> None:
        text = "title: t\npair:\n  low: 5\n  high: 2\n"
        assert brief(issues_of(tmp_path, text)) == [(4, 9, "pair.high", "must be above low")]

    def test_wrong_shape_at_the_value(self, tmp_path: Path) -> None:
        text = "title: t\nleaves: many\n"
        assert brief(issues_of(tmp_path, text)) == [
            (2, 9, "leaves", "Input should be a valid tuple, not 'many'")
        ]

    def test_all_errors_at_once(self, tmp_path: Path) -> None:
        text = "leaves:\n  - size: 0\n  - size: x\nextra: 1\n"
        fields = [issue.field for issue in issues_of(tmp_path, text)]
        assert sorted(fields) == ["extra", "leaves[0].size", "leaves[1].size", "title"]

    def test_duplicate_key_and_model_errors_together(self, tmp_path: Path) -> None:
        text = "title: t\ntitle: u\nleaves:\n  - size: 0\n"
        assert [(i.line, i.message.split(" (")[0]) for i in issues_of(tmp_path, text)] == [
            (2, "duplicate key 'title'"),
            (4, "Input should be greater than or equal to 1, not '0'"),
        ]


class TestDialplanLocations:
    """hunt_defaults values are reported once where written; a digit clash at its option."""

    DIALPLAN = """\
area: barnet
name: Barnet
numbers: ["02080000001"]
prompts: {greeting: Hello}
menu:
  options:
    - {digits: "1", specialty: cardiology}
hunt_defaults:
  ring_seconds: 2
specialties:
  cardiology: {tiers: [barnet-cardiology]}
  dermatology: {tiers: [barnet-dermatology]}
"""

    def test_reported_once_at_hunt_defaults(self, tmp_path: Path) -> None:
        assert brief(issues_of(tmp_path, self.DIALPLAN, Dialplan)) == [
            (
                9,
                17,
                "hunt_defaults.ring_seconds",
                "Input should be greater than or equal to 5, not '2'",
            )
        ]

    def test_unknown_default_reported_once(self, tmp_path: Path) -> None:
        text = self.DIALPLAN.replace("ring_seconds: 2", "ring_secs: 20")
        assert brief(issues_of(tmp_path, text, Dialplan)) == [
            (9, 3, "hunt_defaults.ring_secs", "unknown field (did you mean 'ring_seconds'?)")
        ]

    def test_digit_clash_points_at_the_second_option(self, tmp_path: Path) -> None:
        text = self.DIALPLAN.replace(
            '    - {digits: "1", specialty: cardiology}\n',
            '    - {digits: "1", specialty: cardiology}\n'
            '    - {digits: "2", specialty: dermatology}\n'
            '    - {digits: "1", specialty: dermatology}\n',
        ).replace("ring_seconds: 2", "ring_seconds: 20")
        assert brief(issues_of(tmp_path, text, Dialplan)) == [
            (9, 16, "menu.options[2].digits", "two options on digits '1'")
        ]


class TestFileProblems:
    """A missing file is an issue without a line; an unreadable or empty one is at 1:1, a bad
    byte at its own line:col."""

    def test_missing_file(self, tmp_path: Path) -> None:
        source, issues = read_model(tmp_path / "absent.yaml", Root)
        assert source is None
        assert brief(issues) == [(None, None, "", "file not found")]

    def test_empty_file(self, tmp_path: Path) -> None:
        assert brief(issues_of(tmp_path, "# only a comment\n")) == [(1, 1, "", "the file is empty")]

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "file.yaml"
        path.write_bytes(b"title: \xff\n")
        _, issues = read_model(path, Root)
        assert brief(issues) == [
            (1, 8, "", "not UTF-8: byte 0xff is not valid UTF-8 (save the file as UTF-8)")
        ]

    def test_top_level_list(self, tmp_path: Path) -> None:
        issues = issues_of(tmp_path, "- a\n- b\n")
        assert brief(issues)[0][:2] == (1, 1)


class TestFormatting:
    """Locs and issues read the way editors link them."""

    def test_format_loc(self) -> None:
        assert format_loc(("menu", "options", 3, "submenu", "options", 0, "digits")) == (
            "menu.options[3].submenu.options[0].digits"
        )

    def test_issue_str(self, tmp_path: Path) -> None:
        issue = ConfigIssue(tmp_path / "a.yaml", 3, 7, "sip.listen_port", "too big")
        assert str(issue) == f"{tmp_path / 'a.yaml'}:3:7: sip.listen_port: too big"

    def test_warning_str_without_field(self, tmp_path: Path) -> None:
        issue = ConfigIssue(tmp_path / "a.yaml", 1, 1, "", "odd", "warning")
        assert str(issue) == f"{tmp_path / 'a.yaml'}:1:1: warning: odd"

    def test_error_lists_in_reading_order(self, tmp_path: Path) -> None:
        late = ConfigIssue(tmp_path / "b.yaml", 9, 1, "", "late")
        early = ConfigIssue(tmp_path / "b.yaml", 2, 1, "", "early")
        other = ConfigIssue(tmp_path / "a.yaml", 5, 1, "", "other")
        error = ConfigError([late, other, early], files=[tmp_path / "b.yaml"])
        assert error.issues == (early, late, other)
        assert str(error).splitlines()[0] == "3 configuration errors"
