"""YAML text → plain Python data, keeping the composed node tree so any value can be traced back
to its ``line:col``.

Values are typed by the schema, not by YAML 1.1's guesses: every plain scalar becomes a string
(pydantic then turns ``"18"`` into a float, ``"no"`` into a bool, ``"08:00"`` into a time where
the model asks for one), except the null forms (``~``, ``null``, empty). So ``18:30`` is never the
base-60 integer 1110, ``nhs_number: off`` is never ``False`` and ``02070000001`` is never octal.
PyYAML silently keeps the last of two equal keys; here the second is an error at its own mark.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callrouter.settings.errors import Loc
from callrouter.settings.text_file import position_at

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_STANDARD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _STANDARD + name for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)
# Aliases can multiply a small file into a huge structure ("billion laughs"); a config never
# needs more than this many values.
MAX_VALUES = 200_000
# Lists and mappings inside one another; the shipped files go 8 deep. Composing, building and
# validating recurse once per level, so the limit is checked before any of them runs.
MAX_DEPTH = 50
_TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
_FAST: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column."""

    line: int
    col: int


@dataclass(frozen=True, slots=True)
class YamlProblem:
    position: Position | None
    message: str


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed file: ``data`` for the models, ``root`` to find where each value was written."""

    root: Node | None
    data: object


def parse_yaml(text: str) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Parse one YAML document. Returns the document (None on a syntax error or nesting deeper
    than ``MAX_DEPTH``) and every problem found: a syntax error, or each duplicate key, merge key
    and unsupported tag.

    libyaml does the work when it is there; a text it refuses is parsed again by PyYAML, whose
    messages say more (``found character '\\t'`` rather than ``found a tab character``)."""
    try:
        return _parse(text, _FAST)
    except yaml.YAMLError:
        pass
    try:
        return _parse(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc)]
    except yaml.reader.ReaderError as exc:
        return None, [
            YamlProblem(Position(*position_at(text, exc.position)), str(exc).splitlines()[0])
        ]
    except yaml.YAMLError as exc:  # no mark to give: the file as a whole
        return None, [YamlProblem(Position(1, 1), str(exc))]


def _parse(text: str, loader: type[Any]) -> tuple[YamlDocument | None, list[YamlProblem]]:
    """Check the nesting depth on the event stream (which the parser builds without recursion),
    then compose (which recurses once per level, so only a bounded depth reaches it)."""
    too_deep = _too_deep(yaml.parse(text, Loader=loader))
    if too_deep is not None:
        return None, [too_deep]
    root = yaml.compose(text, Loader=loader)
    if root is None:
        return YamlDocument(None, None), []
    builder = _Builder()
    data = builder.build(root)
    return YamlDocument(root, data), builder.problems


def _too_deep(events: Iterable[yaml.Event]) -> YamlProblem | None:
    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return YamlProblem(_mark(mark) if mark is not None else None, _TOO_DEEP)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _mark(mark: Any) -> Position:  # PyYAML's or libyaml's Mark
    return Position(mark.line + 1, mark.column + 1)


def mark_of(node: Node) -> Position:
    return _mark(node.start_mark)


@dataclass(frozen=True, slots=True)
class Located:
    """Where a ``loc`` lands in the tree: the deepest node reached, the key node that holds it
    (None for the root or a list item), the loc items that named nodes, and how many loc items
    were used up (matched or skipped as tags)."""

    node: Node
    key: Node | None
    complete: bool
    matched: Loc
    consumed: int


def locate(root: Node, loc: Loc) -> Located:
    """Follow a pydantic ``loc`` (keys and list indices) down the node tree as far as it goes.

    Items that do not name a child (pydantic's union or validator tags such as
    ``function-after[...]``) are skipped when the next item does; an item that names nothing at
    the end means a missing key, and the walk stops at its parent.
    """
    node, key = root, None
    matched: list[str | int] = []
    index = 0
    while index < len(loc):
        item = loc[index]
        child = _child(node, item)
        if child is None and index + 1 < len(loc):
            following = _child(node, loc[index + 1])
            if following is not None:
                index += 1  # `item` was a tag, not a key
                item, child = loc[index], following
        if child is None:
            return Located(node, key, complete=False, matched=tuple(matched), consumed=index)
        key, node = child
        matched.append(item)
        index += 1
    return Located(node, key, complete=True, matched=tuple(matched), consumed=index)


def position_for(located: Located, *, at_key: bool = False) -> Position:
    """The mark to report: a scalar's own; a mapping's or list's key line (``sip:``) when it is
    the value of a key, else its first line. ``at_key`` points at the key (unknown fields)."""
    if at_key and located.key is not None:
        return mark_of(located.key)
    if isinstance(located.node, ScalarNode) or located.key is None:
        return mark_of(located.node)
    return mark_of(located.key)


def _child(node: Node, item: str | int) -> tuple[Node | None, Node] | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == str(item):
                return key_node, value_node
        return None
    if isinstance(node, SequenceNode) and isinstance(item, int) and 0 <= item < len(node.value):
        return None, node.value[item]
    return None


class _Builder:
    """Builds dicts, lists, strings and None from nodes, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[YamlProblem] = []
        self._active: set[int] = set()
        self._count = 0
        self._depth = 0
        self._too_deep = False

    def build(self, node: Node) -> object:
        self._count += 1
        if self._count == MAX_VALUES:
            self.problems.append(YamlProblem(mark_of(node), "too many values (alias expansion?)"))
        if self._count >= MAX_VALUES:
            return None
        if node.tag not in _ALLOWED_TAGS:
            self.problems.append(YamlProblem(mark_of(node), f"unsupported YAML tag {node.tag!r}"))
            return None
        if isinstance(node, ScalarNode):
            plain = not node.style  # PyYAML says None, libyaml ''
            return None if plain and node.value in NULLS else str(node.value)
        if id(node) in self._active:
            self.problems.append(YamlProblem(mark_of(node), "an alias refers to its own parent"))
            return None
        if self._depth == MAX_DEPTH:  # through aliases: the text itself was checked
            if not self._too_deep:  # once: every later alias would say it again
                self._too_deep = True
                self.problems.append(YamlProblem(mark_of(node), _TOO_DEEP + " through aliases"))
            return None
        self._active.add(id(node))
        self._depth += 1
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item) for item in node.value]
            return self._mapping(node)
        finally:
            self._active.discard(id(node))
            self._depth -= 1

    def _mapping(self, node: Node) -> dict[str, object]:
        result: dict[str, object] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _STANDARD + "merge":
                self.problems.append(
                    YamlProblem(mark_of(key_node), "merge keys ('<<') are not supported")
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(YamlProblem(mark_of(key_node), "a key must be a plain string"))
                continue
            key = str(key_node.value)
            if key in first_seen:
                first = mark_of(first_seen[key])
                self.problems.append(
                    YamlProblem(
                        mark_of(key_node),
                        f"duplicate key {key!r} (first at line {first.line}, column {first.col})",
                    )
                )
                continue
            first_seen[key] = key_node
            result[key] = self.build(value_node)
        return result


def _syntax_problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    position = _mark(mark) if mark is not None else Position(1, 1)
    message = "YAML syntax: " + (exc.problem or exc.context or "cannot parse")
    if exc.problem and exc.context:
        started = exc.context_mark
        at = f" at line {started.line + 1}, column {started.column + 1}" if started else ""
        message += f" ({exc.context}{at})"
    return YamlProblem(position, message)
