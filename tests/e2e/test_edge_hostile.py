"""Hostile SIP through the edge (issue 8, item 4): bytes that are not UTF-8 in a header, a
Content-Length shorter or longer than the datagram, 20-60 KB headers, and the in-dialog INFO
with ``Signal=`` + thousands of digits are each answered 400 (513 for the oversized) by the edge,
and none reaches a worker: the workers dump every SIP message they receive into the engine's
log, and no hostile message's marker is there, while a well-formed one sent the same way is. No
worker dies, and a legitimate call right after connects."""

from __future__ import annotations

import random
import time

import pytest

from . import records
from .conftest import E2E, member, needs_tools
from .hostile_sip import (
    KINDS,
    Sender,
    Target,
    invite,
    marker,
    mutation,
    valid_unknown_number,
)
from .running_engine import RunningEngine
from .test_edge import edge_lines, needs_kamailio
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(180)]

EXPECTED = {
    "display": 400,
    "call_id": 400,
    "cl_short": 400,
    "cl_long": 400,
    "huge": 513,
    "dtmf_info": 400,
}
MUTATIONS = 2000


def start(e2e: E2E) -> RunningEngine:
    consultant = member("c-after")
    spec = TreeSpec(
        members=(consultant,),
        workers=2,
        edge=True,
        edge_pike_requests=100_000,  # this test is the flood: let every message be judged
        log_level="DEBUG",
        sip_dumps=True,
    )
    engine = e2e.start(spec)
    e2e.peers.consultant("c", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200)
    return engine


def worker_log(engine: RunningEngine) -> str:
    """Everything the workers' pjsip logged (the SIP message dumps among it)."""
    lines = [str(e.get("event", "")) for e in engine.log_events() if e.get("logger") == "pjsip"]
    return "\n".join(lines)


def legitimate_call_connects(e2e: E2E, engine: RunningEngine) -> None:
    gp = e2e.gp("gp", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1500)
    assert gp.wait() == 0, gp.explain() + engine.log()
    engine.wait_idle()
    call = records.only_call(engine.db)
    assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call


class TestHostileInput:
    """Every kind once, with the answer it gets; then 2,000 random mutations."""

    def test_each_kind_refused_at_the_edge_and_none_reaches_a_worker(self, e2e: E2E) -> None:
        engine = start(e2e)
        target = Target(edge_port=engine.ports.edge, worker_port=engine.ports.sip)
        rng = random.Random(8)
        sender = Sender("127.0.0.3", engine.ports.edge)
        try:
            control = valid_unknown_number(rng, sender.local, target)
            assert sender.status(control) == 404  # well-formed: a worker answered it
            answers = {
                kind: sender.status(mutation(kind, rng, sender.local, target)) for kind in KINDS
            }
        finally:
            sender.close()
        assert answers == EXPECTED

        dumps = worker_log(engine)
        control_mark = control.split(b"branch=z9hG4bK", 1)[1].split(b"\r\n", 1)[0].decode()
        assert control_mark in dumps, "the workers' message dumps are not in the log"
        assert dumps.count("hostile") == dumps.count(control_mark), "a hostile message got in"
        assert not [e for e in engine.log_events() if e.get("event") == "worker_died"]
        refused = edge_lines(engine, "edge_bad_input")
        assert len(refused) == 1, refused  # six refusals from one source: logged once
        legitimate_call_connects(e2e, engine)

    def test_two_thousand_mutations_then_a_call(self, e2e: E2E) -> None:
        engine = start(e2e)
        target = Target(edge_port=engine.ports.edge, worker_port=engine.ports.sip + 1)
        rng = random.Random(2000)
        sender = Sender("127.0.0.4", engine.ports.edge)
        answers: dict[int | None, int] = {}
        unanswered: list[str] = []
        try:
            for _ in range(MUTATIONS):
                kind = rng.choice(KINDS)
                status = sender.status(mutation(kind, rng, sender.local, target))
                answers[status] = answers.get(status, 0) + 1
                if status is None:
                    unanswered.append(kind)
        finally:
            sender.close()
        assert set(answers) <= {400, 513}, (answers, unanswered)  # each answered, none let in
        assert sum(answers.values()) == MUTATIONS
        assert "hostile" not in worker_log(engine)
        assert not [e for e in engine.log_events() if e.get("event") == "worker_died"]
        assert engine.health()["worker_slots_free"] == 2 * 4
        assert marker(rng).startswith("hostile")  # the markers are what the check looks for
        legitimate_call_connects(e2e, engine)


class TestFlood:
    """500 INVITEs at 200/s from a source outside trunk_allow: 403s until pike drops the rest."""

    def test_scan_from_a_disallowed_source(self, e2e: E2E) -> None:
        consultant = member("c-after")
        spec = TreeSpec(
            members=(consultant,),
            workers=2,
            edge=True,
            trunk_allow=("127.0.0.1/32",),
            log_level="DEBUG",
            sip_dumps=True,
        )
        engine = e2e.start(spec)
        e2e.peers.consultant("c", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200)
        target = Target(edge_port=engine.ports.edge, worker_port=engine.ports.sip)
        rng = random.Random(500)
        sender = Sender("127.0.0.2", engine.ports.edge)
        try:
            start_at = time.monotonic()
            for i in range(500):
                time.sleep(max(0.0, start_at + i / 200 - time.monotonic()))  # 200 a second
                sender.fire(mutation_free_invite(rng, sender, target))
            answers = sender.drain()
        finally:
            sender.close()
        assert set(answers) == {403}, set(answers)
        assert 0 < len(answers) < 500  # pike dropped the rest of the flood unanswered
        assert len(edge_lines(engine, "edge_flood")) == 1
        assert len(edge_lines(engine, "edge_refused")) == 1
        assert "hostile" not in worker_log(engine)
        assert not [e for e in engine.log_events() if e.get("event") == "call_refused"]
        assert not [e for e in engine.log_events() if e.get("event") == "worker_died"]
        assert engine.health()["worker_slots_free"] == 2 * 4
        legitimate_call_connects(e2e, engine)  # from 127.0.0.1: not the flooding source


def mutation_free_invite(rng: random.Random, sender: Sender, target: Target) -> bytes:
    """A well-formed INVITE for the advice line (only its source is wrong)."""
    return invite(marker(rng), sender.local, target)
