"""Hostile SIP datagrams for the edge tests, each carrying a marker (lowercase letters only, so
the log's phone-number masking leaves it alone) that shows up in a worker's message dump if the
message ever reaches one.

``Sender`` sends one datagram from a chosen loopback address and waits (bounded) for the edge's
answer, so every message gets its reply before the next one goes.
"""

from __future__ import annotations

import random
import socket
import string
from dataclasses import dataclass

from .tree import NUMBER, UNKNOWN_NUMBER

SDP = (
    b"v=0\r\no=gp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
)
KINDS = ("display", "call_id", "cl_short", "cl_long", "huge", "dtmf_info")


def marker(rng: random.Random) -> str:
    return "hostile" + "".join(rng.choice(string.ascii_lowercase) for _ in range(16))


@dataclass(frozen=True, slots=True)
class Target:
    """Where the edge listens, and one worker port (the Request-URI of in-dialog requests)."""

    edge_port: int
    worker_port: int


def invite(  # each part of the message is one knob of a mutation
    mark: str,
    local: tuple[str, int],
    target: Target,
    *,
    number: str = NUMBER,
    display: bytes = b'"Dr Test"',
    call_id: bytes | None = None,
    extra: bytes = b"",
    length_delta: int = 0,
) -> bytes:
    host, port = local
    call = call_id if call_id is not None else f"{mark}@{host}".encode()
    return b"".join(
        (
            f"INVITE sip:{number}@127.0.0.1:{target.edge_port} SIP/2.0\r\n".encode(),
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{mark}\r\n".encode(),
            b"Max-Forwards: 70\r\n",
            b"From: " + display + f" <sip:gp@{host}:{port}>;tag={mark}\r\n".encode(),
            f"To: <sip:{number}@127.0.0.1:{target.edge_port}>\r\n".encode(),
            b"Call-ID: " + call + b"\r\n",
            f"CSeq: 1 INVITE\r\nContact: <sip:gp@{host}:{port}>\r\n".encode(),
            extra,
            b"Content-Type: application/sdp\r\n",
            f"Content-Length: {len(SDP) + length_delta}\r\n\r\n".encode(),
            SDP,
        )
    )


def dtmf_info(mark: str, local: tuple[str, int], target: Target, digits: int) -> bytes:
    """An in-dialog INFO routed through the edge to a worker, ``Signal=`` + ``digits`` digits."""
    host, port = local
    body = b"Signal=" + b"5" * digits + b"\r\nDuration=160\r\n"
    head = (
        f"INFO sip:callrouter@127.0.0.1:{target.worker_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{mark}\r\n"
        "Max-Forwards: 70\r\n"
        f"Route: <sip:127.0.0.1:{target.edge_port};lr>\r\n"
        f"From: <sip:gp@{host}:{port}>;tag={mark}\r\n"
        f"To: <sip:callrouter@127.0.0.1:{target.worker_port}>;tag=worker{mark}\r\n"
        f"Call-ID: {mark}@{host}\r\n"
        "CSeq: 2 INFO\r\n"
        "Content-Type: application/dtmf-relay\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def mutation(kind: str, rng: random.Random, local: tuple[str, int], target: Target) -> bytes:
    """One hostile datagram of ``kind`` (see KINDS), varied by ``rng``."""
    mark = marker(rng)
    bad = bytes([rng.choice([0xFF, 0xFE, 0xC0, 0xC3, 0xE2, 0x80, 0xBF, 0xF5])])
    match kind:
        case "display":
            return invite(mark, local, target, display=b'"Dr ' + bad + b'x"')
        case "call_id":
            return invite(mark, local, target, call_id=mark.encode() + bad + b"x@h")
        case "cl_short":
            return invite(mark, local, target, length_delta=-rng.randint(1, len(SDP) - 1))
        case "cl_long":
            return invite(mark, local, target, length_delta=rng.randint(1, 4000))
        case "huge":
            size = rng.randint(20_000, 60_000)
            return invite(mark, local, target, extra=b"X-Padding: " + b"a" * size + b"\r\n")
        case "dtmf_info":
            return dtmf_info(mark, local, target, rng.randint(2, 5000))
    raise ValueError(kind)


def valid_unknown_number(rng: random.Random, local: tuple[str, int], target: Target) -> bytes:
    """A well-formed INVITE for a number nobody serves: a worker answers it 404."""
    return invite(marker(rng), local, target, number=UNKNOWN_NUMBER)


class Sender:
    """A UDP socket on ``host`` that sends one datagram and returns the edge's status."""

    def __init__(self, host: str, edge_port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(5.0)  # generous: a loaded machine must not look like a drop
        self._edge = ("127.0.0.1", edge_port)

    @property
    def local(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def status(self, datagram: bytes) -> int | None:
        """The final status the edge answers (provisional ones skipped); None if none came."""
        self._sock.sendto(datagram, self._edge)
        while True:
            try:
                reply = self._sock.recv(65535)
            except TimeoutError:
                return None
            code = int(reply.split(b" ", 2)[1])
            if code >= 200:  # the first final status
                return code

    def fire(self, datagram: bytes) -> None:
        """Send without waiting for an answer (a flood)."""
        self._sock.sendto(datagram, self._edge)

    def drain(self, quiet: float = 1.0) -> list[int]:
        """The statuses of every answer that arrives until none has for ``quiet`` seconds."""
        self._sock.settimeout(quiet)
        found: list[int] = []
        while True:
            try:
                reply = self._sock.recv(65535)
            except TimeoutError:
                return found
            found.append(int(reply.split(b" ", 2)[1]))

    def close(self) -> None:
        self._sock.close()
