"""YAML to data with marks: scalars typed by the schema, duplicate keys refused, locs found."""

from __future__ import annotations

import pytest

from callrouter.settings.yaml_marks import (
    Position,
    YamlDocument,
    locate,
    parse_yaml,
    position_for,
)

TEXT = """\
sip:
  listen_port: 5060
  trunk_allow:
    - 10.0.0.0/8
    - 192.168.0.0/16
menu:
  options:
    - {digits: "1", specialty: cardiology}
    - digits: "2"
      specialty: dermatology
empty:
"""


def parsed(text: str = TEXT) -> YamlDocument:
    document, problems = parse_yaml(text)
    assert problems == []
    assert document is not None
    assert document.root is not None
    return document


class TestScalars:
    """Plain scalars stay strings for pydantic to type; only null forms become None."""

    @pytest.mark.parametrize(
        "written",
        ["18:30", "no", "off", "yes", "02070000001", "+442080000001", "1e3", "2026-03-29", "0o17"],
    )
    def test_plain_scalar_is_kept_as_written(self, written: str) -> None:
        document, _ = parse_yaml(f"value: {written}\n")
        assert document is not None
        assert document.data == {"value": written}

    @pytest.mark.parametrize("written", ["", "~", "null", "Null", "NULL"])
    def test_null_forms(self, written: str) -> None:
        document, _ = parse_yaml(f"value: {written}\n")
        assert document is not None
        assert document.data == {"value": None}

    def test_quoted_null_is_a_string(self) -> None:
        document, _ = parse_yaml('value: "null"\n')
        assert document is not None
        assert document.data == {"value": "null"}

    def test_nested_structure(self) -> None:
        assert parsed().data == {
            "sip": {"listen_port": "5060", "trunk_allow": ["10.0.0.0/8", "192.168.0.0/16"]},
            "menu": {
                "options": [
                    {"digits": "1", "specialty": "cardiology"},
                    {"digits": "2", "specialty": "dermatology"},
                ]
            },
            "empty": None,
        }


class TestRefused:
    """What PyYAML would accept silently is a problem here, at its own mark."""

    def test_duplicate_key_at_second_key(self) -> None:
        document, problems = parse_yaml("a: 1\nb:\n  c: 2\n  c: 3\n")
        assert [(p.position, p.message) for p in problems] == [
            (Position(4, 3), "duplicate key 'c' (first at line 3, column 3)")
        ]
        assert document is not None
        assert document.data == {"a": "1", "b": {"c": "2"}}  # the first value is kept

    def test_every_duplicate_reported(self) -> None:
        _, problems = parse_yaml("a: 1\na: 2\nb: 1\nb: 2\n")
        assert [p.position for p in problems] == [Position(2, 1), Position(4, 1)]

    def test_merge_key(self) -> None:
        _, problems = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n")
        assert [(p.position, p.message) for p in problems] == [
            (Position(3, 3), "merge keys ('<<') are not supported")
        ]

    def test_unknown_tag(self) -> None:
        _, problems = parse_yaml("a: !include other.yaml\n")
        assert len(problems) == 1
        assert problems[0].position == Position(1, 4)
        assert "unsupported YAML tag '!include'" in problems[0].message

    def test_alias_to_own_parent(self) -> None:
        _, problems = parse_yaml("a: &x [1, *x]\n")
        assert [p.message for p in problems] == ["an alias refers to its own parent"]

    def test_syntax_error_has_its_mark(self) -> None:
        document, problems = parse_yaml("a: 1\nb: c: d\n")
        assert document is None
        assert problems[0].position == Position(2, 5)
        assert problems[0].message == "YAML syntax: mapping values are not allowed in this context"

    def test_unclosed_flow_names_where_it_started(self) -> None:
        _, problems = parse_yaml("a: [1, 2\nb: 3\n")
        assert problems[0].position == Position(2, 2)
        assert "while parsing a flow sequence at line 1, column 4" in problems[0].message

    def test_tab_indentation(self) -> None:
        _, problems = parse_yaml("a:\n\tb: 1\n")
        assert problems[0].position is not None
        assert problems[0].position.line == 2

    def test_empty_document(self) -> None:
        document, problems = parse_yaml("# nothing\n")
        assert problems == []
        assert document is not None
        assert document.root is None


class TestLocate:
    """A pydantic loc is followed down the node tree to a 1-based line:col."""

    def where(self, loc: tuple[str | int, ...], *, at_key: bool = False) -> Position:
        root = parsed().root
        assert root is not None
        return position_for(locate(root, loc), at_key=at_key)

    def test_scalar_value(self) -> None:
        assert self.where(("sip", "listen_port")) == Position(2, 16)

    def test_list_item(self) -> None:
        assert self.where(("sip", "trunk_allow", 1)) == Position(5, 7)

    def test_flow_mapping_value(self) -> None:
        assert self.where(("menu", "options", 0, "specialty")) == Position(8, 32)

    def test_mapping_value_points_at_its_key(self) -> None:
        assert self.where(("sip",)) == Position(1, 1)

    def test_list_item_mapping_points_at_its_first_key(self) -> None:
        assert self.where(("menu", "options", 1)) == Position(9, 7)

    def test_unknown_field_points_at_the_key(self) -> None:
        assert self.where(("menu", "options", 1, "specialty"), at_key=True) == Position(10, 7)

    def test_missing_key_points_at_the_parent(self) -> None:
        root = parsed().root
        assert root is not None
        located = locate(root, ("menu", "options", 1, "label"))
        assert not located.complete
        assert located.matched == ("menu", "options", 1)
        assert position_for(located) == Position(9, 7)

    def test_index_past_the_end_points_at_the_list(self) -> None:
        assert self.where(("sip", "trunk_allow", 7)) == Position(3, 3)

    def test_pydantic_tags_are_skipped(self) -> None:
        root = parsed().root
        assert root is not None
        located = locate(root, ("sip", "function-after[check()]", "listen_port"))
        assert located.complete
        assert located.matched == ("sip", "listen_port")
        assert position_for(located) == Position(2, 16)

    def test_key_marker_points_at_the_key(self) -> None:
        root = parsed().root
        assert root is not None
        located = locate(root, ("sip", "listen_port", "[key]"))
        assert position_for(located, at_key=True) == Position(2, 3)

    def test_null_value_still_has_a_mark(self) -> None:
        assert self.where(("empty",)) == Position(11, 7)
