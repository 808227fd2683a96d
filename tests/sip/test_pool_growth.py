"""On-demand workers: the rule on plain data (a hand-advanced ``now``), then real worker processes
grown under a sipp call's load and retired once idle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool, WorkerView
from callrouter.sip.pool_growth import Decision, PoolGrowth, decide
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config


def view(
    name: str, *, started: bool = True, legs: int = 0, ready: bool | None = None
) -> WorkerView:
    ready = started if ready is None else ready
    return WorkerView(
        name=name,
        port=6000 + int(name[1:]),
        started=started,
        ready=ready,
        retiring=False,
        slots=4 if ready else 0,
        held=legs,
    )


def plan(
    *workers: WorkerView, idle: dict[str, float] | None = None, now: float = 100.0
) -> Decision:
    return decide(workers, idle or {}, base=1, maximum=3, idle_seconds=30.0, now=now)


class TestDecide:
    """Grow below one worker's worth free, up to the cap; retire idle extras, never the spare."""

    def test_a_free_worker_is_enough(self) -> None:
        assert plan(view("w0"), view("w1", started=False)) == Decision()

    def test_one_leg_taken_starts_the_next_standing_by(self) -> None:
        decision = plan(view("w0", legs=1), view("w1", started=False), view("w2", started=False))
        assert decision.grow == "w1"

    def test_a_worker_starting_counts_as_free(self) -> None:
        starting = view("w1", ready=False)
        assert plan(view("w0", legs=3), starting, view("w2", started=False)) == Decision()

    def test_never_beyond_the_cap(self) -> None:
        full = [view(f"w{i}", legs=4) for i in range(3)]
        assert plan(*full) == Decision()

    def test_the_spare_is_not_retired(self) -> None:
        decision = plan(view("w0", legs=2), view("w1"), idle={"w1": 0.0})
        assert decision == Decision()

    def test_an_idle_extra_beyond_the_spare_retires_when_due(self) -> None:
        workers = (view("w0"), view("w1"), view("w2"))
        idle = {"w0": 0.0, "w1": 50.0, "w2": 60.0}
        assert plan(*workers, idle=idle, now=70.0) == Decision(wake_at=80.0)
        assert plan(*workers, idle=idle, now=90.0) == Decision(retire="w2")

    def test_the_base_workers_never_retire(self) -> None:
        assert plan(view("w0"), idle={"w0": 0.0}, now=1e9) == Decision()

    def test_nothing_moves_while_one_retires(self) -> None:
        retiring = WorkerView("w1", 6001, started=True, ready=True, retiring=True, slots=4, held=0)
        assert plan(view("w0", legs=4), retiring, view("w2", started=False)) == Decision()


@pytest.mark.sip
@needs_sipp
@pytest.mark.timeout(60)
class TestRealWorkers:
    """Three configured workers, one started: a call makes a spare start; idle, it stops."""

    def test_grows_under_load_then_retires_when_idle(self, tmp_path: Path) -> None:
        async def main() -> None:
            configs = [worker_config(f"w{i}") for i in range(3)]
            async with WorkerPool(configs, initial=1) as pool:
                growth = PoolGrowth(pool, base=1, maximum=3, idle_seconds=1.0, drain_seconds=0.1)
                growth.start()
                try:
                    events = Events(pool)
                    assert [w.started for w in pool.workers()] == [True, False, False]
                    assert pool.pid("w1") is None
                    remote = f"127.0.0.1:{configs[0].listen_port}"
                    async with sipp("uac_answer_wait_bye.xml", tmp_path, remote=remote) as gp:
                        incoming = await events.expect(p.Incoming)
                        pool.send(p.Answer(leg=incoming.leg))
                        await events.expect(p.Answered, leg=incoming.leg)
                        await until(lambda: pool.slots("w1") == 4)  # the spare is ready
                        first_spare = pool.pid("w1")
                        assert first_spare is not None
                        assert pool.free_slots == 3 + 4
                        assert pool.pid("w2") is None  # one spare is enough
                        assert growth.grown == 1
                        pool.send(p.Hangup(leg=incoming.leg))
                        await events.expect(p.LegClosed, leg=incoming.leg)
                        assert await gp.wait() == 0, gp.errors()
                    await until(lambda: growth.retired == 1)
                    assert [w.started for w in pool.workers()] == [True, False, False]
                    assert pool.pid("w1") is None
                    assert pool.free_slots == 4
                    assert not events.unmatched(p.WorkerDied)  # retiring is not dying

                    # load again: a fresh process is grown on the same port
                    async with sipp("uac_answer_wait_bye.xml", tmp_path, remote=remote) as gp:
                        incoming = await events.expect(p.Incoming)
                        await until(lambda: pool.slots("w1") == 4)
                        assert pool.pid("w1") not in {None, first_spare}
                        pool.send(p.Reject(leg=incoming.leg, status=486))
                        await events.expect(p.LegClosed, leg=incoming.leg)
                        await gp.wait()
                finally:
                    await growth.aclose()

        run(main, timeout=50)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Until ``condition()`` is true, checked every 50 ms (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
