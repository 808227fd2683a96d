"""What the bus accepts from publishers: availability marks (and, through the same helpers, live
cover commands), bounded and checked before any parser sees them. A payload we will not act on
raises ``RejectedPayload`` with a reason from the closed set ``REJECT_REASONS`` (the metric's
label values).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from callrouter.core.availability import Mark

# The longest valid availability message is ``{"available": false, "until": "<ISO 8601>", "by":
# "<64 characters>"}`` with some spacing; anything far longer is not one, and refusing it before
# parsing bounds the parser's work and depth.
MAX_AVAILABILITY_BYTES: Final = 256
MAX_BY_CHARS: Final = 64
# Why a message was refused: the metric's label values, a closed set.
REJECT_REASONS: Final = (
    "too_large",
    "not_utf8",
    "bad_shape",
    "bad_json",
    "bad_topic",
    "too_many_members",
    "refused_command",  # a well-formed command the rotas cannot take (answered with why)
)


class RejectedPayload(ValueError):
    """A message (mark or command) we will not act on; ``reason`` is a bounded metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def parse_availability(payload: bytes) -> bool | None:
    """``True``/``False`` for a mark, ``None`` for an empty (cleared) retained message.

    Raises RejectedPayload for anything else, so a typo never silently changes a consultant's
    state and a hostile payload never reaches a parser that could blow its stack.
    """
    mark = parse_mark(payload)
    return None if mark is None else mark.available


def decode_json_object(payload: bytes, limit: int) -> tuple[str, dict[str, Any] | None]:
    """The payload's text (stripped), and its JSON object if it is one; bounded and checked
    before the parser sees it. Raises RejectedPayload (too_large, not_utf8, bad_json)."""
    if len(payload) > limit:
        raise RejectedPayload("too_large", f"{len(payload)} bytes")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        raise RejectedPayload("not_utf8", str(error)) from None
    if not text.startswith("{"):
        return text, None
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise RejectedPayload("bad_json", str(error)[:80]) from None
    if not isinstance(decoded, dict):
        raise RejectedPayload("bad_shape", repr(text[:40]))
    return text, decoded


def parse_by(value: object) -> str | None:
    """The optional ``by`` of a message: who says they sent it, short and printable."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_BY_CHARS or not value.isprintable():
        raise RejectedPayload("bad_shape", f"'by' must be 1-{MAX_BY_CHARS} printable characters")
    return value


def parse_instant(value: object, field: str) -> float:
    """An ISO 8601 date-time *with* an offset, as POSIX seconds."""
    if not isinstance(value, str):
        raise RejectedPayload("bad_shape", f"{field!r} must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise RejectedPayload("bad_shape", f"{field!r} is not ISO 8601: {value[:40]!r}") from None
    if when.tzinfo is None:
        raise RejectedPayload("bad_shape", f"{field!r} needs an offset, e.g. +00:00")
    return when.timestamp()


def parse_mark(payload: bytes) -> Mark | None:
    """An availability message as a ``Mark``; None for an empty (cleared) retained message."""
    text, decoded = decode_json_object(payload, MAX_AVAILABILITY_BYTES)
    if not text:
        return None
    if decoded is None:
        lowered = text.lower()
        if lowered in {"available", "unavailable"}:
            return Mark(lowered == "available")
        raise RejectedPayload("bad_shape", repr(text[:40]))
    if (
        "available" not in decoded
        or not set(decoded) <= {"available", "until", "by"}
        or not isinstance(decoded["available"], bool)
    ):
        raise RejectedPayload("bad_shape", repr(text[:40]))
    until = decoded.get("until")
    return Mark(
        bool(decoded["available"]),
        None if until is None else parse_instant(until, "until"),
        parse_by(decoded.get("by")),
    )
