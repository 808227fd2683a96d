"""A consultant "phone" that answers a worker's INVITEs as scripted (``ANSWERS``: broken or
hostile SIP, one answer per INVITE, in turn), or not at all. A UDP socket of the test's own on
loopback."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

Answer = Callable[[bytes], list[bytes]]  # the INVITE -> the datagrams to send back

_HEADER = re.compile(rb"^(Via|From|To|Call-ID|CSeq|Record-Route):[^\r\n]*", re.M | re.I)


def _echo(invite: bytes, *, to_tag: bool = True) -> bytes:
    """The headers a response copies from its request (To tagged unless told not to)."""
    lines = []
    for match in _HEADER.finditer(invite):
        line = match.group(0)
        if to_tag and line.lower().startswith(b"to:"):
            line += b";tag=hostile1"
        lines.append(line)
    return b"\r\n".join(lines) + b"\r\n"


def response(
    status: bytes,
    invite: bytes,
    *,
    extra: bytes = b"",
    body: bytes = b"",
    length: int | None = None,
    to_tag: bool = True,
) -> bytes:
    size = len(body) if length is None else length
    return (
        b"SIP/2.0 " + status + b"\r\n" + _echo(invite, to_tag=to_tag)
        + b"Contact: <sip:hostile@127.0.0.1>\r\n" + extra
        + (b"Content-Type: application/sdp\r\n" if body else b"")
        + b"Content-Length: " + str(size).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def sdp(media: bytes) -> bytes:
    return b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + media


AUDIO = b"m=audio 4000 RTP/AVP 0\r\n"


def ok(body: bytes, **kwargs: Any) -> Answer:
    """A 200 OK carrying ``body`` (and whatever ``response`` is told)."""
    return lambda invite: [response(b"200 OK", invite, body=body, **kwargs)]


def non_utf8(invite: bytes) -> list[bytes]:
    junk = b"X-Junk: \xc3\x28\xa0\xa1\r\n"
    ringing = response(b"180 Ring\xff\xfeing", invite, extra=junk)
    return [ringing, response(b"200 OK", invite, body=sdp(AUDIO + b"a=\xff\xfe\xfd\r\n"))]


def progress_then_decline(invite: bytes) -> list[bytes]:
    reason = b'Reason: SIP;text="' + b"x" * 20000 + b'"\r\n'
    early = response(b"183 Session Progress", invite, body=sdp(AUDIO))
    return [early, response(b"603 Decline", invite, extra=reason)]


ANSWERS: tuple[tuple[str, Answer], ...] = (
    ("bad Content-Length", ok(sdp(AUDIO), length=9999)),
    ("port out of range", ok(sdp(b"m=audio 99999999999 RTP/AVP 0\r\n"))),
    ("300 media lines", ok(sdp(AUDIO * 300))),
    ("non-UTF-8 everywhere", non_utf8),
    ("200 with no To tag", ok(sdp(AUDIO), to_tag=False)),
    ("40 KB header", ok(sdp(AUDIO), extra=b"X-Big: " + b"a" * 40000 + b"\r\n")),
    ("unknown codec only", ok(sdp(b"m=audio 4000 RTP/AVP 99\r\n"))),
    ("garbage SDP", ok(b"\x00\x01not sdp at all\r\n" * 50)),
    ("183 then 603 with huge Reason", progress_then_decline),
)


class ScriptedPhone:
    """Answers each new INVITE with the next of ``answers`` (by arrival) and ignores everything
    else: with none, a phone that never answers at all. Notes when every INVITE arrived."""

    def __init__(self, answers: tuple[tuple[str, Answer], ...] = ANSWERS) -> None:
        self.answers = answers
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.invites: list[float] = []  # monotonic arrival of each, retransmissions too
        self.answered: list[str] = []
        self._seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if not data.startswith(b"INVITE "):
                continue
            self.invites.append(time.monotonic())
            call_id = re.search(rb"^Call-ID:\s*(\S+)", data, re.M | re.I)
            key = call_id.group(1) if call_id else data[:200]
            if key in self._seen or len(self.answered) >= len(self.answers):
                continue  # a retransmission, or nothing left to say
            self._seen.add(key)
            name, answer = self.answers[len(self.answered)]
            self.answered.append(name)
            for datagram in answer(data):
                self.sock.sendto(datagram, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
