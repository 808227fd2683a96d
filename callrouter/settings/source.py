"""One settings file: read, parsed, validated into its model, and able to say where any of its
values was written. Pydantic errors come back as ``ConfigIssue``s at the offending node."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from callrouter.settings.errors import ConfigIssue, FieldError, Loc, Severity
from callrouter.settings.text_file import TextFileError, read_text
from callrouter.settings.yaml_marks import (
    Located,
    Position,
    YamlDocument,
    locate,
    parse_yaml,
    position_for,
)

M = TypeVar("M", bound=BaseModel)

# Patterns whose regex means nothing to the reader, said in words.
_PATTERN_WORDS = {
    r"^[a-z0-9]+(-[a-z0-9]+)*$": "must be a lowercase id of letters, digits and '-' "
    "(like 'mental-health')",
    r"^\+?[0-9]{3,20}$": "must be a phone number: 3 to 20 digits, optionally after a '+'",
    r"^[0-9]{1,2}$": "must be one or two digits",
}
# Pydantic adds these to a loc for unions and validators; they name no key in the file.
_TYPE_WORDS = frozenset({"int", "str", "float", "bool", "none", "list", "dict", "tuple", "set"})


@dataclass(frozen=True, slots=True)
class SourceFile(Generic[M]):
    """A validated file: its model and the node tree it came from."""

    path: Path
    root: Node | None
    model: M

    def position(self, loc: Loc, *, at_key: bool = False) -> Position | None:
        if self.root is None:
            return None
        return position_for(locate(self.root, loc), at_key=at_key)

    def issue(
        self, loc: Loc, message: str, *, severity: Severity = "error", at_key: bool = False
    ) -> ConfigIssue:
        """An issue about the value at ``loc`` (``at_key``: about the key that holds it)."""
        where = self.position(loc, at_key=at_key)
        return ConfigIssue(
            self.path,
            where.line if where else None,
            where.col if where else None,
            format_loc(loc),
            message,
            severity,
        )


def read_document(path: Path) -> tuple[YamlDocument | None, list[ConfigIssue]]:
    """Read and parse ``path``. A missing, unreadable, too large, not UTF-8, empty, too deeply
    nested or unparsable file gives issues and no document; a duplicate key gives an issue *and*
    the document (first value kept), so the rest of the file is still validated in the same
    run."""
    try:
        text = read_text(path)
    except TextFileError as error:
        return None, [ConfigIssue(path, error.line, error.col, "", error.message)]
    document, problems = parse_yaml(text)
    issues = [
        ConfigIssue(
            path,
            problem.position.line if problem.position else None,
            problem.position.col if problem.position else None,
            "",
            problem.message,
        )
        for problem in problems
    ]
    if document is not None and document.root is None:
        return None, [ConfigIssue(path, 1, 1, "", "the file is empty")]
    return document, issues


def validate(
    path: Path, document: YamlDocument, model: type[M], context: dict[str, Any] | None = None
) -> tuple[SourceFile[M] | None, list[ConfigIssue]]:
    """Validate parsed data against ``model``; on failure, every error at its file:line:col."""
    try:
        value = model.model_validate(document.data, context=context)
    except ValidationError as exc:
        return None, _issues_from(path, document.root, model, exc.errors())
    return SourceFile(path, document.root, value), []


def read_model(
    path: Path, model: type[M], context: dict[str, Any] | None = None
) -> tuple[SourceFile[M] | None, list[ConfigIssue]]:
    """``read_document`` then ``validate``; the model only when the file has no issue at all."""
    document, issues = read_document(path)
    if document is None:
        return None, issues
    source, more = validate(path, document, model, context)
    return (source if not issues else None), issues + more


def format_loc(loc: Loc) -> str:
    """``('menu', 'options', 3, 'digits')`` → ``menu.options[3].digits``."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += ("." if text else "") + item
    return text


def _issues_from(
    path: Path, root: Node | None, model: type[BaseModel], errors: list[ErrorDetails]
) -> list[ConfigIssue]:
    issues: list[tuple[ConfigIssue, bool, tuple[str, str | int, str]]] = []
    for error in errors:
        loc: Loc = tuple(error["loc"])
        raised = (error.get("ctx") or {}).get("error")
        if isinstance(raised, FieldError):
            loc = (*loc, *raised.loc)
        at_key = error["type"] == "extra_forbidden" or (bool(loc) and loc[-1] == "[key]")
        located = locate(root, loc) if root is not None else None
        shown = _shown_loc(loc, located)
        message = _message(error, model, loc)
        # A value a before-validator copied in (hunt_defaults into each specialty) names a key
        # the file does not have; it is reported once, where the value is written.
        inherited = (
            located is not None
            and not located.complete
            and error["type"] != "missing"
            and len(shown) > len(located.matched)
        )
        where = position_for(located, at_key=at_key) if located else Position(1, 1)
        issue = ConfigIssue(path, where.line, where.col, format_loc(shown), message)
        issues.append((issue, inherited, (error["type"], shown[-1] if shown else "", message)))
    written = {signature for _, inherited, signature in issues if not inherited}
    return [
        issue for issue, inherited, signature in issues if not inherited or signature not in written
    ]


def _shown_loc(loc: Loc, located: Located | None) -> Loc:
    """The loc without pydantic's own tags and ``[key]``: matched items, then any unmatched
    items that look like field names (a missing key, an inherited field)."""
    if located is None:
        return tuple(item for item in loc if not _is_tag(item))
    rest = [item for item in loc[located.consumed :] if not _is_tag(item)]
    return (*located.matched, *rest)


def _is_tag(item: str | int) -> bool:
    if isinstance(item, int):
        return False
    return item == "[key]" or "[" in item or item in _TYPE_WORDS or item[:1].isupper()


def _message(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required field missing"
    if kind == "extra_forbidden":
        text = "unknown field"
        allowed = _fields_at(model, loc[:-1])
        if allowed and isinstance(loc[-1], str):
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            text += f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
        return text
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "assertion_error":
        return error["msg"].removeprefix("Assertion failed, ")
    message = error["msg"]
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_WORDS:
        message = _PATTERN_WORDS[str(ctx["pattern"])]
    value = error.get("input")
    if isinstance(value, str) and len(value) <= 60:
        message += f", not {value!r}"
    return message


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Best effort: the field names of the model that ``loc`` points into (for suggestions)."""
    current: object = model
    for item in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(item, str) or item not in current.model_fields:
                return []
            current = current.model_fields[item].annotation
            continue
        args = typing.get_args(current)
        origin = typing.get_origin(current)
        if origin in (tuple, list) and isinstance(item, int) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:  # key and value types
            current = args[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: object) -> object:
    """``X | None`` → ``X`` (the first non-None member of a union)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0] if members else annotation
    return annotation
