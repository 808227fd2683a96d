"""What the worker refuses before pjsip's own layers see a request: a pure verdict on bytes.

The worker's gate (``worker_gate``) hands every received request here, as the datagram pjsip
read and the source address, before the transaction layer, the dialogs and pjsua run. A
``Verdict`` means "answer this status (statelessly) and go no further"; ``None`` lets it in.
In order:

1. A datagram that filled pjsip's receive buffer was cut short by it: 513.
2. Bytes that are not UTF-8 anywhere (request line, headers, body): 400.
3. No blank line ending the headers, or a Content-Length that is not one number equal to the
   body's length in bytes (shorter or longer than the datagram alike): 400.
4. An INFO ``application/dtmf-relay`` whose body is not one ``Signal=`` key of one digit
   (``*``, ``#``, A-D, or 10-15 for them) with at most a ``Duration``, within 64 bytes: 400.
   (pjsua's own parser of that body aborts the whole process on a long one.)
5. A request outside a dialog (no To tag) from a source outside the allow-list: 403, before
   pjsua allocates a call, media sockets or sends anything.
6. More new INVITEs than ``InviteBudget`` allows (from anyone): 503 with Retry-After. pjsua
   opens two media sockets for each INVITE it takes, and the select ioqueue keeps a closed
   socket's handle for 500 ms more: ~32 INVITEs in that time used up its 64 handles and the
   worker aborted, even when each call was refused at once (a scan of numbers).

An ACK is never answered: a bad one is dropped (``Verdict.status`` 0). No pjsua2 import here.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_DTMF_BODY_BYTES = 64  # "Signal=5\r\nDuration=160\r\n" is 24
DROP = 0  # Verdict.status: say nothing (an ACK is never answered)

_COMPACT = {"l": "content-length", "c": "content-type", "t": "to"}
_DTMF_LINE = re.compile(r"^\s*(?P<key>[A-Za-z]+)\s*=\s*(?P<value>[^\s]*)\s*$")
_DTMF_SIGNALS = frozenset("0123456789*#ABCD") | {"10", "11", "12", "13", "14", "15"}
_TAG = re.compile(r";\s*tag\s*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Answer ``status`` with ``reason`` (``status`` 0: drop without a word)."""

    status: int
    reason: str
    retry_after: int | None = None  # seconds, for a 503


TOO_LARGE = Verdict(513, "Message Too Large")
NOT_UTF8 = Verdict(400, "Bad Request: not UTF-8")
NO_HEADER_END = Verdict(400, "Bad Request: headers never end")
BAD_LENGTH = Verdict(400, "Bad Request: Content-Length does not match the body")
BAD_DTMF = Verdict(400, "Bad Request: dtmf-relay body")
FORBIDDEN = Verdict(403, "Forbidden")
OVERLOADED = Verdict(503, "Service Unavailable: too many new calls", retry_after=5)


class InviteBudget:
    """At most ``most`` new calls within any ``window`` seconds (a sliding window), INVITEs in
    and out alike: one budget per worker, shared by the gate and the worker's own Dials.

    Each call pjsua makes or takes holds two select-ioqueue handles until 500 ms after it ends,
    and there are 64: 30 calls inside that time survived, 34 aborted the worker (measured). The
    window covers the 500 ms and a call refused at once; 24 in it hold at most 48 handles,
    leaving room for the legs in progress. That is 40 new calls a second, sustained: more than
    a worker's slots can use, and a benchmark's one-call-at-a-time loop still fits. Consultant
    legs count too: a rota whose phones all refuse at once (a trunk answering 486 to everything)
    had two hunts place 28 legs in 20 ms and abort the worker; over budget, a Dial waits.
    """

    def __init__(self, most: int = 24, window: float = 0.6) -> None:
        self._most = most
        self._window = window
        self._taken: deque[float] = deque()

    def take(self, now: float) -> bool:
        """Let one more INVITE in at ``now``; False if the window is full."""
        while self._taken and now - self._taken[0] >= self._window:
            self._taken.popleft()
        if len(self._taken) >= self._most:
            return False
        self._taken.append(now)
        return True


def screen_request(
    datagram: bytes,
    source_host: str,
    *,
    capacity: int,
    allowed: Callable[[str], bool],
    budget: Callable[[], bool] = lambda: True,
) -> Verdict | None:
    """The verdict on one received request (see the module docstring), None to let it in.
    ``budget`` is asked only for a new INVITE that passed every other check."""
    verdict, new_invite = _judge(datagram, source_host, capacity, allowed)
    if verdict is None and new_invite:
        return None if budget() else OVERLOADED
    if verdict is not None and datagram.startswith(b"ACK "):
        return Verdict(DROP, verdict.reason)
    return verdict


def _judge(
    datagram: bytes, source_host: str, capacity: int, allowed: Callable[[str], bool]
) -> tuple[Verdict | None, bool]:
    """The verdict of checks 1-5, and whether the request is an INVITE outside a dialog."""
    if len(datagram) >= capacity:
        return TOO_LARGE, False
    try:
        text = datagram.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8, False
    head, body = _split(datagram)
    if head is None:
        return NO_HEADER_END, False
    headers = _headers(head.decode("utf-8"))
    if not _length_matches(headers.get("content-length", []), len(body)):
        return BAD_LENGTH, False
    method = text.split(" ", 1)[0]
    kind = (headers.get("content-type") or [""])[0].split(";", 1)[0].strip().lower()
    if method == "INFO" and kind == "application/dtmf-relay" and not dtmf_relay_ok(body):
        return BAD_DTMF, False
    in_dialog = bool(_TAG.search((headers.get("to") or [""])[0]))
    if not in_dialog and not allowed(source_host):
        return FORBIDDEN, False
    return None, method == "INVITE" and not in_dialog


def _split(datagram: bytes) -> tuple[bytes | None, bytes]:
    """(header block, body) split at the first blank line (CRLF or bare LF, as pjsip reads
    either); (None, b"") if there is none."""
    found = [
        (at, len(blank)) for blank in (b"\r\n\r\n", b"\n\n") if (at := datagram.find(blank)) >= 0
    ]
    if not found:
        return None, b""
    at, size = min(found)
    return datagram[:at], datagram[at + size :]


def _headers(head: str) -> dict[str, list[str]]:
    """Lower-case full header names → their values, folded lines joined (RFC 3261 §7.3.1)."""
    found: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in head.replace("\r\n", "\n").split("\n")[1:]:
        if line[:1] in (" ", "\t") and last:
            last[-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        key = name.strip().lower()
        last = found.setdefault(_COMPACT.get(key, key), [])
        last.append(value.strip())
    return found


def _length_matches(values: list[str], body_length: int) -> bool:
    """No Content-Length (allowed over UDP: the body is the rest), or every one equal to it."""
    return all(_number(value) and int(value) == body_length for value in values)


def _number(value: str) -> bool:
    return value.isascii() and value.isdigit()


def dtmf_relay_ok(body: bytes) -> bool:
    """An ``application/dtmf-relay`` body of one ``Signal`` (one key) and at most a
    ``Duration`` (a number), nothing else, within ``MAX_DTMF_BODY_BYTES``."""
    if len(body) > MAX_DTMF_BODY_BYTES:
        return False
    keys: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        match = _DTMF_LINE.match(line)
        if match is None:
            return False
        key = match.group("key").lower()
        if key in keys or key not in ("signal", "duration"):
            return False
        keys[key] = match.group("value")
    signal, duration = keys.get("signal"), keys.get("duration", "0")
    return signal is not None and signal.upper() in _DTMF_SIGNALS and _number(duration)
