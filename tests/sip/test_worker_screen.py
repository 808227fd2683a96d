"""The worker gate's verdicts on raw requests, and the event pipe's answer to text pjsua2 made
from bytes that are not UTF-8. (The gate itself, on a live worker: tests/e2e/
test_worker_hostile.py.)"""

from __future__ import annotations

import json
import os

import pytest

from callrouter.sip import protocol as p
from callrouter.sip import worker_screen as s
from callrouter.sip.worker_ipc import Outbox

CAPACITY = 4000
BODY = b"v=0\r\no=gp 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"


def request(
    method: str = "INVITE",
    *,
    to_tag: bool = False,
    content_type: str = "application/sdp",
    body: bytes = BODY,
    length: str | None = None,
    extra: bytes = b"",
) -> bytes:
    tag = ";tag=ours" if to_tag else ""
    head = (
        f"{method} sip:02080000001@192.0.2.5 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
        "From: <sip:gp@192.0.2.1>;tag=theirs\r\n"
        f"To: <sip:02080000001@192.0.2.5>{tag}\r\n"
        "Call-ID: 1@192.0.2.1\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


def judge(datagram: bytes, source: str = "192.0.2.1") -> s.Verdict | None:
    return s.screen_request(
        datagram, source, capacity=CAPACITY, allowed=lambda host: host.startswith("192.0.2.")
    )


class TestScreen:
    """What is let in, and the status each hostile shape gets."""

    def test_a_well_formed_call_is_let_in(self) -> None:
        assert judge(request()) is None

    def test_a_message_that_filled_the_buffer_was_cut_short(self) -> None:
        big = request(extra=b"X-Padding: " + b"a" * CAPACITY + b"\r\n")
        assert judge(big[:CAPACITY]) == s.TOO_LARGE

    @pytest.mark.parametrize(
        "datagram",
        [
            request(extra=b'X-Name: "Dr \xff"\r\n'),  # a header
            request().replace(b"Call-ID: 1@", b"Call-ID: 1\xc3@"),  # a lead byte, no follower
            request(body=BODY + b"a=\xe2\x82\r\n"),  # the body, cut inside a character
        ],
    )
    def test_bytes_that_are_not_utf8_anywhere(self, datagram: bytes) -> None:
        assert judge(datagram) == s.NOT_UTF8

    def test_utf8_is_fine(self) -> None:
        assert judge(request(extra='X-Name: "Dr Zoë Ó Briain"\r\n'.encode())) is None

    @pytest.mark.parametrize("length", ["0", str(len(BODY) - 1), str(len(BODY) + 1), "x", "-1"])
    def test_content_length_other_than_the_body(self, length: str) -> None:
        assert judge(request(length=length)) == s.BAD_LENGTH

    def test_two_content_lengths_must_both_match(self) -> None:
        assert judge(request(extra=b"l: 3\r\n")) == s.BAD_LENGTH
        assert judge(request(extra=f"l: {len(BODY)}\r\n".encode())) is None

    def test_no_content_length_means_the_rest_of_the_datagram(self) -> None:
        datagram = request().replace(f"Content-Length: {len(BODY)}\r\n".encode(), b"")
        assert judge(datagram) is None

    def test_bare_line_feeds_end_the_headers_too(self) -> None:
        lf_only = request(body=b"v=0\n").replace(b"\r\n", b"\n")
        assert judge(lf_only) is None
        body = b"a=x\n\nb=y\n"  # a blank line inside the body is the body's business
        assert judge(request(body=body)) is None
        assert judge(request(body=body, length=str(len(body) - 5))) == s.BAD_LENGTH

    def test_headers_that_never_end(self) -> None:
        assert judge(request().split(b"\r\n\r\n", 1)[0]) == s.NO_HEADER_END

    def test_dtmf_relay_info(self) -> None:
        def info(body: bytes) -> bytes:
            return request("INFO", to_tag=True, content_type="application/dtmf-relay", body=body)

        assert judge(info(b"Signal=5\r\nDuration=160\r\n")) is None
        assert judge(info(b"signal = #\r\n")) is None
        assert judge(info(b"Signal=11\r\n")) is None  # '#' by its number
        for bad in (
            b"Signal=" + b"5" * 3000 + b"\r\n",
            b"Signal=55\r\n",
            b"Signal=5\r\nSignal=6\r\n",
            b"Duration=160\r\n",
            b"Signal=5\r\nDuration=abc\r\n",
            b"Signal=5\r\nVolume=10\r\n",
            b"Signal\r\n",
            b"Signal=5\r\nDuration=160\r\n" + b" " * 64,
        ):
            assert judge(info(bad)) == s.BAD_DTMF, bad

    def test_other_info_bodies_are_not_the_gates_business(self) -> None:
        datagram = request("INFO", to_tag=True, content_type="application/dtmf", body=b"55")
        assert judge(datagram) is None

    def test_a_source_outside_the_allow_list_may_not_start_anything(self) -> None:
        assert judge(request(), source="203.0.113.9") == s.FORBIDDEN
        assert judge(request("OPTIONS", body=b""), source="203.0.113.9") == s.FORBIDDEN
        # inside a dialog (a To tag) it may: a consultant's BYE comes from anywhere
        assert judge(request("BYE", to_tag=True, body=b""), source="203.0.113.9") is None

    def test_an_ack_is_never_answered(self) -> None:
        bad_ack = request("ACK", to_tag=True, length="999")
        assert judge(bad_ack) == s.Verdict(s.DROP, s.BAD_LENGTH.reason)
        assert judge(request("ACK", to_tag=True)) is None


class TestInviteBudget:
    """New INVITEs past the budget get 503 with Retry-After; nothing else spends it."""

    def test_at_most_so_many_in_any_window(self) -> None:
        budget = s.InviteBudget(most=3, window=0.6)
        assert [budget.take(0.0), budget.take(0.1), budget.take(0.2)] == [True] * 3
        assert budget.take(0.5) is False  # three in the last 0.6 s
        assert budget.take(0.6) is True  # the first has left the window
        assert budget.take(0.65) is False
        assert [budget.take(2.0) for _ in range(4)] == [True, True, True, False]

    def test_only_a_new_invite_that_passed_asks_the_budget(self) -> None:
        asked: list[bytes] = []

        def empty(datagram: bytes) -> s.Verdict | None:
            def no() -> bool:
                asked.append(datagram)
                return False

            return s.screen_request(
                datagram, "192.0.2.1", capacity=CAPACITY, allowed=lambda _: True, budget=no
            )

        new = request()
        assert empty(new) == s.OVERLOADED
        assert s.OVERLOADED.retry_after is not None
        assert empty(request(to_tag=True)) is None  # a re-INVITE in a call
        assert empty(request("OPTIONS", body=b"")) is None
        assert empty(request(length="0")) == s.BAD_LENGTH  # refused for what it is
        assert asked == [new]


class TestEventsFromBytesThatAreNotUtf8:
    """pjsua2 hands such bytes over as lone surrogates: the event still goes out, readable."""

    def test_surrogates_become_replacement_characters(self) -> None:
        read_end, write_end = os.pipe()
        outbox = Outbox(write_end)
        try:
            outbox.send(p.Refused(403, "gp\udcff", "\udcc3x", "192.0.2.1"))
            outbox.send(p.Log(level=1, message="\ud800 no byte behind it"))
            outbox.close()
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as lines:
            first, second = (json.loads(line) for line in lines)
        assert (first["from_user"], first["to_user"]) == ("gp\ufffd", "\ufffdx")
        assert second["message"].endswith(" no byte behind it")
        assert "\ud800" not in second["message"]
