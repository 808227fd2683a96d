"""The plain-data protocol between the engine and a SIP worker process.

Commands go engine → worker, events go worker → engine, one JSON object per line
(``{"type": "Answer", "leg": "w0r0-in-1"}``). Nothing here imports pjsua2 or asyncio.

Leg ids are strings. The engine names outbound legs (``Dial.leg``); a worker names inbound legs
``"<worker_id>-in-<n>"``. The rules a worker keeps, and the engine may rely on:

- Every leg the worker has seen ends with exactly one ``LegClosed``, after which its id is dead.
- Before ``LegClosed``, a leg ended by the far side or the network gets exactly one ``Failed``
  (before answer) or ``HungUp`` (after answer). A leg ended by the engine's own ``Hangup`` or
  ``Reject`` gets only ``LegClosed``.
- ``Answered`` is sent when a leg reaches the confirmed state, for outbound legs (200 OK) and
  inbound ones (our 200 OK was ACKed) alike. Early media (183) is ``Ringing``, never ``Answered``.
- A command for an unknown or closed leg is answered with ``CommandError``, never a crash.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final, Literal

# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the inbound ``leg`` with 200 OK."""

    leg: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the inbound, unanswered ``leg`` with ``status`` (403, 404, 480, 503…)."""

    leg: str
    status: int
    retry_after: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``files`` (WAV paths) in order on ``leg``, replacing whatever plays there.

    ``PlayDone`` follows when the sequence ends, unless ``loop`` or a ``StopPlay``/new ``Play``.
    """

    leg: str
    files: tuple[str, ...]
    loop: bool = False


@dataclass(frozen=True, slots=True)
class StopPlay:
    """Stop playback on ``leg``; no ``PlayDone`` is sent for it."""

    leg: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Start the outbound ``leg`` (an id the engine chose) to ``uri``."""

    leg: str
    uri: str
    caller_display: str = ""
    caller_user: str = "callrouter"


@dataclass(frozen=True, slots=True)
class Hangup:
    """End ``leg``: CANCEL while an outbound leg rings, BYE once answered.

    For an unanswered inbound leg, ``status`` is the final response (0 means 480).
    """

    leg: str
    status: int = 0


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect the audio of ``a`` and ``b`` both ways (both legs in the same worker).

    With ``record`` (a WAV path the worker may create), both parties are recorded from now until
    either leg closes; ``Recorded`` follows.
    """

    a: str
    b: str
    record: str = ""


@dataclass(frozen=True, slots=True)
class Ping:
    """Ask for a ``Pong`` with the same ``token`` (liveness and round-trip measurement)."""

    token: int


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Hang up every leg and exit."""


Command = Answer | Reject | Play | StopPlay | Dial | Hangup | Bridge | Ping | Shutdown

# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker is listening; ``slots`` is the real number of call legs it can hold."""

    worker_id: str
    sip_host: str
    sip_port: int
    slots: int


@dataclass(frozen=True, slots=True)
class Incoming:
    """An INVITE arrived and waits for ``Answer`` or ``Reject`` (180 Ringing already sent)."""

    leg: str
    from_user: str
    from_display: str
    to_user: str
    source_host: str
    source_port: int
    sip_call_id: str


@dataclass(frozen=True, slots=True)
class Ringing:
    """An outbound leg got a provisional ``status`` (180 or 183); sent when it changes."""

    leg: str
    status: int


@dataclass(frozen=True, slots=True)
class Answered:
    """``leg`` is confirmed (outbound: 200 OK received; inbound: our 200 OK was ACKed)."""

    leg: str


@dataclass(frozen=True, slots=True)
class Failed:
    """``leg`` ended before answer, not by the engine: a final ``status`` or CANCEL (487)."""

    leg: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The answered ``leg`` was ended by the far side (BYE) or the network."""

    leg: str
    status: int


DtmfMethod = Literal["rfc4733", "info"]


@dataclass(frozen=True, slots=True)
class Digit:
    """One DTMF ``digit`` (0-9, *, #, A-D) from ``leg``."""

    leg: str
    digit: str
    method: DtmfMethod


@dataclass(frozen=True, slots=True)
class PlayDone:
    """The sequence last started by ``Play`` on ``leg`` played to its end."""

    leg: str


@dataclass(frozen=True, slots=True)
class MediaTimeout:
    """No RTP arrived on the answered ``leg`` for the worker's media timeout (sent once)."""

    leg: str


@dataclass(frozen=True, slots=True)
class LegClosed:
    """``leg`` is gone and its slot is free; its id will not be used again."""

    leg: str


@dataclass(frozen=True, slots=True)
class Slots:
    """How many more legs the worker can take now."""

    free: int


@dataclass(frozen=True, slots=True)
class Refused:
    """pjsua refused an INVITE on its own (``status`` 486 when every call slot is taken)."""

    status: int
    from_user: str
    to_user: str
    source_host: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """The recording of the bridge whose first leg is ``leg`` has ended: the plain WAV at
    ``path`` holds ``seconds`` of the conversation, or ``error`` says why it could not start."""

    leg: str
    path: str
    seconds: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to ``Ping``."""

    token: int


@dataclass(frozen=True, slots=True)
class Log:
    """A log line from pjsip or the worker; ``level`` is pjsip's (1 error … 6 trace)."""

    level: int
    message: str


@dataclass(frozen=True, slots=True)
class CommandError:
    """A command could not be carried out (unknown leg, bad file, pjsua error)."""

    command: str
    leg: str
    message: str


@dataclass(frozen=True, slots=True)
class Teardown:
    """How to end ``leg`` should this worker die: SIP datagrams for ``host:port``, written by
    the worker (a BYE; or CANCEL then the ACK for its 487 while an outbound leg rings).

    The pool keeps the latest per leg and sends them if the process dies; the engine never sees
    it. ``inbound``: a caller's leg (behind the edge, the edge ends those itself).
    """

    leg: str
    host: str
    port: int
    messages: tuple[str, ...]
    inbound: bool


@dataclass(frozen=True, slots=True)
class WorkerDied:
    """Made by the pool, never by a worker: the process died holding ``legs``.

    The one report that those legs are lost (no ``Failed``/``HungUp`` follows for them); the
    pool follows it with ``LegClosed`` for each.
    """

    worker_id: str
    legs: tuple[str, ...]
    exit_code: int | None


Event = (
    Ready
    | Incoming
    | Ringing
    | Answered
    | Failed
    | HungUp
    | Digit
    | PlayDone
    | MediaTimeout
    | LegClosed
    | Slots
    | Refused
    | Recorded
    | Pong
    | Log
    | CommandError
    | Teardown
    | WorkerDied
)
Message = Command | Event

COMMAND_TYPES: Final = (Answer, Reject, Play, StopPlay, Dial, Hangup, Bridge, Ping, Shutdown)
EVENT_TYPES: Final = typing.get_args(Event)

# --------------------------------------------------------------------------- codec


class ProtocolError(ValueError):
    """A line that is not a well-formed message of this protocol."""


_BY_NAME: Final[dict[str, type[Any]]] = {
    cls.__name__: cls for cls in (*COMMAND_TYPES, *EVENT_TYPES)
}
_HINTS: Final[dict[str, dict[str, Any]]] = {
    name: typing.get_type_hints(cls) for name, cls in _BY_NAME.items()
}


def encode(message: Message) -> bytes:
    """One message as a JSON line (UTF-8, ending in ``\\n``)."""
    name = type(message).__name__
    if name not in _BY_NAME:
        raise ProtocolError(f"not a protocol message: {message!r}")
    body: dict[str, Any] = {"type": name}
    for f in fields(message):
        value = getattr(message, f.name)
        body[f.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes | str) -> Message:
    """Parse one line made by ``encode``; raise ``ProtocolError`` on anything else."""
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {_clip(line)}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError(f"not a JSON object: {_clip(line)}")
    name = raw.pop("type", None)
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ProtocolError(f"unknown message type {name!r}")
    cls = _BY_NAME[name]
    hints = _HINTS[name]
    unknown = set(raw) - set(hints)
    if unknown:
        raise ProtocolError(f"{name}: unknown field(s) {sorted(unknown)}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            if f.default is MISSING:
                raise ProtocolError(f"{name}: missing field {f.name!r}")
            continue
        values[f.name] = _coerce(name, f.name, raw[f.name], hints[f.name])
    message: Message = cls(**values)
    return message


def decode_command(line: bytes | str) -> Command:
    """Like ``decode`` but only accepts commands."""
    message = decode(line)
    if not isinstance(message, COMMAND_TYPES):
        raise ProtocolError(f"expected a command, got {type(message).__name__}")
    return message


def decode_event(line: bytes | str) -> Event:
    """Like ``decode`` but only accepts events."""
    message = decode(line)
    if isinstance(message, COMMAND_TYPES):
        raise ProtocolError(f"expected an event, got {type(message).__name__}")
    return message


def _coerce(name: str, field: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type; JSON lists become tuples."""
    if _matches(value, hint):
        if hint is float:
            return float(value)  # JSON writes 3.0 as 3.0 but a peer may send 3
        return tuple(value) if isinstance(value, list) else value
    raise ProtocolError(f"{name}.{field}: {value!r} is not {_hint_name(hint)}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        )
    if hint in (str, bool):
        return isinstance(value, hint)
    raise TypeError(f"unsupported field type {hint!r}")  # a programming error in this module


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def _clip(line: bytes | str, limit: int = 80) -> str:
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    return text[:limit] + ("…" if len(text) > limit else "")
