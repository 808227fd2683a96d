"""A worker whose request gate is off (``--no-gate``: to diagnose the gate, or on a pjsua2 build
it cannot measure) still keeps the allow-list: pjsua's incoming-call callback answers a caller
from outside it 403 before any ringing, reports Refused, and offers the engine nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.sip.worker_config import parse_argv
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, needs_sipp, pytest.mark.timeout(60)]


@pytest.mark.parametrize("gate", [False, True], ids=["gate off", "gate on"])
def test_a_caller_outside_the_allow_list_gets_403_and_never_rings(
    tmp_path: Path, gate: bool
) -> None:
    async def main() -> None:
        config = worker_config(allow=("10.0.0.0/8",), gate=gate)  # loopback is outside it
        async with WorkerPool([config]) as pool:
            events = Events(pool)
            remote = f"127.0.0.1:{config.listen_port}"
            async with sipp("uac_expect_403_no_ringing.xml", tmp_path, remote=remote) as gp:
                refused = await events.expect(p.Refused)
                assert (refused.status, refused.source_host) == (403, "127.0.0.1")
                assert await gp.wait() == 0, gp.errors()  # 403, and no 180 before it
            await events.settle()
            assert not events.unmatched(p.Incoming)
            said_off = [
                e for e in events.seen if isinstance(e, p.Log) and "turned off" in e.message
            ]
            assert bool(said_off) is not gate
            assert pool.free_slots == 4

    run(main)


def test_the_switch_reaches_the_worker_process() -> None:
    config = worker_config(gate=False)
    assert "--no-gate" in config.argv()
    assert parse_argv(config.argv()) == config
    assert "--no-gate" not in worker_config().argv()
