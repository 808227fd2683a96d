"""Round-trip latency through the pool and a real worker process (prints figures, asserts none).

    PYTHONPATH=. python benchmarks/worker_roundtrip.py [--pings 2000] [--calls 50]

1. Ping → Pong: engine → pipe → reader thread → wake datagram → pj thread → pipe → engine.
2. Incoming → Answered for calls from sipp: our Answer, pjsua's 200 OK, sipp's ACK.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from tests.sip.conftest import SIPP, sipp, worker_config


def _report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:<28} n={len(ms):<5} p50={statistics.median(ms):.3f} ms  "
        f"p99={p99:.3f} ms  max={ms[-1]:.3f} ms"
    )


async def _pings(pool: WorkerPool, count: int) -> list[float]:
    samples = []
    for token in range(count):
        start = time.perf_counter()
        pool.send(p.Ping(token=token))
        while not isinstance(event := await pool.next_event(5), p.Pong):
            pass
        assert event.token == token
        samples.append(time.perf_counter() - start)
    return samples


async def _calls(pool: WorkerPool, port: int, count: int) -> list[float]:
    samples: list[float] = []
    started: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with sipp(
            "uac_answer_bye.xml",
            Path(tmp),
            remote=f"127.0.0.1:{port}",
            calls=count,
            pause_ms=50,
            timeout_s=60,
        ) as gp:
            while len(samples) < count:
                event = await pool.next_event(10)
                if isinstance(event, p.Incoming):
                    started[event.leg] = time.perf_counter()
                    pool.send(p.Answer(leg=event.leg))
                elif isinstance(event, p.Answered):
                    samples.append(time.perf_counter() - started.pop(event.leg))
            print(f"sipp exit status: {await gp.wait(60)}")
    return samples


async def main(pings: int, calls: int) -> None:
    config = worker_config()
    async with WorkerPool([config]) as pool:
        _report("Ping -> Pong", await _pings(pool, pings))
        if SIPP is not None and calls:
            _report("Incoming -> Answered (ACK)", await _calls(pool, config.listen_port, calls))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.pings, args.calls))
