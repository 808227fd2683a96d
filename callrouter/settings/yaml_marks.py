"""YAML text → plain Python data, keeping the composed node tree so any value can be traced back
to its ``line:col``.

Values are typed by the schema, not by YAML 1.1's guesses: every plain scalar becomes a string
(pydantic then turns ``"18"`` into a float, ``"no"`` into a bool, ``"08:00"`` into a time where
the model asks for one), except the null forms (``~``, ``null``, empty). So ``18:30`` is never the
base-60 integer 1110, ``nhs_number: off`` is never ``False`` and ``02070000001`` is never octal.
PyYAML silently keeps the last of two equal keys; here the second is an error at its own mark.

Nothing recurses without a bound: nesting deeper than ``MAX_DEPTH`` (in the text, or built up
through aliases) and alias expansion beyond ``MAX_VALUES`` values ("billion laughs") are refused
at the mark where the limit is crossed, before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callrouter.settings.errors import Loc

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_STANDARD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _STANDARD + name for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)
# Aliases can multiply a small file into a huge structure ("billion laughs"); a config never
# needs more than this many values.
MAX_VALUES = 50_000  # the largest shipped file holds under 1,000
_TOO_MANY = f"too many values once aliases are expanded (more than {MAX_VALUES:,})"
# Lists and mappings inside one another; the shipped files go 8 deep. Composing, building and
# validating recurse once per level, so the limit is checked before any of them runs.
MAX_DEPTH = 50
_TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
# libyaml when it is there (fifteen times faster), else PyYAML: the same marks and problems.
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    """Parse one YAML document. Returns the document (None on a syntax error, nesting deeper than
    ``MAX_DEPTH`` or more than ``MAX_VALUES`` values once aliases are expanded) and every problem
    found: that one, or each duplicate key, merge key and unsupported tag."""
    try:
        # The event stream is built without recursion; composing recurses once per level, so the
        # depth is checked on the events first.
        too_deep = _too_deep(yaml.parse(text, Loader=_LOADER))
        if too_deep is not None:
            return None, [too_deep]
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, text)]
    except yaml.reader.ReaderError as exc:  # read_text refuses these characters first
        return None, [YamlProblem(Position(1, 1), str(exc).splitlines()[0])]
    except yaml.YAMLError as exc:  # no mark to give: the file as a whole
        return None, [YamlProblem(Position(1, 1), str(exc))]
    if root is None:
        return YamlDocument(None, None), []
    expanded = _expansion_problem(root)
    if expanded is not None:
        return None, [expanded]
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


def _expansion_problem(root: Node) -> YamlProblem | None:
    """Too many values or levels once aliases are expanded, at the deepest node that alone
    crosses the limit; found bottom-up over the shared nodes, without building anything."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_nodes: set[int] = set()  # an alias to one of these is a cycle; the builder reports it
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children is None:
            continue
        if children_done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size.get(id(child), 1) for child in children)
            height[key] = 1 + max((height.get(id(child), 0) for child in children), default=0)
            if size[key] > MAX_VALUES:
                return YamlProblem(mark_of(node), _TOO_MANY)
            # Below the file's own mapping, a node has one level fewer to use.
            if height[key] > (MAX_DEPTH if node is root else MAX_DEPTH - 1):
                return YamlProblem(mark_of(node), _TOO_DEEP + " through aliases")
        elif key not in size and key not in open_nodes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return None


def _children(node: Node) -> list[Node] | None:
    """The value nodes below a list or mapping; None for a scalar."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [value for _, value in node.value]
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

    def build(self, node: Node) -> object:
        if node.tag not in _ALLOWED_TAGS:
            self.problems.append(YamlProblem(mark_of(node), f"unsupported YAML tag {node.tag!r}"))
            return None
        if isinstance(node, ScalarNode):
            plain = not node.style  # PyYAML says None, libyaml ''
            return None if plain and node.value in NULLS else str(node.value)
        if id(node) in self._active:
            self.problems.append(YamlProblem(mark_of(node), "an alias refers to its own parent"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item) for item in node.value]
            return self._mapping(node)
        finally:
            self._active.discard(id(node))

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


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    position = _mark(mark) if mark is not None else Position(1, 1)
    message = "YAML syntax: " + _named(exc.problem or exc.context or "cannot parse", text, position)
    if exc.problem and exc.context:
        started = exc.context_mark
        at = f" at line {started.line + 1}, column {started.column + 1}" if started else ""
        message += f" ({exc.context}{at})"
    return YamlProblem(position, message)


def _named(problem: str, text: str, position: Position) -> str:
    """libyaml's "found character that cannot start any token" names the character, and "found
    undefined alias" the alias, as PyYAML's messages do."""
    lines = text.splitlines()
    line = lines[position.line - 1] if position.line <= len(lines) else ""
    rest = line[position.col - 1 :]
    if problem == "found character that cannot start any token" and rest:
        return f"found character {rest[0]!r} that cannot start any token"
    if problem == "found undefined alias" and rest.startswith("*"):
        name = re.match(r"\*([^\s,\[\]{}]+)", rest)
        return f"found undefined alias {name.group(1)!r}" if name else problem
    return problem
