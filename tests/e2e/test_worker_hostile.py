"""Hostile SIP straight at a worker, with no edge in front (the embedded default), issue 8
item 4: the worker's gate answers each hostile request before pjsua sees it, no worker dies,
no slot is held, no consultant is rung, and a legitimate call right after connects.

- Bytes that are not UTF-8 in a header, a Content-Length shorter or longer than the datagram:
  400; 20-60 KB headers (cut short by pjsip's 4,000-byte receive buffer): 513.
- An in-dialog INFO ``application/dtmf-relay`` with ``Signal=`` + up to 5,000 digits, inside a
  real answered call (pjsua's own parser of that body aborted the worker): 400, or 513 when it
  filled the buffer; the call goes on and a well-formed digit INFO after it still gets 200.
- 500 INVITEs at 200/s from a source outside ``trunk_allow``: 403 each, statelessly, before
  any call slot or media socket (pjsua opened media for each one until the select ioqueue's
  64 handles ran out and the worker aborted); counted as ``forbidden`` refusals, logged once.
"""

from __future__ import annotations

import random
import socket
import time
from collections import Counter

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .hostile_sip import Sender, Target, invite, marker, mutation
from .raw_dialog import RawCall
from .running_engine import RunningEngine
from .tree import NUMBER, UNKNOWN_NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

INVITE_KINDS = ("display", "call_id", "cl_short", "cl_long", "huge")
EXPECTED = {"display": 400, "call_id": 400, "cl_short": 400, "cl_long": 400, "huge": 513}
MUTATIONS = 2000
RECEIVE_BUFFER = 4000  # pjsip's: a longer datagram is cut to this and refused 513
SCAN = 500
SCAN_RATE = 200.0  # INVITEs a second


def start(e2e: E2E, trunk_allow: tuple[str, ...] = ("127.0.0.1/32",)) -> RunningEngine:
    """One worker, no edge; the consultant answers the one legitimate call."""
    consultant = member("c-after")
    engine = e2e.start(TreeSpec(members=(consultant,), trunk_allow=trunk_allow))
    e2e.peers.consultant("c", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200)
    return engine


def long_dtmf(call: RawCall, digits: int) -> bytes:
    body = b"Signal=" + b"5" * digits + b"\r\nDuration=160\r\n"
    return call.request("INFO", "application/dtmf-relay", body)


def worker_alive(engine: RunningEngine) -> None:
    events = engine.log_events()
    assert not [e for e in events if e.get("event") == "worker_died"], engine.log()
    off = [e for e in events if "gate could not be installed" in str(e.get("event", ""))]
    assert not off, "the worker runs without its gate"
    assert engine.health()["worker_slots_free"] == 4


def legitimate_call_connects(e2e: E2E, engine: RunningEngine) -> None:
    gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=1500)
    assert gp.wait() == 0, gp.explain() + engine.log()
    engine.wait_idle()
    call = records.calls(engine.db)[-1]
    assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call


class TestHostileInputAtTheWorker:
    """Each kind once, then 2,000 random ones, inside and outside a live call."""

    def test_each_kind_answered_and_the_call_goes_on(self, e2e: E2E) -> None:
        engine = start(e2e)
        port = engine.ports.sip
        target = Target(edge_port=port, worker_port=port)
        rng = random.Random(4)
        sender = Sender("127.0.0.1", port)
        call = RawCall("127.0.0.1", port, marker(rng))
        try:
            assert call.answer() == 200
            answers = {
                kind: sender.status(mutation(kind, rng, sender.local, target))
                for kind in INVITE_KINDS
            }
            call.send(long_dtmf(call, 5000))
            answers["dtmf_5000"] = call.final_status("INFO")
            call.send(long_dtmf(call, 3000))
            answers["dtmf_3000"] = call.final_status("INFO")
            call.send(long_dtmf(call, 1))  # one digit: well-formed, still heard
            answers["dtmf_1"] = call.final_status("INFO")
            call.send(call.request("BYE"))
            answers["bye"] = call.final_status("BYE")
        finally:
            sender.close()
            call.close()
        want = {**EXPECTED, "dtmf_5000": 513, "dtmf_3000": 400, "dtmf_1": 200, "bye": 200}
        assert answers == want, engine.log()
        engine.wait_idle()
        worker_alive(engine)
        refusals = [e for e in engine.log_events() if str(e.get("event", "")).startswith("refused")]
        reasons = {str(e["event"]).split(": ", 1)[1] for e in refusals}
        assert len(reasons) == 4, refusals
        legitimate_call_connects(e2e, engine)
        ivr_only = records.calls(engine.db)[0]  # the raw call: answered, never hunted
        assert records.legs(engine.db, str(ivr_only["call_id"])) == []

    def test_two_thousand_mutations_then_a_call(self, e2e: E2E) -> None:
        engine = start(e2e)
        port = engine.ports.sip
        target = Target(edge_port=port, worker_port=port)
        rng = random.Random(2000)
        sender = Sender("127.0.0.1", port)
        call = RawCall("127.0.0.1", port, marker(rng))
        answers: Counter[int | None] = Counter()
        wrong: list[tuple[str, int | None]] = []
        try:
            assert call.answer() == 200
            for _ in range(MUTATIONS):
                kind = rng.choice((*INVITE_KINDS, "dtmf_info"))
                if kind == "dtmf_info":
                    datagram = long_dtmf(call, rng.randint(2, 5000))
                    call.send(datagram)
                    status = call.final_status("INFO")
                    want = 513 if len(datagram) >= RECEIVE_BUFFER else 400
                else:
                    status = sender.status(mutation(kind, rng, sender.local, target))
                    want = EXPECTED[kind]
                answers[status] += 1
                if status != want:
                    wrong.append((kind, status))
            call.send(call.request("BYE"))
            assert call.final_status("BYE") == 200
        finally:
            sender.close()
            call.close()
        assert not wrong, (wrong[:10], answers)
        assert sum(answers.values()) == MUTATIONS
        engine.wait_idle()
        worker_alive(engine)
        legitimate_call_connects(e2e, engine)
        calls = records.calls(engine.db)
        assert len(calls) == 2, calls
        assert records.legs(engine.db, str(calls[0]["call_id"])) == []  # no consultant rung


class TestScanAtTheWorker:
    """500 INVITEs at 200/s from outside trunk_allow: 403 each, no call, no media."""

    def test_scan_from_a_disallowed_source(self, e2e: E2E) -> None:
        engine = start(e2e)
        answers = scan(engine, "127.0.0.2", NUMBER)
        assert answers == Counter({403: SCAN}), answers
        events = engine.log_events()
        assert not [e for e in events if e.get("event") == "CallOffered"]
        refused = [e for e in events if e.get("event") == "call_refused"]
        assert [(e["reason"], e["status"]) for e in refused] == [("forbidden", 403)]  # once
        exposition = engine.scrape()
        assert (
            records.sample(exposition, "callrouter_calls_refused_total", reason="forbidden") == SCAN
        )
        worker_alive(engine)
        legitimate_call_connects(e2e, engine)  # from 127.0.0.1: not the scanning source
        assert len(records.calls(engine.db)) == 1

    def test_scan_of_numbers_from_an_allowed_source(self, e2e: E2E) -> None:
        """The same scan from inside trunk_allow, for a number nobody serves: pjsua would take
        each (two media sockets held 500 ms past each call's end: the worker aborted after
        ~32); the gate lets 24 in any 0.6 s in and answers the rest 503 with Retry-After."""
        engine = start(e2e, trunk_allow=("127.0.0.0/8",))
        answers = scan(engine, "127.0.0.2", UNKNOWN_NUMBER)
        assert sum(answers.values()) == SCAN, answers  # every INVITE got a final answer
        assert set(answers) <= {404, 486, 503}, answers  # 486: pjsua's own, slots full
        assert answers[503] >= SCAN // 2, answers  # most were over the budget
        assert answers[404] >= 24, answers  # the budget's worth got to the engine
        wait_for_slots(engine)
        worker_alive(engine)
        legitimate_call_connects(e2e, engine)


def wait_for_slots(engine: RunningEngine, limit: float = 10.0) -> None:
    """Until the worker reports every slot free (pjsua frees a refused call's slot late)."""
    deadline = time.monotonic() + limit
    while engine.health()["worker_slots_free"] != 4 and time.monotonic() < deadline:
        time.sleep(0.1)


def scan(engine: RunningEngine, host: str, number: str) -> Counter[int]:
    """SCAN INVITEs for ``number`` at SCAN_RATE from ``host``, each its own call, reading the
    answers as they come (none lost to a full socket buffer): the first final status of each
    call, counted. A 503 without Retry-After counts as 0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    local = (host, int(sock.getsockname()[1]))
    target = Target(edge_port=engine.ports.sip, worker_port=engine.ports.sip)
    first: dict[bytes, int] = {}

    def read() -> None:
        while True:
            try:
                reply = sock.recv(65535)
            except BlockingIOError:
                return
            status = int(reply.split(b" ", 2)[1])
            call_id = reply.split(b"Call-ID: ", 1)[1].split(b"\r\n", 1)[0]
            if status >= 200 and call_id not in first:
                retry = b"\r\nRetry-After: " in reply
                first[call_id] = 0 if status == 503 and not retry else status

    rng = random.Random(SCAN)
    try:
        start_at = time.monotonic()
        for i in range(SCAN):
            time.sleep(max(0.0, start_at + i / SCAN_RATE - time.monotonic()))
            datagram = invite(marker(rng), local, target, number=number)
            sock.sendto(datagram, ("127.0.0.1", engine.ports.sip))
            read()
        deadline = time.monotonic() + 5.0
        while len(first) < SCAN and time.monotonic() < deadline:
            time.sleep(0.02)
            read()
    finally:
        sock.close()
    return Counter(first.values())
