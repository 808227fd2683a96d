"""Pure SIP/SDP text helpers used by the worker."""

from __future__ import annotations

import pytest

from callrouter.sip import worker_sipmsg as m

INVITE = (
    "INVITE sip:0800123456@10.0.0.5:5070;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n"
    'f: "Dr \\"Bob\\" Smith" <sip:01234567890@127.0.0.1:5061>;tag=abc\r\n'
    "To: <sip:0800123456@10.0.0.5>\r\n"
    "Call-ID: 42@host\r\n"
    "Content-Type: application/dtmf-relay\r\n"
    "\r\n"
    "Signal=5\r\nDuration=160\r\n"
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=pjmedia",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 121",
        "c=IN IP4 127.0.0.1",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:121 telephone-event/8000",
        "a=fmtp:121 0-16",
        "",
    ]
)


class TestHeaders:
    """Reading the called number, caller and Call-ID from a raw INVITE."""

    def test_request_uri_user(self) -> None:
        assert m.request_uri_user(INVITE) == "0800123456"
        assert m.request_uri_user("garbage") == ""

    def test_compact_from_with_escaped_display(self) -> None:
        assert m.name_addr(m.header(INVITE, "From") or "") == ('Dr "Bob" Smith', "01234567890")

    def test_addr_spec_without_brackets(self) -> None:
        assert m.name_addr("sip:555@host;tag=1") == ("", "555")
        assert m.name_addr("Anon <sip:anonymous@anonymous.invalid>") == ("Anon", "anonymous")

    def test_header_and_body(self) -> None:
        assert m.header(INVITE, "call-id") == "42@host"
        assert m.header(INVITE, "Subject") is None
        assert m.body(INVITE).startswith("Signal=5")

    @pytest.mark.parametrize(
        ("address", "expected"),
        [
            ("127.0.0.1:5060", ("127.0.0.1", 5060)),
            ("[::1]:5070", ("::1", 5070)),
            ("host", ("host", 0)),
        ],
    )
    def test_split_host_port(self, address: str, expected: tuple[str, int]) -> None:
        assert m.split_host_port(address) == expected

    def test_quote_display(self) -> None:
        assert m.quote_display('A "B"\\\r\n') == '"A \\"B\\"\\\\"'


class TestDtmfInfo:
    """Digits carried by SIP INFO bodies."""

    @pytest.mark.parametrize(
        ("ctype", "text", "digit"),
        [
            ("application/dtmf-relay", "Signal=5\r\nDuration=160", "5"),
            ("application/dtmf-relay; x=y", "signal= #\n", "#"),
            ("application/dtmf-relay", "Signal=11\n", "#"),
            ("application/dtmf", "8", "8"),
            ("Application/DTMF", " * \r\n", "*"),
            ("application/dtmf", "12", "A"),
            ("application/dtmf", "X", None),
            ("application/dtmf-relay", "Duration=100", None),
            ("text/plain", "5", None),
        ],
    )
    def test_digit(self, ctype: str, text: str, digit: str | None) -> None:
        assert m.dtmf_from_info(ctype, text) == digit


class TestOfferEventPt:
    """Our SDP offer's telephone-event is renumbered to 101."""

    def test_renumbers_m_line_rtpmap_and_fmtp(self) -> None:
        out = m.offer_event_pt(OFFER)
        assert "m=audio 4000 RTP/AVP 0 8 101" in out
        assert "a=rtpmap:101 telephone-event/8000" in out
        assert "a=fmtp:101 0-16" in out
        assert "121" not in out

    def test_unchanged_without_event_or_when_101_is_taken(self) -> None:
        plain = OFFER.replace("a=rtpmap:121 telephone-event/8000", "")
        assert m.offer_event_pt(plain) == plain
        taken = OFFER.replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:101 X/8000")
        assert m.offer_event_pt(taken) == taken
        assert m.offer_event_pt(m.offer_event_pt(OFFER)) == m.offer_event_pt(OFFER)
