"""Idle CPU of spare SIP workers, and how fast an RFC 4733 digit reaches the engine (prints
figures, asserts none).

    PYTHONPATH=. .venv/bin/python benchmarks/idle_worker.py [--workers 3] [--seconds 20]
        [--digits 200]

1. Idle: ``--workers`` real worker processes with no call; their CPU time (every thread, from
   ``/proc/PID/task/*/schedstat``, nanoseconds) over ``--seconds``, as % of one core per worker.
2. Digit latency: a plain-socket UAC calls one worker (INVITE with PCMU + telephone-event 101),
   is answered, then sends ``--digits`` RFC 4733 events from the port its SDP named, one every
   30-80 ms (so they land at every phase of the worker's poll); each sample is the time from the
   first event packet leaving to the ``Digit`` event arriving in the engine's pool.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import socket
import statistics
import struct
import subprocess
import time
import uuid
from pathlib import Path

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from tests.sip.conftest import LOOPBACK, free_port, free_range, worker_config

_DIGITS = "0123456789*#"
_EVENT_PT = 101


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended in between
    return total


async def idle_cpu(count: int, seconds: float) -> list[float]:
    """% of one core each idle worker used over ``seconds`` (after a 2 s settle)."""
    configs = [worker_config(f"w{i}") for i in range(count)]
    async with WorkerPool(configs, stderr=subprocess.DEVNULL) as pool:
        await asyncio.sleep(2.0)
        pids = [pool.pid(c.worker_id) for c in configs]
        assert all(pid is not None for pid in pids)
        before = [_cpu_ns(pid) for pid in pids if pid is not None]
        start = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - start
        after = [_cpu_ns(pid) for pid in pids if pid is not None]
    return [(b - a) / 1e9 / wall * 100 for a, b in zip(before, after, strict=True)]


def _invite(worker_port: int, sip_port: int, rtp_port: int) -> tuple[bytes, str]:
    call_id = f"{uuid.uuid4().hex}@bench"
    sdp = (
        "v=0\r\n"
        f"o=bench 1 1 IN IP4 {LOOPBACK}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {LOOPBACK}\r\n"
        "t=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 {_EVENT_PT}\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:{_EVENT_PT} telephone-event/8000\r\n"
        f"a=fmtp:{_EVENT_PT} 0-15\r\n"
        "a=sendrecv\r\n"
    )
    head = (
        f"INVITE sip:0800111222@{LOOPBACK}:{worker_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{sip_port};branch=z9hG4bK{uuid.uuid4().hex[:10]}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:gp@{LOOPBACK}:{sip_port}>;tag=bench1\r\n"
        f"To: <sip:0800111222@{LOOPBACK}:{worker_port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:gp@{LOOPBACK}:{sip_port}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return (head + sdp).encode(), call_id


def _ack(worker_port: int, sip_port: int, call_id: str, to_header: str) -> bytes:
    return (
        f"ACK sip:0800111222@{LOOPBACK}:{worker_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{sip_port};branch=z9hG4bK{uuid.uuid4().hex[:10]}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:gp@{LOOPBACK}:{sip_port}>;tag=bench1\r\n"
        f"To: {to_header}\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class _RtpSender:
    """RFC 4733 events from one socket: 3 start packets (marker on the first), 3 end ones."""

    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        self._sock, self._target = sock, target
        self._seq, self._ts = random.randrange(1 << 16), random.randrange(1 << 31)
        self._ssrc = random.randrange(1 << 32)

    def _packet(self, event: int, duration: int, *, marker: bool, end: bool) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFF
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | _EVENT_PT, self._seq, self._ts, self._ssrc
        )
        return header + struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)

    def first(self, digit: str) -> None:
        self._ts = (self._ts + 8000) & 0xFFFFFFFF
        self._sock.sendto(
            self._packet(_DIGITS.index(digit), 160, marker=True, end=False), self._target
        )

    def rest(self, digit: str) -> None:
        event = _DIGITS.index(digit)
        for duration in (320, 480):
            self._sock.sendto(self._packet(event, duration, marker=False, end=False), self._target)
        for _ in range(3):
            self._sock.sendto(self._packet(event, 640, marker=False, end=True), self._target)


async def _expect(pool: WorkerPool, kind: type[p.Event], timeout: float = 5.0) -> p.Event:
    while True:
        event = await pool.next_event(timeout)
        if isinstance(event, kind):
            return event


async def digit_latency(count: int) -> list[float]:
    """Seconds from a digit's first RTP packet to its ``Digit`` event, ``count`` samples."""
    config = worker_config("w0", media_timeout=0.0)
    sip_port, rtp_port = free_port(), free_range(2)
    loop = asyncio.get_running_loop()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp,
    ):
        sip.bind((LOOPBACK, sip_port))
        rtp.bind((LOOPBACK, rtp_port))
        sip.settimeout(5.0)
        async with WorkerPool([config], stderr=subprocess.DEVNULL) as pool:
            invite, call_id = _invite(config.listen_port, sip_port, rtp_port)
            sip.sendto(invite, (LOOPBACK, config.listen_port))
            incoming = await _expect(pool, p.Incoming)
            assert isinstance(incoming, p.Incoming)
            pool.send(p.Answer(leg=incoming.leg))
            while True:
                reply = (await loop.run_in_executor(None, sip.recv, 65535)).decode()
                if reply.startswith("SIP/2.0 200"):
                    break
            to_header = re.search(r"^To: (.*)$", reply, re.MULTILINE | re.IGNORECASE)
            media = re.search(r"^m=audio (\d+)", reply, re.MULTILINE)
            assert to_header, reply
            assert media, reply
            sip.sendto(
                _ack(config.listen_port, sip_port, call_id, to_header.group(1).strip()),
                (LOOPBACK, config.listen_port),
            )
            sender = _RtpSender(rtp, (LOOPBACK, int(media.group(1))))
            await asyncio.sleep(0.5)
            samples = []
            for i in range(count):
                digit = _DIGITS[i % len(_DIGITS)]
                await asyncio.sleep(random.uniform(0.03, 0.08))
                start = time.perf_counter()
                sender.first(digit)
                event = await _expect(pool, p.Digit)
                samples.append(time.perf_counter() - start)
                assert isinstance(event, p.Digit), event
                assert event.digit == digit, event
                sender.rest(digit)
            pool.send(p.Hangup(leg=incoming.leg))
            await _expect(pool, p.LegClosed)
    return samples


def _report(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:<30} n={len(ms):<4} p50={statistics.median(ms):.2f} ms  p99={p99:.2f} ms"
        f"  max={ms[-1]:.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--digits", type=int, default=200)
    args = parser.parse_args()
    shares = await idle_cpu(args.workers, args.seconds)
    print(
        f"idle CPU per spare worker       {statistics.mean(shares):.3f}% of a core"
        f" (each: {', '.join(f'{s:.3f}%' for s in shares)}; {args.seconds:.0f} s)"
    )
    if args.digits:
        samples = await digit_latency(args.digits)
        _report("RFC 4733 digit -> Digit event", [s * 1000 for s in samples])


if __name__ == "__main__":
    asyncio.run(main())
