"""kill -9 of a real worker holding a GP, an answered consultant and a ringing one: the pool's
reaper ends each at the far end with what the worker wrote while alive (BYE, BYE, CANCEL + ACK),
and each sipp peer's scenario completes; the worker comes back on its port."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.sip.reaper import Reaper
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, needs_sipp, pytest.mark.timeout(60)]


class TestKilledWorker:
    """Every peer of the dead worker hears the call is over; the worker is restarted."""

    def test_peers_get_bye_and_cancel(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            reaper = Reaper(inbound=True)  # no edge in front: the GP's leg is ours to end too
            async with WorkerPool([config], reaper=reaper) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_answer_wait_bye.xml", tmp_path, timeout_s=20) as talking,
                    sipp("uas_ring_cancel.xml", tmp_path, timeout_s=20) as ringing,
                    sipp("uac_answer_wait_bye.xml", tmp_path, remote=remote, timeout_s=20) as gp,
                ):
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    await events.expect(p.Answered, leg=incoming.leg)
                    uri = f"sip:consultant@{talking.uri_host}"
                    pool.send(p.Dial(leg="L1", uri=uri), near=incoming.leg)
                    await events.expect(p.Answered, leg="L1")
                    pool.send(p.Dial(leg="L2", uri=f"sip:other@{ringing.uri_host}"), near="L1")
                    await events.expect(p.Ringing, leg="L2")
                    while len(pool.teardowns("w0")) < 3:  # bounded by run()'s timeout
                        await asyncio.sleep(0.02)
                    kinds = {t.leg: t.messages[0].split()[0] for t in pool.teardowns("w0")}
                    assert kinds == {incoming.leg: "BYE", "L1": "BYE", "L2": "CANCEL"}
                    pid = pool.pid("w0")
                    assert pid is not None
                    os.kill(pid, signal.SIGKILL)

                    died = await events.expect(p.WorkerDied)
                    assert set(died.legs) == {incoming.leg, "L1", "L2"}
                    assert await gp.wait() == 0, gp.errors()  # got a BYE, answered it
                    assert await talking.wait() == 0, talking.errors()
                    assert await ringing.wait() == 0, ringing.errors()  # CANCEL, 487, ACK
                ready = await events.expect(p.Ready, worker_id="w0.1")  # restarted
                assert ready.sip_port == config.listen_port
                await reaper.aclose()

        run(main, timeout=45)
