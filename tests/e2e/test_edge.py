"""The Kamailio edge in front of the workers (``edge.enabled``), as ``callrouter run`` starts it:
its generated config passes ``kamailio -c``; a call through it reaches a worker and connects; a
source outside ``trunk_allow`` gets 403 from the edge and no worker hears of it; more GPs than
the workers can hold each either connect or get 503 + Retry-After from the edge before any IVR.
Real kamailio, sipp and workers on loopback; every process stopped at the end."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from callrouter.edge.kamailio_cfg import EdgePlan, EdgeWorker
from callrouter.edge.process import check_config, plan_edge, write_files
from callrouter.settings.loader import load_settings
from callrouter.sip import protocol as p
from callrouter.worker_plan import plan_workers
from tests.settings.conftest import REPO

from . import records
from .conftest import E2E, member, needs_tools
from .peers import Peer
from .running_engine import RunningEngine
from .tree import NUMBER, TreeSpec

KAMAILIO = Path("/usr/sbin/kamailio")
needs_kamailio = pytest.mark.skipif(not KAMAILIO.exists(), reason="needs Debian's kamailio")
pytestmark = [needs_tools, needs_kamailio, pytest.mark.sip, pytest.mark.timeout(120)]

WORKERS = 3
SLOTS = 4  # legs per worker with the pjsua2 wheels


def kamailio_pids(under: Path | None = None) -> set[int]:
    """Kamailio processes (main and children), only those whose command line names ``under``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            mine = under is None or str(under).encode() in cmdline
            if cmdline.startswith(str(KAMAILIO).encode()) and mine:
                found.add(int(entry.name))
    return found


def edge_lines(engine: RunningEngine, word: str) -> list[str]:
    """The edge's log lines holding ``word``, once it has logged one (they arrive through a
    pipe, a moment after the answers; bounded wait)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            str(e["message"])
            for e in engine.log_events()
            if e.get("event") == "edge" and word in str(e.get("message"))
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


class TestGeneratedConfig:
    """What we generate, Kamailio accepts."""

    def test_shipped_config_with_three_workers_passes_kamailio_check(self, tmp_path: Path) -> None:
        for name in ("config.yaml",):
            shutil.copy(REPO / name, tmp_path / name)
        shutil.copytree(REPO / "dialplans", tmp_path / "dialplans")
        shutil.copytree(REPO / "rotas", tmp_path / "rotas")
        settings = load_settings(tmp_path / "config.yaml")
        config = settings.config
        assert config.edge.enabled, "the shipped config turns the edge on"
        workers = plan_workers(config)
        readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, SLOTS) for w in workers]
        plan = plan_edge(config, workers, readies, config.edge.listen_port)
        assert {w.max_calls for w in plan.workers} == {SLOTS // 2}
        write_files(plan)
        import asyncio  # noqa: PLC0415  # this one test drives a coroutine

        asyncio.run(check_config(KAMAILIO, plan))  # raises with Kamailio's words if refused
        text = plan.config_file.read_text(encoding="latin-1")
        assert f"listen=udp:{config.edge.listen_host}:{config.edge.listen_port}" in text
        assert plan.dispatcher_file.read_text().count("maxload=2") == len(workers)

    def test_a_broken_config_is_refused_with_kamailios_words(self, tmp_path: Path) -> None:
        plan = EdgePlan(
            listen_host="127.0.0.1",
            listen_port=5060,
            worker_host="127.0.0.1",
            workers=(EdgeWorker("w0", 5061, 2),),
            trunk_allow=("127.0.0.0/8",),
            run_dir=tmp_path,
        )
        write_files(plan)
        plan.config_file.write_bytes(plan.config_file.read_bytes() + b"\nroute[BROKEN] { nope( }\n")
        import asyncio  # noqa: PLC0415  # this one test drives a coroutine

        from callrouter.edge.process import EdgeStartError  # noqa: PLC0415

        with pytest.raises(EdgeStartError, match="kamailio refused"):
            asyncio.run(check_config(KAMAILIO, plan))


class TestThroughTheEdge:
    """Calls from GPs reach the workers only through the edge."""

    def test_a_call_through_the_edge_connects(self, e2e: E2E) -> None:
        consultant = member("c-edge")
        engine = e2e.start(TreeSpec(members=(consultant,), workers=WORKERS, edge=True))
        listening = [e for e in engine.log_events() if e.get("event") == "edge_listening"]
        assert [e["port"] for e in listening] == [engine.ports.edge], engine.log()
        peer = e2e.peers.consultant(
            "c", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
        )
        gp = e2e.gp("gp", "uac_edge_menu_bye.xml", NUMBER, talk_ms=3000)

        assert gp.wait() == 0, gp.explain() + engine.log()
        assert peer.wait() == 0, peer.explain() + engine.log()
        engine.wait_idle()
        call = records.only_call(engine.db)
        assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call
        trace = (gp.log_dir / "messages.log").read_text(errors="replace")
        assert f"Record-Route: <sip:127.0.0.1:{engine.ports.edge};lr" in trace, trace[-3000:]
        assert engine.stop() == 0, engine.log()
        assert not any(e.get("event") == "edge_died" for e in engine.log_events()), (
            "the edge was reported dead at a clean shutdown"
        )

    def test_disallowed_source_gets_403_from_the_edge_and_no_worker_sees_it(self, e2e: E2E) -> None:
        consultant = member("c-untouched")
        spec = TreeSpec(
            members=(consultant,), workers=WORKERS, edge=True, trunk_allow=("127.0.0.1/32",)
        )
        engine = e2e.start(spec)
        untouched = e2e.peers.consultant("untouched", "uas_accept.xml", port=consultant.port)
        assert engine.health()["worker_slots_free"] == WORKERS * SLOTS
        gps = [
            e2e.peers.gp(
                f"gp{i}",
                "uac_expect_403.xml",
                engine=engine.sip_uri_host,
                number=NUMBER,
                source="127.0.0.2",  # loopback, but outside trunk_allow
            )
            for i in range(3)
        ]
        for gp in gps:
            assert gp.wait() == 0, gp.explain() + engine.log()
            (refusal,) = gp.received("403")
            assert "Forbidden" in refusal.first_line
        time.sleep(0.5)  # a leg, had one been started, would have reached sipp by now
        untouched.kill()
        assert untouched.messages() == [], "a consultant was rung for a refused call"
        assert records.calls(engine.db) == []
        events = engine.log_events()
        assert not [e for e in events if e.get("event") == "call_refused"], "a worker saw it"
        refused = [e for e in events if "edge_refused" in str(e.get("message", ""))]
        assert len(refused) == 1, refused  # three refusals, logged once for the source
        assert "src=127.0.0.2" in refused[0]["message"]
        assert engine.health()["worker_slots_free"] == WORKERS * SLOTS


class TestFull:
    """More GPs than the workers hold: connect, or 503 + Retry-After from the edge; no IVR."""

    def test_twelve_gps_against_three_workers_of_four_slots(self, e2e: E2E) -> None:
        gps_count = 12
        consultants = [member(f"c-{i}") for i in range(6)]
        engine = e2e.start(TreeSpec(members=tuple(consultants), workers=WORKERS, edge=True))
        peers = [
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=gps_count, ring_ms=200, key_ms=200
            )
            for i, c in enumerate(consultants)
        ]
        gps = [
            e2e.gp(f"gp{i}", "uac_edge_connect_or_503.xml", NUMBER, talk_ms=4000)
            for i in range(gps_count)
        ]
        for gp in gps:
            assert gp.wait() == 0, gp.explain() + engine.log()
        engine.wait_idle()
        for peer in peers:
            peer.kill()

        answered = [gp for gp in gps if gp.marks("answered")]
        refused = [gp for gp in gps if gp.marks("refused")]
        assert len(answered) + len(refused) == gps_count
        for gp in refused:  # refused at the door: never answered, never heard the menu
            assert not gp.received("200"), gp.explain()
        # the edge gives each worker as many calls as it can bridge: 2 of its 4 legs each
        assert len(answered) == WORKERS * SLOTS // 2, [gp.explain() for gp in refused]
        rows = records.calls(engine.db)
        assert len(rows) == len(answered)
        # nobody heard "nobody is free": every answered GP was bridged, on its first leg
        assert {(r["end_reason"], r["outcome"]) for r in rows} == {("completed", "connected")}
        legs = [leg for row in rows for leg in records.legs(engine.db, row["call_id"])]
        assert [leg["result"] for leg in legs] == ["accepted"] * len(rows), legs
        rung = sum(len(peer.received("INVITE")) for peer in peers)
        assert rung == len(rows)  # no leg failed for want of a slot, none rang a second phone
        assert_never_rung_twice_at_once(legs)
        assert engine.stop() == 0, engine.log()


class TestTenAtOnce:
    """Edge + 3 workers, 10 GPs dialling in one instant: every one connects (a GP the edge
    turns away with 503 + Retry-After calls back after it, as a SIP client does), no
    consultant is rung twice at once, and the records are exact."""

    def test_ten_gps_at_once_all_connect(self, e2e: E2E) -> None:
        gps_count, retry_after = 10, 1
        consultants = [member(f"c-{i}") for i in range(gps_count)]
        engine = e2e.start(
            TreeSpec(
                members=tuple(consultants), workers=WORKERS, edge=True, edge_retry_after=retry_after
            )
        )
        peers = [
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=gps_count, ring_ms=200, key_ms=200
            )
            for i, c in enumerate(consultants)
        ]

        def call(name: str) -> Peer:
            return e2e.gp(name, "uac_edge_connect_or_503.xml", NUMBER, talk_ms=3000)

        running = {f"gp{i}": call(f"gp{i}-0") for i in range(gps_count)}  # all at once
        connected: list[Peer] = []
        callbacks = 0
        deadline = time.monotonic() + 90
        while running:
            assert time.monotonic() < deadline, "GPs still calling after 90 s"
            for name, gp in list(running.items()):
                if gp.process.poll() is None:
                    continue
                assert gp.wait() == 0, gp.explain() + engine.log()
                del running[name]
                if gp.marks("answered"):
                    connected.append(gp)
                    continue
                assert gp.marks("refused"), gp.explain()
                assert not gp.received("200"), gp.explain()
                time.sleep(retry_after)  # Retry-After, then call back
                callbacks += 1
                running[name] = call(f"{name}-{callbacks}")
            time.sleep(0.05)
        engine.wait_idle()
        for peer in peers:
            peer.kill()

        assert len(connected) == gps_count
        rows = records.calls(engine.db)
        assert len(rows) == gps_count  # a GP refused at the edge left no record
        assert {(r["end_reason"], r["outcome"]) for r in rows} == {("completed", "connected")}
        legs = [leg for row in rows for leg in records.legs(engine.db, row["call_id"])]
        assert [leg["result"] for leg in legs] == ["accepted"] * gps_count, legs
        assert_never_rung_twice_at_once(legs)
        assert sum(len(peer.received("INVITE")) for peer in peers) == gps_count
        assert engine.stop() == 0, engine.log()


def assert_never_rung_twice_at_once(legs: list[dict[str, object]]) -> None:
    """No consultant had two legs open at one time (from the records' start and end times)."""
    by_member: dict[str, list[tuple[float, float]]] = {}
    for leg in legs:
        start, end = leg["started_at"], leg["ended_at"]
        assert isinstance(start, float), leg
        assert isinstance(end, float), leg
        by_member.setdefault(str(leg["member_id"]), []).append((start, end))
    for member_id, spans in by_member.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{member_id} rung twice at once: {spans}"


class TestSupervised:
    """The edge is a child of ``callrouter run``: restarted if it dies, gone when we stop."""

    def test_killed_edge_comes_back_and_stops_with_the_engine(self, e2e: E2E) -> None:
        consultant = member("c-edge")
        engine = e2e.start(TreeSpec(members=(consultant,), workers=1, edge=True))
        before = kamailio_pids()
        (first,) = [e["pid"] for e in engine.log_events() if e.get("event") == "edge_listening"]
        assert first in before
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while not [e for e in engine.log_events() if e.get("event") == "edge_restarted"]:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.1)
        peer = e2e.peers.consultant(
            "c", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
        )
        gp = e2e.gp("gp", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1000)
        assert gp.wait() == 0, gp.explain() + engine.log()
        assert peer.wait() == 0, peer.explain()
        engine.wait_idle()
        pids = [e["pid"] for e in engine.log_events() if e.get("event") == "edge_listening"]
        assert len(pids) == 2  # the first and the restarted one
        assert len(kamailio_pids(e2e.tmp_path)) > 1  # the restarted main and its children
        assert engine.stop() == 0, engine.log()
        deadline = time.monotonic() + 5
        while kamailio_pids(e2e.tmp_path):
            assert time.monotonic() < deadline, "kamailio outlived the engine"
            time.sleep(0.1)


def worker_pid(port: int) -> int:
    """The worker process listening on ``port`` (by its command line)."""
    wanted = f"127.0.0.1:{port}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"callrouter.sip.worker" in args and wanted in args:
                return int(entry.name)
    raise AssertionError(f"no worker on port {port}")


class TestFailover:
    """A worker that stops answering: calls move to the next one; probes bring it back."""

    def test_silent_worker_is_skipped_then_probed_back(self, e2e: E2E) -> None:
        consultants = [member(f"c-{i}") for i in range(3)]
        engine = e2e.start(TreeSpec(members=tuple(consultants), workers=2, edge=True))
        for i, c in enumerate(consultants):
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=3, ring_ms=200, key_ms=200
            )
        w0, w1 = engine.ports.sip, engine.ports.sip + 1
        stopped = worker_pid(w0)
        os.kill(stopped, signal.SIGSTOP)
        try:
            # two calls while w0 is silent: one of them is tried on w0 first, times out there
            # and moves to w1; w1 holds both (its most, two calls of its four legs)
            held = [
                e2e.gp(f"held{i}", "uac_edge_menu_bye.xml", NUMBER, talk_ms=12_000)
                for i in range(2)
            ]
            deadline = time.monotonic() + 10
            while engine.health()["active_calls"] < 2:  # both answered
                assert time.monotonic() < deadline, engine.log()
                time.sleep(0.1)
            assert edge_lines(engine, "edge_worker_silent"), engine.log()
        finally:
            os.kill(stopped, signal.SIGCONT)
        # w1 is full: a new call gets 503 from the edge until an OPTIONS probe (every 2 s)
        # finds w0 answering again, then it goes to w0
        deadline = time.monotonic() + 8
        while True:
            gp = e2e.gp(f"gp-{time.monotonic_ns()}", "uac_edge_connect_or_503.xml", NUMBER,
                        talk_ms=2000)  # fmt: skip
            assert gp.wait() == 0, gp.explain() + engine.log()
            if gp.marks("answered"):
                break
            assert time.monotonic() < deadline, "w0 was never given a call again"
            time.sleep(0.5)
        assert contact_port(gp) == w0
        for call in held:
            assert call.wait() == 0, call.explain() + engine.log()
            assert contact_port(call) == w1
        engine.wait_idle()
        rows = records.calls(engine.db)
        connected = [r for r in rows if r["outcome"] == "connected"]
        assert len(connected) == 3  # the two held calls and the last one
        # A frozen worker that wakes up still finds the INVITEs the edge sent it before giving
        # up on it and starts calls for them; their 200s reach nobody who wants them, and those
        # calls end abandoned, never connected (and never counted against a consultant).
        for row in rows:
            if row["outcome"] != "connected":
                assert row["outcome"] == "abandoned", row
                assert row["end_reason"].startswith("gp_hangup"), row


def contact_port(gp: Peer) -> int:
    """The port in the Contact of the 200 OK the GP got: the worker that took its call."""
    trace = (gp.log_dir / "messages.log").read_text(errors="replace")
    found = re.findall(r"Contact: <sip:callrouter@127\.0\.0\.1:(\d+)>", trace)
    assert found, trace[-2000:]
    return int(found[0])


class TestWorkerKilled:
    """kill -9 of a worker mid-call: the edge ends its calls with BYE; the others go on."""

    def test_gp_on_the_dead_worker_gets_bye_and_the_other_call_continues(self, e2e: E2E) -> None:
        consultants = [member(f"c-{i}") for i in range(2)]
        engine = e2e.start(TreeSpec(members=tuple(consultants), workers=2, edge=True))
        for i, c in enumerate(consultants):
            e2e.peers.consultant(
                f"c{i}", "uas_accept.xml", port=c.port, calls=3, ring_ms=200, key_ms=200
            )
        doomed = e2e.gp("doomed", "uac_edge_menu_wait_bye.xml", NUMBER, talk_ms=0)
        wait_connected(engine, 1)
        survivor = e2e.gp("survivor", "uac_edge_menu_bye.xml", NUMBER, talk_ms=6000)
        wait_connected(engine, 2)
        dead_port = contact_port(doomed)
        assert contact_port(survivor) != dead_port  # the edge put them on different workers
        os.kill(worker_pid(dead_port), signal.SIGKILL)

        assert doomed.wait(15) == 0, doomed.explain() + engine.log()  # the edge's BYE came
        (bye,) = doomed.received("BYE")
        assert edge_lines(engine, "edge_worker_down"), engine.log()
        assert survivor.wait() == 0, survivor.explain() + engine.log()
        assert survivor.sent("BYE")[0].at > bye.at  # it went on after the other one ended
        engine.wait_idle()
        by_caller = {r["end_reason"]: r for r in records.calls(engine.db)}
        assert set(by_caller) == {"interrupted", "completed"}, by_caller
        assert by_caller["completed"]["outcome"] == "connected"

        # the pool restarted the worker on its port: both take calls again
        deadline = time.monotonic() + 15
        while engine.health()["worker_slots_free"] != 2 * 4:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.2)
        after = e2e.gp("after", "uac_edge_menu_bye.xml", NUMBER, talk_ms=1000)
        assert after.wait() == 0, after.explain() + engine.log()


def wait_connected(engine: RunningEngine, count: int, timeout: float = 15.0) -> None:
    """Until the engine has logged ``count`` connected calls (bounded)."""
    deadline = time.monotonic() + timeout
    while len([e for e in engine.log_events() if e.get("event") == "Connected"]) < count:
        assert time.monotonic() < deadline, engine.log()
        time.sleep(0.1)
