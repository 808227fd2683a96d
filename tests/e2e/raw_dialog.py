"""A GP's call made by hand over one UDP socket, for messages no sipp scenario can send: INVITE
straight at a worker, ACK its 200, then any in-dialog request (the hostile INFO), then BYE.

Only what the hostile tests need: one call, no Record-Route, no retransmissions (loopback does
not lose datagrams); every wait is bounded.
"""

from __future__ import annotations

import re
import socket
import time

from .tree import GP_NUMBER, NUMBER

_TO_TAG = re.compile(rb"^(?:To|t):[^\r\n]*;tag=([^;\r\n]+)", re.IGNORECASE | re.MULTILINE)


class RawCall:
    """One call from ``host`` to the worker on ``port``; ``answer()`` waits for its 200."""

    def __init__(self, host: str, port: int, mark: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(5.0)
        # Our own media port (the worker sends its prompt there; nobody reads it), so no
        # other test's peer gets stray RTP.
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind((host, 0))
        self._peer = ("127.0.0.1", port)
        self.mark = mark
        self.local = f"{host}:{self._sock.getsockname()[1]}"
        self.to_tag = ""
        self._cseq = 1

    def _head(self, method: str, branch: str, cseq: int) -> str:
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        return (
            f"{method} sip:{NUMBER}@{self._peer[0]}:{self._peer[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local};branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{GP_NUMBER}@{self.local}>;tag={self.mark}\r\n"
            f"To: <sip:{NUMBER}@{self._peer[0]}:{self._peer[1]}>{to_tag}\r\n"
            f"Call-ID: {self.mark}@raw\r\n"
            f"CSeq: {cseq} {'INVITE' if method == 'ACK' else method}\r\n"
            f"Contact: <sip:{GP_NUMBER}@{self.local}>\r\n"
        )

    def send(self, datagram: bytes) -> None:
        self._sock.sendto(datagram, self._peer)

    def final_status(self, method: str, timeout: float = 5.0) -> int | None:
        """The first final status for ``method`` that arrives (requests from the worker are
        skipped), or None if none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self._sock.settimeout(left)
            try:
                reply = self._sock.recv(65535)
            except TimeoutError:
                return None
            if not reply.startswith(b"SIP/2.0 "):
                continue
            code = int(reply.split(b" ", 2)[1])
            if code >= 200 and f" {method}\r\n".encode() in reply.split(b"CSeq:", 1)[-1][:40]:
                if method == "INVITE" and (tag := _TO_TAG.search(reply)) is not None:
                    self.to_tag = tag.group(1).decode()
                return code
        return None

    def answer(self) -> int | None:
        """INVITE with SDP, wait for the final answer, ACK a 200; returns the status."""
        head = self._head("INVITE", f"{self.mark}inv", 1)
        host, rtp_port = self._rtp.getsockname()[:2]
        sdp = (
            f"v=0\r\no=gp 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
        ).encode()
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        self.send(head.encode() + sdp)
        status = self.final_status("INVITE")
        if status == 200:
            ack = self._head("ACK", f"{self.mark}ack", 1) + "Content-Length: 0\r\n\r\n"
            self.send(ack.encode())
        return status

    def request(self, method: str, content_type: str = "", body: bytes = b"") -> bytes:
        """An in-dialog request (next CSeq), as bytes: the caller may mangle it first."""
        self._cseq += 1
        head = self._head(method, f"{self.mark}{method.lower()}{self._cseq}", self._cseq)
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    def close(self) -> None:
        self._sock.close()
        self._rtp.close()
