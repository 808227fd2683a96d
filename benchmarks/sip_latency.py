"""The latency the running engine adds on real SIP, seen from sipp peers (prints figures only).

    PYTHONPATH=. python benchmarks/sip_latency.py [--calls 50] [--answers 300]

One ``callrouter run`` (one SIP worker) on loopback, one consultant on the rota, calls one at a
time, and in the same run sipp calling sipp directly as the baseline. All times come from the
peers: sipp's timestamped message traces (-trace_msg, microseconds) and ``<log>`` marks written
just before a key is sent, plus our own RTP socket standing in for the GP's audio.

1. INVITE → 200: the GP's INVITE sent → its 200 received (engine), against a sipp UAS that
   answers at once (baseline). The engine's 180 comes from the worker alone; the 200 needs the
   engine's decision, so it crosses the worker ⇄ engine pipes once each way.
2. Menu key → consultant INVITE: the GP's key leaves (RFC 4733 pcap, first packet at the mark;
   or, in the bridging pass, SIP INFO) → the consultant's sipp receives our INVITE. Baseline:
   sipp's own one-way INVITE delivery (UAC sent → UAS received), the floor two traces can show.
3. Accept → bridged: the consultant's "1" (first RFC 4733 packet) → the first packet of the
   consultant's audio (a marker tone it sends all along) arriving at the GP's RTP socket. This
   includes pjmedia's jitter buffer and the conference bridge's 20 ms clock.
4. CPU and RSS of the engine and its worker (from /proc): idle, and CPU per call.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.e2e.peers import E2E_SCENARIOS, scenario_path
from tests.e2e.running_engine import RunningEngine, engine_ports
from tests.e2e.tree import NUMBER, Member, TreeSpec, write_tree
from tests.sip.conftest import LOOPBACK, SIPP, free_port, free_range

DTMF_1 = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")
TONE_LEAD_SECONDS = 0.3  # the marker tone runs this long before the "1" in the consultant's pcap
TONE_SECONDS = 2.0
MARKER = bytes([0x00, 0x80]) * 80  # one 20 ms PCMU frame of a full-scale 4 kHz square wave
CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on Linux

_BLOCK = re.compile(
    r"^-{20,} (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    r"UDP message (?P<way>received|sent)[^\n]*\n\n(?P<msg>.*?)(?=^-{20,} |\Z)",
    re.MULTILINE | re.DOTALL,
)


# -- sipp and its traces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    at: float
    received: bool
    first: str
    call_id: str
    cseq: str

    def is_(self, what: str, method: str | None = None) -> bool:
        head = self.first.split(" ", 2)
        kind = head[1] if head[0].startswith("SIP/") else head[0]
        return kind == what and (method is None or self.cseq.endswith(method))


def trace(path: Path) -> list[Msg]:
    msgs = []
    for m in _BLOCK.finditer(path.read_text(errors="replace")):
        text = m.group("msg")
        call_id = re.search(r"^Call-ID: *(\S+)", text, re.MULTILINE | re.IGNORECASE)
        cseq = re.search(r"^CSeq: *(.+?)\s*$", text, re.MULTILINE | re.IGNORECASE)
        msgs.append(
            Msg(
                datetime.strptime(m.group("at"), "%Y-%m-%d %H:%M:%S.%f").timestamp(),
                m.group("way") == "received",
                text.split("\n", 1)[0].strip(),
                call_id.group(1) if call_id else "",
                cseq.group(1) if cseq else "",
            )
        )
    return msgs


def marks(path: Path, name: str) -> list[float]:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [float(line.rsplit("\t", 1)[-1]) for line in lines if line.startswith(name + " ")]


def sipp(
    work: Path, name: str, scenario: Path, port: int, calls: int, *extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """One sipp, calls one at a time (-l 1), traced into ``work/name``."""
    assert SIPP is not None
    out = work / name
    out.mkdir()
    args = [
        SIPP, "-sf", str(scenario), "-i", LOOPBACK, "-p", str(port), "-mp", str(free_range(4)),
        "-cp", str(free_port()), "-m", str(calls), "-l", "1", "-r", "50",
        "-timeout", f"{30 + calls * 6}s", "-timeout_error", "-nostdin",
        "-trace_msg", "-message_file", str(out / "messages.log"),
        "-trace_logs", "-log_file", str(out / "logs.log"),
        "-trace_err", "-error_file", str(out / "errors.log"), *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def finish(process: subprocess.Popen[bytes], out: Path, timeout: float) -> None:
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code != 0:
        errors = (out / "errors.log").read_text(errors="replace")[-1500:]
        sys.exit(f"sipp {out.name} exited {code}:\n{errors}")


def by_call(msgs: Sequence[Msg]) -> list[list[Msg]]:
    calls: dict[str, list[Msg]] = {}
    for msg in msgs:
        calls.setdefault(msg.call_id, []).append(msg)
    return sorted(calls.values(), key=lambda c: c[0].at)


def first(msgs: Sequence[Msg], what: str, method: str | None, *, received: bool) -> float:
    return next(m.at for m in msgs if m.received is received and m.is_(what, method))


# -- RTP: the consultant's marker tone out, the GP's audio in ----------------------------------


def tone_pcap(path: Path) -> None:
    """A pcap sipp can play: PCMU marker frames every 20 ms, with the RFC 4733 "1" events of
    the Debian pcap laid in at TONE_LEAD_SECONDS."""
    packets: list[tuple[float, bytes]] = []
    ssrc, seq = 0x5EED, 1000
    for n in range(int(TONE_SECONDS / 0.02)):
        header = struct.pack("!BBHII", 0x80, 0, seq + n, 160 * n, ssrc)
        packets.append((n * 0.02, header + MARKER))
    for at, payload in rtp_payloads(DTMF_1):
        header = struct.pack("!BBHII", 0x80, 101 | (0x80 if at == 0 else 0), 0, 160 * 15, ssrc)
        packets.append((TONE_LEAD_SECONDS + at, header + payload))
    packets.sort(key=lambda p: p[0])
    numbered = [
        (at, unnumbered[:2] + struct.pack("!H", 5000 + n) + unnumbered[4:])  # one sequence
        for n, (at, unnumbered) in enumerate(packets)
    ]
    write_rtp_pcap(path, numbered)


def write_rtp_pcap(path: Path, packets: Sequence[tuple[float, bytes]]) -> None:
    """Write RTP packets (offset in seconds, RTP bytes; in order) as a pcap sipp can play:
    each in Ethernet/IPv4/UDP on loopback, the i-th with IP id i."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n, (at, rtp) in enumerate(packets):
        udp = struct.pack("!HHHH", 4000, 5000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         socket.inet_aton(LOOPBACK), socket.inet_aton(LOOPBACK))  # fmt: skip
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        sec = 1_700_000_000 + int(at)
        out.append(struct.pack("<IIII", sec, round((at % 1) * 1e6), len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def rtp_payloads(pcap: Path) -> list[tuple[float, bytes]]:
    data, off, t0, found = pcap.read_bytes(), 24, None, []
    while off < len(data):
        sec, usec, size, _ = struct.unpack("<IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + size]
        off += 16 + size
        t0 = sec + usec / 1e6 if t0 is None else t0
        found.append((sec + usec / 1e6 - t0, frame[14 + 20 + 8 + 12 :]))
    return found


class RtpSink:
    """The GP's audio endpoint: records when the first marker frame arrives after ``arm()``."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.hits: list[float] = []
        self._armed = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self._armed = True

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            now = time.time()
            if self._armed and _is_marker(data[12:]):
                self.hits.append(now)
                self._armed = False

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def _is_marker(payload: bytes) -> bool:
    alternations = sum(1 for a, b in itertools.pairwise(payload) if {a, b} == {0x00, 0x80})
    return len(payload) == 160 and alternations >= 150


# -- the engine's processes ----------------------------------------------------------------------


def cpu_rss(pid: int) -> tuple[float, int]:
    """CPU seconds and RSS (KiB) of ``pid`` and its children (the SIP worker)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        pids += [int(c) for c in (task / "children").read_text().split()]
    cpu, rss = 0.0, 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
        status = Path(f"/proc/{p}/status").read_text()
        rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return cpu, rss


# -- report -------------------------------------------------------------------------------------


def ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


def pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def line(name: str, ms: Sequence[float], base: Sequence[float] | None = None) -> None:
    text = (
        f"  {name:<36} n={len(ms):<4} p50={statistics.median(ms):7.2f} ms  "
        f"p99={pct(ms, 0.99):7.2f} ms  max={max(ms):7.2f} ms"
    )
    if base:
        added50 = statistics.median(ms) - statistics.median(base)
        text += f"   added p50={added50:6.2f} p99={pct(ms, 0.99) - pct(base, 0.99):6.2f} ms"
    print(text)


# -- the passes ---------------------------------------------------------------------------------


def direct(work: Path, calls: int) -> tuple[list[float], list[float]]:
    """sipp → sipp: INVITE → 200, and the one-way INVITE delivery, per call."""
    port = free_port()
    uas, uas_out = sipp(work, "direct-uas", scenario_path("bench_uas_answer_now.xml"), port, calls)
    time.sleep(0.3)
    uac, uac_out = sipp(
        work, "direct-uac", scenario_path("uac_answer_bye.xml"), free_port(), calls,
        "-d", "20", "-s", NUMBER, f"{LOOPBACK}:{port}",
    )  # fmt: skip
    finish(uac, uac_out, 60 + calls)
    finish(uas, uas_out, 10)
    answer, one_way = [], []
    for gp, far in zip(by_call(trace(uac_out / "messages.log")),
                       by_call(trace(uas_out / "messages.log")), strict=True):  # fmt: skip
        sent = first(gp, "INVITE", None, received=False)
        answer.append(first(gp, "200", "INVITE", received=True) - sent)
        one_way.append(first(far, "INVITE", None, received=True) - sent)
    return answer, one_way


def engine_answers(work: Path, engine: RunningEngine, calls: int) -> list[float]:
    """GP → engine, answered and hung up while the greeting plays."""
    gp, out = sipp(
        work, "answer-gp", scenario_path("uac_answer_bye.xml"), free_port(), calls,
        "-d", "20", "-s", NUMBER, engine.sip_uri_host,
    )  # fmt: skip
    finish(gp, out, 60 + calls)
    return [
        first(c, "200", "INVITE", received=True) - first(c, "INVITE", None, received=False)
        for c in by_call(trace(out / "messages.log"))
    ]


def engine_hunts(
    work: Path, engine: RunningEngine, member: Member, calls: int, *, info: bool, sink: RtpSink
) -> dict[str, list[float]]:
    """Full calls: key → consultant INVITE; and, when ``info``, accept → bridged audio."""
    tag = "info" if info else "rfc4733"
    # Keys at a uniformly random moment (the scenarios' fixed pauses would sit at one phase of
    # the worker's poll loop and show one edge of the delay distribution, not the spread).
    consultant = _swap(
        (E2E_SCENARIOS / "uas_accept.xml").read_text(),
        '<pause variable="key_d"/>',
        '<pause distribution="uniform" min="200" max="300"/>',
    )
    if info:
        tone_pcap(work / "tone.pcap")
        consultant = _swap(consultant, str(DTMF_1), str(work / "tone.pcap"))
    scenario = work / f"{tag}_uas_accept.xml"
    scenario.write_text(consultant)
    gp_scenario = work / f"{tag}_gp.xml"
    gp_text = scenario_path("bench_uac_info_bye.xml" if info else "uac_menu_bye.xml").read_text()
    gp_scenario.write_text(
        _swap(
            gp_text,
            '<pause milliseconds="300"/>',
            '<pause distribution="uniform" min="300" max="400"/>',
        )
    )
    uas, uas_out = sipp(work, f"{tag}-consultant", scenario, member.port, calls,
                        "-set", "ring_ms", "0", "-set", "key_ms", "200")  # fmt: skip
    time.sleep(0.3)
    extra = ["-key", "gp_rtp_port", str(sink.port)] if info else []
    sink.arm()
    gp, gp_out = sipp(
        work, f"{tag}-gp", gp_scenario, free_port(), calls,
        "-set", "talk_ms", "1500", *extra, "-s", NUMBER, engine.sip_uri_host,
    )  # fmt: skip
    rearm = threading.Thread(target=_rearm_per_call, args=(uas_out, sink, calls), daemon=True)
    if info:
        rearm.start()
    finish(gp, gp_out, 60 + calls * 5)
    finish(uas, uas_out, 10)
    keys = marks(gp_out / "logs.log", "menu")
    legs = [
        first(c, "INVITE", None, received=True) for c in by_call(trace(uas_out / "messages.log"))
    ]
    result = {"key_to_invite": [leg - key for key, leg in zip(keys, legs, strict=True)]}
    if info:
        accepts = [a + TONE_LEAD_SECONDS for a in marks(uas_out / "logs.log", "accept")]
        result["accept_to_bridged"] = [
            next(h for h in sink.hits if h > a) - a
            for a in accepts
            if any(h > a for h in sink.hits)
        ]
    return result


def _swap(text: str, old: str, new: str) -> str:
    if old not in text:
        sys.exit(f"scenario changed: {old!r} not found")
    return text.replace(old, new)


def _rearm_per_call(uas_out: Path, sink: RtpSink, calls: int) -> None:
    """Arm the sink again each time the consultant keys its "1" (calls run one at a time)."""
    seen = 0
    deadline = time.monotonic() + 60 + calls * 5
    while seen < calls and time.monotonic() < deadline:
        found = len(marks(uas_out / "logs.log", "accept"))
        if found > seen:
            seen = found
            sink.arm()
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=50, help="full calls per hunt pass")
    parser.add_argument("--answers", type=int, default=300, help="calls in the answer pass")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if SIPP is None or shutil.which("espeak-ng") is None:
        sys.exit("needs sipp (sip-tester) and espeak-ng")

    with tempfile.TemporaryDirectory(prefix="sip-latency-") as tmp:
        work = Path(tmp)
        member = Member("c-bench", free_port())
        ports = engine_ports()
        write_tree(work / "tree", TreeSpec(members=(member,)), ports, work / "prompts")
        engine = RunningEngine(work / "tree" / "config.yaml", ports, work / "cdr.sqlite3",
                               work / "engine.log")  # fmt: skip
        sink = RtpSink()
        engine.start()
        try:
            assert engine.process is not None
            pid = engine.process.pid
            time.sleep(1.0)
            cpu0, rss_idle = cpu_rss(pid)
            time.sleep(args.idle_seconds)
            cpu1, _ = cpu_rss(pid)
            idle_share = (cpu1 - cpu0) / args.idle_seconds

            base_answer, base_one_way = direct(work, args.answers)
            answers = engine_answers(work, engine, args.answers)
            t0, (c0, _) = time.monotonic(), cpu_rss(pid)
            rfc = engine_hunts(work, engine, member, args.calls, info=False, sink=sink)
            info = engine_hunts(work, engine, member, args.calls, info=True, sink=sink)
            elapsed, (c1, rss_after) = time.monotonic() - t0, cpu_rss(pid)
        finally:
            engine.stop()
            sink.close()

    print(f"sip_latency: one worker, calls one at a time; {time.strftime('%Y-%m-%d %H:%M')}")
    print("INVITE -> 200 (GP side)")
    line("sipp -> sipp (baseline)", ms(base_answer))
    line("sipp -> engine", ms(answers), ms(base_answer))
    print("menu key -> consultant INVITE (GP key sent -> consultant INVITE received)")
    line("sipp one-way INVITE (baseline)", ms(base_one_way))
    line("RFC 4733 key (first packet)", ms(rfc["key_to_invite"]), ms(base_one_way))
    line("SIP INFO key", ms(info["key_to_invite"]), ms(base_one_way))
    print("accept (consultant's first '1' packet) -> first consultant audio at the GP")
    line("bridged", ms(info["accept_to_bridged"]))
    full_calls = 2 * args.calls
    busy = (c1 - c0) - idle_share * elapsed
    print("engine + worker processes")
    print(f"  idle: CPU {idle_share * 100:.2f}% of one core, RSS {rss_idle / 1024:.1f} MiB")
    print(
        f"  full calls: CPU {busy / full_calls * 1000:.1f} ms per call above idle "
        f"({full_calls} calls of ~2.5 s), RSS after {rss_after / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
