"""The BYE / CANCEL a worker writes while alive, for the pool to send if it dies: plain text in,
plain text out (``worker_teardown``)."""

from __future__ import annotations

from callrouter.sip.worker_teardown import LOST_CSEQ, destination, teardown, values

OK_TO_US = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;rport=5061;branch=z9hG4bKPjabc\r\n"
    "Record-Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2:5070;lr>\r\n"
    "From: <sip:callrouter@127.0.0.1>;tag=ours\r\n"
    "To: <sip:dr@198.51.100.7>;tag=theirs\r\n"
    "Call-ID: abc@x\r\n"
    "CSeq: 4711 INVITE\r\n"
    "Contact: <sip:dr@198.51.100.7:5080;transport=udp>\r\n"
    "Content-Length: 0\r\n\r\n"
)
OK_FROM_US = (
    "SIP/2.0 200 OK\r\n"
    "v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKedge\r\n"
    "Record-Route: <sip:127.0.0.1:5060;lr;ftag=gp>\r\n"
    'f: "Dr Test" <sip:0123@127.0.0.1>;tag=gp\r\n'
    "t: <sip:0208@127.0.0.1>;tag=ours\r\n"
    "i: call-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "m: <sip:callrouter@127.0.0.1:5061>\r\n"
    "Content-Length: 0\r\n\r\n"
)
RINGING = (
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bKPjring\r\n"
    "From: <sip:callrouter@127.0.0.1>;tag=ours\r\n"
    "To: sip:dr@127.0.0.1;tag=theirs\r\n"
    "Call-ID: ring@x\r\n"
    "CSeq: 12 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)


def lines(message: str) -> list[str]:
    return message.split("\r\n")


class TestBye:
    """An answered leg gets a BYE in its dialog, routed as the dialog is."""

    def test_we_called_route_set_reversed(self) -> None:
        found = teardown("L1", OK_TO_US, inbound=False, remote_contact="", via="127.0.0.1:5061")
        assert found is not None
        (bye,) = found.messages
        assert lines(bye)[0] == "BYE sip:dr@198.51.100.7:5080;transport=udp SIP/2.0"
        assert values(bye, "Route") == ["<sip:10.0.0.2:5070;lr>", "<sip:10.0.0.1;lr>"]
        assert (found.host, found.port, found.inbound) == ("10.0.0.2", 5070, False)
        assert values(bye, "From") == ["<sip:callrouter@127.0.0.1>;tag=ours"]
        assert values(bye, "To") == ["<sip:dr@198.51.100.7>;tag=theirs"]
        assert values(bye, "CSeq") == [f"{LOST_CSEQ} BYE"]
        assert values(bye, "Via")[0].startswith("SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bK")

    def test_we_answered_compact_headers(self) -> None:
        found = teardown(
            "w0-in-1",
            OK_FROM_US,
            inbound=True,
            remote_contact="<sip:0123@127.0.0.1:5080>",
            via="127.0.0.1:5061",
        )
        assert found is not None
        (bye,) = found.messages
        assert lines(bye)[0] == "BYE sip:0123@127.0.0.1:5080 SIP/2.0"
        assert values(bye, "Route") == ["<sip:127.0.0.1:5060;lr;ftag=gp>"]
        assert (found.host, found.port, found.inbound) == ("127.0.0.1", 5060, True)
        assert values(bye, "From") == ["<sip:0208@127.0.0.1>;tag=ours"]
        assert values(bye, "To") == ['"Dr Test" <sip:0123@127.0.0.1>;tag=gp']
        assert values(bye, "Call-ID") == ["call-1"]


class TestCancel:
    """A ringing outbound leg gets a CANCEL matching the INVITE, and the ACK for its 487."""

    def test_cancel_and_ack(self) -> None:
        found = teardown(
            "L2",
            RINGING,
            inbound=False,
            remote_contact="",
            via="127.0.0.1:5061",
            request_uri="sip:dr@127.0.0.1:5090",
        )
        assert found is not None
        cancel, ack = found.messages
        assert lines(cancel)[0] == "CANCEL sip:dr@127.0.0.1:5090 SIP/2.0"
        assert values(cancel, "Via") == ["SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bKPjring"]
        assert values(cancel, "To") == ["sip:dr@127.0.0.1"]  # as in the INVITE: no tag
        assert values(cancel, "CSeq") == ["12 CANCEL"]
        assert lines(ack)[0] == "ACK sip:dr@127.0.0.1:5090 SIP/2.0"
        assert values(ack, "To") == ["sip:dr@127.0.0.1;tag=theirs"]
        assert values(ack, "CSeq") == ["12 ACK"]
        assert (found.host, found.port) == ("127.0.0.1", 5090)


class TestThroughTheEdge:
    """Behind a local edge the worker's requests go to its outbound proxy: so do these."""

    PROXY = "sip:127.0.0.1:5060;lr"

    def test_cancel_and_ack_go_to_the_proxy(self) -> None:
        found = teardown(
            "L2",
            RINGING,
            inbound=False,
            remote_contact="",
            via="127.0.0.1:5061",
            request_uri="sip:dr@10.0.0.5:5090",
            proxy=self.PROXY,
        )
        assert found is not None
        assert lines(found.messages[0])[0] == "CANCEL sip:dr@10.0.0.5:5090 SIP/2.0"
        assert (found.host, found.port) == ("127.0.0.1", 5060)

    def test_a_bye_follows_the_route_set_else_the_proxy(self) -> None:
        routed = teardown(
            "L1", OK_TO_US, inbound=False, remote_contact="", via="h:1", proxy=self.PROXY
        )
        assert routed is not None
        assert (routed.host, routed.port) == ("10.0.0.2", 5070)  # the Record-Route
        no_route = OK_TO_US.replace(
            "Record-Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2:5070;lr>\r\n", ""
        )
        found = teardown(
            "L1", no_route, inbound=False, remote_contact="", via="h:1", proxy=self.PROXY
        )
        assert found is not None
        assert values(found.messages[0], "Route") == []
        assert lines(found.messages[0])[0] == "BYE sip:dr@198.51.100.7:5080;transport=udp SIP/2.0"
        assert (found.host, found.port) == ("127.0.0.1", 5060)


class TestNothingToSend:
    """Anything else gives no teardown (the peer's own timers end the leg, as before)."""

    def test_others(self) -> None:
        trying = RINGING.replace("180 Ringing", "100 Trying").replace(";tag=theirs", "")
        bye_ok = OK_TO_US.replace("4711 INVITE", "2 BYE")
        answered_by_us_no_contact = OK_FROM_US
        for message, inbound, contact in (
            (trying, False, ""),
            (bye_ok, False, ""),
            ("INVITE sip:x@y SIP/2.0\r\n\r\n", True, ""),
            ("\xff garbage", False, ""),
            (answered_by_us_no_contact, True, ""),  # no Contact known: no target
            (RINGING, True, ""),  # a 180 we sent ourselves: nothing to cancel
        ):
            assert (
                teardown("L", message, inbound=inbound, remote_contact=contact, via="h:1") is None
            )

    def test_destination_defaults(self) -> None:
        assert destination("sip:dr@example.org") == ("example.org", 5060)
        assert destination("sip:[::1]:5070;lr") == ("::1", 5070)
