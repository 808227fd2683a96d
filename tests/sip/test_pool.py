"""The pool: slot accounting, refusing the 5th leg, restart after a crash, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callrouter.sip import pool as pool_module
from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool, WorkerStartError
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


@needs_sipp
class TestCapacity:
    """A worker holds 4 legs (the wheels' PJSUA_MAX_CALLS); the 5th is refused both ways."""

    def test_fifth_leg_refused(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                ready = await events.expect(p.Ready)
                assert ready.slots == 4
                async with sipp("uas_ring_cancel.xml", tmp_path, calls=4) as consultants:
                    legs = [f"L{i}" for i in range(1, 5)]
                    for leg in legs:
                        pool.send(p.Dial(leg=leg, uri=f"sip:c@{consultants.uri_host}"))
                    for leg in legs:
                        await events.expect(p.Ringing, leg=leg)
                    assert pool.free_slots == 0

                    pool.send(p.Dial(leg="L5", uri=f"sip:c@{consultants.uri_host}"))
                    failed = await events.expect(p.Failed, leg="L5")
                    assert failed.status == 503
                    await events.expect(p.LegClosed, leg="L5")

                    remote = f"127.0.0.1:{config.listen_port}"
                    async with sipp("uac_expect_486.xml", tmp_path, remote=remote) as gp:
                        refused = await events.expect(p.Refused)
                        assert (refused.status, refused.from_user) == (486, "01234567890")
                        assert await gp.wait() == 0, gp.errors()  # pjsua's own 486

                    for leg in legs:
                        pool.send(p.Hangup(leg=leg))
                    for leg in legs:
                        await events.expect(p.LegClosed, leg=leg)
                    assert await consultants.wait() == 0, consultants.errors()  # 4 CANCELs
                    assert pool.free_slots == 4

        run(main)


@needs_sipp
class TestRouting:
    """With two workers, Dial spreads over them or follows ``near``; a bridge must not span."""

    def test_two_workers(self, tmp_path: Path) -> None:
        async def main() -> None:
            configs = [worker_config("w0"), worker_config("w1")]
            async with WorkerPool(configs) as pool:
                events = Events(pool)
                assert pool.free_slots == 8
                async with sipp("uas_ring_cancel.xml", tmp_path, calls=3) as consultants:
                    uri = f"sip:c@{consultants.uri_host}"
                    pool.send(p.Dial(leg="A", uri=uri))
                    pool.send(p.Dial(leg="B", uri=uri))  # the other worker has more room
                    pool.send(p.Dial(leg="C", uri=uri), near="A")
                    assert {pool.worker_of("A"), pool.worker_of("B")} == {"w0", "w1"}
                    assert pool.worker_of("C") == pool.worker_of("A")
                    assert pool.slots(pool.worker_of("A") or "") == 2
                    for leg in "ABC":
                        await events.expect(p.Ringing, leg=leg)
                    pool.send(p.Bridge(a="A", b="B"))
                    error = await events.expect(p.CommandError, leg="A")
                    assert "not in one worker" in error.message
                    with pytest.raises(ValueError, match="already in use"):
                        pool.send(p.Dial(leg="A", uri=uri))
                    for leg in "ABC":
                        pool.send(p.Hangup(leg=leg))
                        await events.expect(p.LegClosed, leg=leg)
                    assert await consultants.wait() == 0, consultants.errors()
                assert pool.free_slots == 8

        run(main)


@needs_sipp
class TestSlotsExact:
    """A slot is free when the worker says its leg is gone, not when we hang the leg up; an
    admitted GP keeps one slot for its call, and its Dial waits for a closing leg's slot."""

    def test_dial_waits_for_the_slot_of_a_leg_still_closing(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            remote = f"127.0.0.1:{config.listen_port}"
            async with (
                WorkerPool([config]) as pool,
                sipp("uas_ring_slow_cancel.xml", tmp_path, calls=4) as consultants,
                sipp("uac_answer_wait_bye.xml", tmp_path, remote=remote),
            ):
                events = Events(pool)
                uri = f"sip:c@{consultants.uri_host}"
                gp = (await events.expect(p.Incoming)).leg
                assert pool.reserve(gp)
                assert pool.free_for(gp) == 3
                assert pool.free_slots == 2  # the GP's reservation is kept from everyone else
                for leg in ("L1", "L2", "L3"):
                    pool.send(p.Dial(leg=leg, uri=uri), near=gp)
                    await events.expect(p.Ringing, leg=leg)
                assert pool.free_for(gp) == 0

                pool.send(p.Hangup(leg="L1"))  # CANCEL sent; the far end answers it in 1.5 s
                pool.send(p.Dial(leg="L4", uri=uri), near=gp)  # waits for L1's slot
                pool.send(p.Dial(leg="X", uri=uri))  # no GP, nothing to wait for: refused
                failed = await events.expect(p.Failed, leg="X")
                assert (failed.status, failed.reason) == (503, "no free call slot")
                await events.expect(p.Ringing, leg="L4")
                assert events.unmatched(p.Failed) == []  # L4 never failed for want of a slot
                order = [
                    (type(e).__name__, e.leg)
                    for e in events.seen
                    if isinstance(e, p.LegClosed | p.Ringing) and e.leg in ("L1", "L4")
                ]
                assert order.index(("LegClosed", "L1")) < order.index(("Ringing", "L4")), order

                pool.send(p.Dial(leg="L5", uri=uri), near=gp)
                pool.send(p.Hangup(leg="L5"))  # hung up while it waited: it never goes out
                await events.expect(p.LegClosed, leg="L5")
                for leg in ("L2", "L3", "L4"):
                    pool.send(p.Hangup(leg=leg))
                for leg in ("L2", "L3", "L4"):
                    await events.expect(p.LegClosed, leg=leg)
                assert await consultants.wait() == 0, consultants.errors()  # 4 INVITEs, no 5th
                assert pool.free_for(gp) == 3

        run(main)


@needs_sipp
class TestCrash:
    """SIGKILL of a worker: its legs are reported lost and a fresh worker takes over."""

    def test_killed_worker_reports_legs_and_restarts(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_ring_cancel.xml", tmp_path) as consultant,
                    sipp("uac_answer_bye.xml", tmp_path, remote=remote, pause_ms=10000),
                ):
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    await events.expect(p.Answered, leg=incoming.leg)
                    pool.send(p.Dial(leg="L1", uri=f"sip:c@{consultant.uri_host}"))
                    await events.expect(p.Ringing, leg="L1")

                    pid = pool.pid("w0")
                    assert pid is not None
                    os.kill(pid, signal.SIGKILL)

                    died = await events.expect(p.WorkerDied)
                    assert died.worker_id == "w0"
                    assert set(died.legs) == {incoming.leg, "L1"}
                    assert died.exit_code == -signal.SIGKILL
                    # the WorkerDied is the one report of each lost leg; then each is closed
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    await events.expect(p.LegClosed, leg="L1")

                    ready = await events.expect(p.Ready, worker_id="w0.1")
                    assert ready.sip_port == config.listen_port
                    assert pool.pid("w0") != pid
                    assert pool.free_slots == 4
                    pool.send(p.Ping(token=42))
                    await events.expect(p.Pong, token=42)

        run(main)


@needs_sipp
class TestShutdown:
    """Closing the pool hangs up every leg before the worker exits."""

    def test_aclose_sends_bye_and_cancel(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            remote = f"127.0.0.1:{config.listen_port}"
            async with (
                sipp("uas_ring_cancel.xml", tmp_path) as consultant,
                sipp("uac_answer_wait_bye.xml", tmp_path, remote=remote) as gp,
            ):
                pool = WorkerPool([config])
                await pool.start()
                events = Events(pool)
                incoming = await events.expect(p.Incoming)
                pool.send(p.Answer(leg=incoming.leg))
                await events.expect(p.Answered, leg=incoming.leg)
                pool.send(p.Dial(leg="L1", uri=f"sip:c@{consultant.uri_host}"))
                await events.expect(p.Ringing, leg="L1")
                await pool.aclose()
                assert await gp.wait() == 0, gp.errors()  # got our BYE
                assert await consultant.wait() == 0, consultant.errors()  # got our CANCEL
                leftovers = [e async for e in pool]  # ends: the pool is closed
                assert not [e for e in leftovers if isinstance(e, p.Failed | p.HungUp)]
                with pytest.raises(EOFError):
                    await pool.next_event(timeout=2)

        run(main)


class TestWorkerProcess:
    """The process itself: clean stdout, exits when its stdin closes, fails fast on a bad port."""

    def test_stdout_is_only_events_and_eof_stops_it(self) -> None:
        config = worker_config()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "callrouter.sip.worker", *config.argv()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            # writes the Ping, then closes stdin: the engine went away
            out, _ = proc.communicate(b'{"type":"Ping","token":1}\n', timeout=10)
        finally:
            proc.kill()
        assert proc.returncode == 0
        events = [p.decode_event(line) for line in out.splitlines()]  # raises on any banner
        assert p.Pong(token=1) in events
        assert isinstance(next(e for e in events if not isinstance(e, p.Log)), p.Ready)
        assert all(json.loads(line)["type"] for line in out.splitlines())

    def test_start_error_when_port_is_taken(self) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]):
                twin = WorkerPool([config.with_worker_id("w1")], start_timeout=10)
                with pytest.raises(WorkerStartError, match="w1"):
                    await twin.start()

        run(main)


# A stand-in worker program (our own IPC protocol, no pjsua2): notes when it started, takes
# START_SECONDS to come up, says Ready, and exits when stdin closes.
_SLOW_WORKER = """\
import json, sys, time
argv = sys.argv[1:]
name = argv[argv.index("--worker-id") + 1]
with open(sys.argv[0] + ".log", "a") as log:
    log.write(f"{name} start {time.monotonic()}\\n")
time.sleep(START_SECONDS)
with open(sys.argv[0] + ".log", "a") as log:
    log.write(f"{name} ready {time.monotonic()}\\n")
ready = {"type": "Ready", "worker_id": name, "sip_host": "127.0.0.1", "sip_port": 1, "slots": 4}
print(json.dumps(ready), flush=True)
sys.stdin.read()
"""


class TestStart:
    """Workers start a few at a time, so each one's Ready timeout measures its own start."""

    def test_no_more_than_the_limit_start_at_once(self, tmp_path: Path) -> None:
        limit = pool_module._START_CONCURRENCY
        fake = tmp_path / "slow_worker.py"
        fake.write_text(f"#!{sys.executable}\nSTART_SECONDS = 0.3\n{_SLOW_WORKER}")
        fake.chmod(0o755)
        configs = [worker_config(f"w{i}") for i in range(limit + 3)]

        async def main() -> list[p.Ready]:
            pool = WorkerPool(configs, python=str(fake), start_timeout=20)
            try:
                return await pool.start()
            finally:
                await pool.aclose()

        readies = run(main)
        assert sorted(r.worker_id for r in readies) == sorted(c.worker_id for c in configs)
        marks = sorted(
            (float(at), 1 if what == "start" else -1)
            for _, what, at in (
                line.split() for line in fake.with_suffix(".py.log").read_text().splitlines()
            )
        )
        starting = most = 0
        for _, step in marks:
            starting += step
            most = max(most, starting)
        assert most == limit
