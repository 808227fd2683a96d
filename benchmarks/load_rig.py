"""The pieces benchmarks/sip_load.py drives: the engine as a process tree it can always stop,
what that tree costs (/proc), and the RTP the sipp peers play (pcap files written here).

``EngineTree`` runs the real ``python -m callrouter run`` in a session of its own. Kamailio gets
a session of its own from the engine, so stopping is: SIGTERM to the engine (it stops the edge
and the workers), then SIGKILL to every process of the tree still alive, by pid (the tree is
read from /proc before the engine goes, and again after).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.sip_latency import DTMF_1, rtp_payloads, write_rtp_pcap
from tests.e2e.tree import Ports

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
FRAME_SECONDS = 0.02  # 20 ms of PCMU: 160 samples


# -- the engine's process tree -------------------------------------------------------------------


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class EngineTree:
    """One ``callrouter run`` and everything it starts."""

    config: Path
    ports: Ports
    work: Path
    process: subprocess.Popen[bytes] | None = None
    seen: dict[int, str] = field(default_factory=dict)  # pid -> its start time (stat field 22)

    @property
    def log_path(self) -> Path:
        return self.work / "engine.log"

    def start(self, limit: float) -> None:
        args = [
            sys.executable, "-m", "callrouter", "run", "--config", str(self.config),
            "--sip-port", str(self.ports.edge), "--metrics-port", str(self.ports.metrics),
            "--health-port", str(self.ports.health), "--db", str(self.work / "cdr.sqlite3"),
            "--drain-seconds", "1",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=REPO,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engine exited with {self.process.returncode}:\n{self.said()}")
            with contextlib.suppress(OSError, ValueError):
                if self.health().get("status") == "ok":
                    self._remember()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"engine not healthy within {limit:.0f}s:\n{self.said()}")

    def health(self) -> dict[str, object]:
        url = f"http://{LOOPBACK}:{self.ports.health}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, object] = json_loads(response.read())
        except urllib.error.HTTPError as error:  # 503 while starting or draining
            body = json_loads(error.read())
        return body

    def series(self) -> dict[str, float]:
        """Every series of the engine's /metrics: ``name{labels}`` -> value."""
        url = f"http://{LOOPBACK}:{self.ports.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        found = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    found[key] = float(value)
        return found

    def pids(self) -> list[int]:
        """The engine and every descendant: the workers, Kamailio and its children."""
        if self.process is None or self.process.poll() is not None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return found

    def stop(self) -> None:
        """SIGTERM and 20 s to finish, then SIGKILL to whatever of the tree is left."""
        process = self.process
        if process is None:
            return
        self._remember()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                self._remember()
                process.kill()
                process.wait()
        for pid, started in self.seen.items():
            if _start_time(pid) == started:  # still that process, not a reused pid
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def _remember(self) -> None:
        for pid in self.pids():
            started = _start_time(pid)
            if started:
                self.seen[pid] = started

    def tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return "(no engine log)"

    def said(self, lines: int = 15) -> str:
        """The engine's last lines, without pjsip's start-up banners (``HH:MM:SS.mmm ...``)."""
        text = self.tail(200_000).splitlines()
        own = [line for line in text if not re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line)]
        return "\n".join(own[-lines:])


def json_loads(data: bytes) -> dict[str, object]:
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


# -- what the tree costs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """CPU seconds and PSS (KiB) by role at one moment, and the machine's busy/total ticks."""

    at: float
    cpu: dict[str, float]
    pss: dict[str, int]
    count: dict[str, int]
    machine_busy: int
    machine_total: int

    def cpu_share(self, later: Usage, role: str) -> float:
        """Cores of ``role`` used between this sample and ``later`` (1.0 = one whole core)."""
        return (later.cpu.get(role, 0.0) - self.cpu.get(role, 0.0)) / (later.at - self.at)

    def machine_busy_share(self, later: Usage) -> float:
        """How busy the whole machine was in between (0..1 of all its cores)."""
        total = later.machine_total - self.machine_total
        return (later.machine_busy - self.machine_busy) / total if total else 0.0


def role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    if b"kamailio" in cmdline:
        return "kamailio"
    if cmdline.startswith(b"/usr/bin/sipp"):
        return "sipp"
    if b"callrouter.sip.worker" in cmdline:
        return "workers"
    return "engine"


def _cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid``, in nanoseconds from schedstat (the tick counts of
    /proc/<pid>/stat are truncated to 10 ms per process: too coarse for an idle worker)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def usage(pids: list[int]) -> Usage:
    cpu: dict[str, float] = {}
    pss: dict[str, int] = {}
    count: dict[str, int] = {}
    for pid in pids:
        kind = role(pid)
        try:
            seconds = _cpu_seconds(pid)
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue  # exited in between
        cpu[kind] = cpu.get(kind, 0.0) + seconds
        kib = next((int(x.split()[1]) for x in rollup.splitlines() if x.startswith("Pss:")), 0)
        pss[kind] = pss.get(kind, 0) + kib
        count[kind] = count.get(kind, 0) + 1
    stat = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in stat]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return Usage(time.monotonic(), cpu, pss, count, sum(ticks) - idle, sum(ticks))


# -- RTP for the peers to play ------------------------------------------------------------------


def _ulaw(sample: int) -> int:
    """G.711 mu-law of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


# 20 ms of a 400 Hz tone at about -12 dBFS: "talk" that is not silence
_TALK_FRAME = bytes(_ulaw(int(8000 * math.sin(2 * math.pi * 400 * n / 8000))) for n in range(160))


def talk_pcap(path: Path, seconds: float, key_at: float) -> None:
    """A pcap sipp plays (``play_pcap_audio``): PCMU talk every 20 ms for ``seconds``, with the
    key "1" as RFC 4733 events (payload type 101) at ``key_at`` seconds."""
    ssrc = random.getrandbits(32)
    packets: list[tuple[float, int, int, bytes]] = []  # at, payload type + marker, ts, payload
    for n in range(int(seconds / FRAME_SECONDS)):
        packets.append((n * FRAME_SECONDS, 0, 160 * n, _TALK_FRAME))
    key_ts = 160 * round(key_at / FRAME_SECONDS)
    for i, (at, payload) in enumerate(rtp_payloads(DTMF_1)):
        packets.append((key_at + at, 101 | (0x80 if i == 0 else 0), key_ts, payload))
    packets.sort(key=lambda p: p[0])
    write_rtp_pcap(
        path,
        [
            (at, struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload)
            for seq, (at, pt, ts, payload) in enumerate(packets)
        ],
    )


# -- who hears the consultants' talk -----------------------------------------------------------

_ETH_P_ALL = 0x0003
_SO_ATTACH_FILTER = 26
_PACKET_HOST = 0  # received, not our own copy of a sent packet


def _udp_to_port_filter(port: int) -> bytes:
    """Classic BPF: keep IPv4 UDP datagrams to ``port`` (lo has a 14-byte link header)."""
    program = [
        (0x28, 0, 0, 12),  # ldh [12]         ethertype
        (0x15, 0, 6, 0x0800),  # jeq IPv4, else drop
        (0x30, 0, 0, 23),  # ldb [23]         IP protocol
        (0x15, 0, 4, 17),  # jeq UDP, else drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf) IP header length
        (0x48, 0, 0, 16),  # ldh [x+16]       UDP destination port
        (0x15, 0, 1, port),  # jeq port
        (0x06, 0, 0, 0xFFFF),  # keep
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *insn) for insn in program)


def talk_heard(port: int, seconds: float) -> dict[int, int]:
    """For ``seconds``, the RTP datagrams to 127.0.0.1:``port`` (the GPs' media port) that carry
    the consultants' talk frame, counted per source port (one per bridged call's worker leg)."""
    import ctypes  # noqa: PLC0415 - only here

    code = _udp_to_port_filter(port)
    buffer = ctypes.create_string_buffer(code)
    program = struct.pack("HL", len(code) // 8, ctypes.addressof(buffer))
    heard: dict[int, int] = {}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
        sock.bind(("lo", 0))
        sock.settimeout(0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data, address = sock.recvfrom(512)
            except TimeoutError:
                continue
            if address[2] != _PACKET_HOST or len(data) < 14 + 20 + 8 + 12 + 40:
                continue
            start = 14 + (data[14] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", data[start : start + 4])
            if dport == port and data[start + 8 + 12 : start + 8 + 12 + 40] in _TALK_FRAME * 2:
                heard[sport] = heard.get(sport, 0) + 1
    return heard


def udp_drops(low: int, high: int) -> int:
    """Datagrams the kernel dropped (receive buffer full) on loopback UDP sockets bound to a
    port in ``low..high``, since each socket was opened (/proc/net/udp, last column)."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if low <= port <= high:
            total += int(fields[-1])
    return total
