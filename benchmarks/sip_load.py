"""How many bridged calls with audio one machine holds through the edge and the worker pool
(prints figures only; a script, not a test).

    PYTHONPATH=. python benchmarks/sip_load.py [--max-calls 200] [--step 20] [--hold-seconds 10]
        [--workers N] [--rate 20] [--answers 1000] [--idle-seconds 10] [--quick]

One real ``callrouter run`` on a generated config: a Kamailio edge, N SIP workers (default: enough
for --max-calls, plus a spare) and a rota of --max-calls + --step consultants whose URIs all name
one sipp UAS on 127.0.0.1. Every call is a sipp GP (benchmarks/scenarios/load_gp.xml) that keys
"1" at the menu as RFC 4733 and talks (PCMU every 20 ms); the consultant answers, keys "1" to
accept and talks back; the GP hangs up after the hold. In the same run:

1. Idle: CPU of the engine, each worker and Kamailio with no calls.
2. Answer latency (GP's INVITE sent -> 200 received, sipp's microsecond traces), --answers calls
   one at a time: sipp -> sipp directly (the baseline) and sipp -> edge -> worker -> engine, in
   alternating chunks of 100. The difference is what the engine adds at answer.
3. Ramp: levels of --step, 2 x --step ... calls placed at --rate per second, every one held
   together for --hold-seconds. A level passes when every GP and consultant sipp call ran as
   scripted (no error, no early BYE), the engine's records show every call connected and all
   of them bridged at once, and while all are held every GP's media stream carries the
   consultant's talk frames (>= 40 of 50 a second, counted on lo with a packet socket: needs
   root). The ramp stops at the first level that fails; what it shows names the limit.
   CPU and PSS (/proc/<pid>/smaps_rollup) of the engine, the workers and Kamailio are read
   while every call of a level is held.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from benchmarks.edge_latency import answers
from benchmarks.load_report import HEARD_FRAMES, Level, evidence, report
from benchmarks.load_rig import (
    EngineTree,
    Usage,
    free_tcp_port,
    talk_heard,
    talk_pcap,
    udp_drops,
    usage,
)
from benchmarks.sip_latency import by_call, direct, first, trace
from callrouter.worker_plan import MAX_WORKERS
from tests.e2e.running_engine import rtp_range
from tests.e2e.tree import NUMBER, Member, Ports, TreeSpec, write_tree
from tests.sip.conftest import LOOPBACK, SIPP, free_port, free_range

SCENARIOS = Path(__file__).parent / "scenarios"
RTP_PORTS_PER_WORKER = 16  # 4 legs x RTP + RTCP, with room
KEY_AT = 0.5  # the consultant keys "1" this long after its ACK (the whisper is playing)
SET_UP_SECONDS = 3.0  # GP answered -> bridged, with room: menu key, hunt, ring, accept
ANSWER_CHUNK = 100  # calls per answer pass before the other pass takes a turn


def main() -> None:
    args = _options()
    if SIPP is None or shutil.which("espeak-ng") is None or not Path("/usr/sbin/kamailio").exists():
        sys.exit("needs sipp (sip-tester), espeak-ng and kamailio")
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # SIGINT: even if inherited
        signal.signal(signum, _exit_on_signal)  # as ignored (started in the background)
    with tempfile.TemporaryDirectory(prefix="sip-load-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        consultant_port = free_port()
        members = tuple(
            Member(f"c{i:03d}", consultant_port) for i in range(args.max_calls + args.step)
        )
        ports = _ports(args.workers)
        spec = TreeSpec(members=members, workers=args.workers, edge=True,
                        max_concurrent_calls=args.max_calls * 2, edge_pike_requests=100_000,
                        ring_seconds=10.0, confirm_seconds=5.0, log_level="WARNING")  # fmt: skip
        write_tree(work / "tree", spec, ports, work / "prompts")
        engine = EngineTree(work / "tree" / "config.yaml", ports, work)
        stack.callback(engine.stop)
        began = time.monotonic()
        try:
            engine.start(limit=60 + args.workers * 2)
        except RuntimeError as error:
            sys.exit(f"sip_load: {error}")
        print(f"engine up: {args.workers} workers + edge in {time.monotonic() - began:.1f}s",
              flush=True)  # fmt: skip
        time.sleep(2.0)
        idle0 = usage(engine.pids())
        time.sleep(args.idle_seconds)
        idle1 = usage(engine.pids())
        print("answer passes...", flush=True)
        base_answer, edge_answer = _answer_passes(work, ports, args.answers)
        levels: list[Level] = []
        for calls in range(args.step, args.max_calls + 1, args.step):
            print(f"level {calls} calls...", flush=True)
            level = _run_level(work, engine, consultant_port, calls, args, stack)
            levels.append(level)
            if not level.passed:
                break
            _wait_idle(engine, 60)
        report(args, idle0, idle1, base_answer, edge_answer, levels)


def _answer_passes(work: Path, ports: Ports, total: int) -> tuple[list[float], list[float]]:
    """INVITE -> 200 of sipp -> sipp and of sipp -> edge, in alternating chunks of about 100
    calls, so load from anything else on the machine weighs on both alike."""
    base: list[float] = []
    edge: list[float] = []
    chunks = max(1, round(total / ANSWER_CHUNK))
    for i in range(chunks):
        size = total // chunks + (1 if i < total % chunks else 0)
        folder = work / f"answers-{i}"
        folder.mkdir()
        base += direct(folder, size)[0]
        edge += answers(folder, "edge", f"{LOOPBACK}:{ports.edge}", size)
    return base, edge


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-calls", type=int, default=200, help="the last ramp level")
    parser.add_argument("--step", type=int, default=20, help="calls added per level")
    parser.add_argument("--hold-seconds", type=float, default=10.0, help="all calls held together")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="SIP workers (default: 2 calls each for --max-calls, plus 1 spare)",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="new calls per second")
    parser.add_argument("--answers", type=int, default=1000, help="calls per answer pass")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    smoke = "smoke run: 3 workers, levels of 2 and 4 calls, 30 answers"
    parser.add_argument("--quick", action="store_true", help=smoke)
    args = parser.parse_args()
    if args.quick:
        args.max_calls, args.step, args.hold_seconds = 4, 2, 2.0
        args.answers, args.idle_seconds, args.rate = 30, 2.0, 10.0
        args.workers = args.workers or 3
    args.workers = args.workers or math.ceil(args.max_calls / 2) + 1
    if args.step < 1 or args.max_calls < args.step or args.rate <= 0:
        parser.error("need 1 <= --step <= --max-calls and --rate > 0")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be 1-{MAX_WORKERS} (ramps past {2 * MAX_WORKERS} calls"
                     " need a pjsua2 build with more than 4 legs a worker)")  # fmt: skip
    return args


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _ports(workers: int) -> Ports:
    first = free_range(workers + 1)  # the edge, then the workers' SIP ports
    size = workers * RTP_PORTS_PER_WORKER
    rtp = rtp_range(size)
    return Ports(sip=first + 1, edge=first, rtp_min=rtp, rtp_max=rtp + size - 1,
                 metrics=free_tcp_port(), health=free_tcp_port())  # fmt: skip


# -- one level of the ramp ------------------------------------------------------------------------


def _run_level(
    work: Path,
    engine: EngineTree,
    consultant_port: int,
    calls: int,
    args: argparse.Namespace,
    stack: contextlib.ExitStack,
) -> Level:
    level = Level(calls)
    level_start = time.time()
    before = _series(engine)
    drops = _tree_drops(engine, args.workers)
    began = usage(engine.pids())
    out = work / f"level-{calls}"
    out.mkdir()
    ramp = calls / args.rate
    talk = args.hold_seconds + ramp + SET_UP_SECONDS
    window = max(args.hold_seconds - 1.5, 0.5)  # CPU is read over this, all calls held
    talk_pcap(out / "gp.pcap", talk, key_at=0.0)
    talk_pcap(out / "consultant.pcap", talk + 2.0, key_at=KEY_AT)
    consultant = _sipp(
        out, "consultant", "load_consultant.xml", {"CONSULTANT_PCAP": out / "consultant.pcap"},
        consultant_port, calls, timeout=talk + ramp + 60, media=free_range(4),
    )  # fmt: skip
    stack.callback(_kill, consultant)
    time.sleep(0.3)
    gp_media = free_range(4)
    gp = _sipp(
        out, "gp", "load_gp.xml", {"GP_PCAP": out / "gp.pcap"}, free_port(), calls,
        timeout=talk + ramp + 60, media=gp_media,
        extra=["-r", f"{args.rate:g}", "-set", "talk_ms", f"{talk * 1000:.0f}",
               "-s", NUMBER, f"{LOOPBACK}:{engine.ports.edge}"],
    )  # fmt: skip
    stack.callback(_kill, gp)
    held_from: Usage | None = None
    held_to: Usage | None = None
    deadline = time.monotonic() + talk + ramp + 90
    while gp.poll() is None and time.monotonic() < deadline:
        time.sleep(0.25)
        # per-socket counters vanish with their sockets (a leg's RTP): keep the most seen
        level.drops = max(level.drops, _tree_drops(engine, args.workers) - drops)
        if held_from is None and _current_calls(out / "consultant") >= calls:
            time.sleep(KEY_AT + 0.5)  # the last one keys "1" and is bridged
            held_from = usage([*engine.pids(), gp.pid, consultant.pid])
            level.hearing = _hearing(gp_media, calls)
        elif held_from and not held_to and time.monotonic() >= held_from.at + window:
            held_to = usage([*engine.pids(), gp.pid, consultant.pid])
    ended = usage(engine.pids())
    level.machine_busy_whole = began.machine_busy_share(ended)
    level.tree_whole = sum(began.cpu_share(ended, r) for r in ended.cpu)

    _kill(gp)
    with contextlib.suppress(subprocess.TimeoutExpired):
        consultant.wait(5)
    _kill(consultant)
    level.ok, level.failed = _counts(out / "gp")
    level.bridged, _ = _counts(out / "consultant")
    _wait_idle(engine, 30)  # its records are written by then
    level.connected, level.peak = _recorded(work / "cdr.sqlite3", level_start)
    if held_from and held_to:
        level.cores = {r: held_from.cpu_share(held_to, r) for r in held_to.cpu if r != "sipp"}
        level.sipp_cores = held_from.cpu_share(held_to, "sipp")
        level.machine_busy = held_from.machine_busy_share(held_to)
        level.pss_kib = sum(kib for r, kib in held_to.pss.items() if r != "sipp")
    _latency_and_rate(out, level)
    level.passed = (
        level.ok == calls and level.failed == 0 and level.bridged == calls
        and level.connected == calls and level.peak >= calls and level.hearing == calls
        and held_to is not None
    )  # fmt: skip
    if not level.passed:
        metrics = (before, _series(engine))
        level.evidence = evidence(out, level, args.workers, metrics, engine.tail(20_000_000))
    return level


def _tree_drops(engine: EngineTree, workers: int) -> int:
    ports = engine.ports
    return udp_drops(ports.edge, ports.sip + workers - 1) + udp_drops(ports.rtp_min, ports.rtp_max)


def _hearing(gp_media: int, calls: int) -> int:
    """GP streams that carried at least HEARD_FRAMES talk frames in one second (up to three
    tries, so a call bridged a moment late is not missed)."""
    streams: set[int] = set()
    for _ in range(3):
        heard = talk_heard(gp_media, 1.0)
        streams |= {port for port, frames in heard.items() if frames >= HEARD_FRAMES}
        if len(streams) >= calls:
            break
    return len(streams)


def _sipp(
    out: Path,
    name: str,
    scenario: str,
    pcaps: dict[str, Path],
    port: int,
    calls: int,
    *,
    timeout: float,
    media: int,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    assert SIPP is not None
    text = (SCENARIOS / scenario).read_text()
    for placeholder, path in pcaps.items():
        text = text.replace(placeholder, str(path))
    (out / scenario).write_text(text)
    log = out / name
    log.mkdir()
    argv = [
        SIPP, "-sf", str(out / scenario), "-i", LOOPBACK, "-p", str(port),
        "-mp", str(media), "-cp", str(free_port()), "-m", str(calls), "-l", str(calls),
        "-timeout", f"{timeout:.0f}s", "-timeout_error", "-nostdin", "-max_socket", "4096",
        "-trace_stat", "-stf", str(log / "stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(log / "errors.log"),
        "-trace_msg", "-message_file", str(log / "messages.log"), *extra,
    ]  # fmt: skip
    with (log / "stderr.log").open("wb") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)  # fmt: skip


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _counts(log: Path) -> tuple[int, int]:
    """sipp's last statistics line: calls that ran as scripted, and calls that failed."""
    path = log / "stat.csv"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    if len(lines) < 2:
        return 0, 0
    row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    return int(row.get("SuccessfulCall(C)", 0)), int(row.get("FailedCall(C)", 0))


def _current_calls(log: Path) -> int:
    """Calls the sipp has open now (its statistics, dumped every second)."""
    path = log / "stat.csv"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    if len(lines) < 2:
        return 0
    row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    return int(row.get("CurrentCall", 0))


def _recorded(db: Path, since: float) -> tuple[int, int]:
    """Calls offered since ``since`` that the engine recorded connected, and the most of them
    bridged at once (from connected_at to ended_at)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT connected_at, ended_at FROM calls WHERE offered_at >= ?"
            " AND connected_at IS NOT NULL",
            (since,),
        ).fetchall()
    changes = [(row[0], 1) for row in rows] + [(row[1] or math.inf, -1) for row in rows]
    peak = now = 0
    for _, step in sorted(changes):
        now += step
        peak = max(peak, now)
    return len(rows), peak


def _latency_and_rate(out: Path, level: Level) -> None:
    gp_calls = by_call(trace(out / "gp" / "messages.log"))
    for call in gp_calls:
        with contextlib.suppress(StopIteration):
            sent = first(call, "INVITE", None, received=False)
            level.answer_ms.append((first(call, "200", "INVITE", received=True) - sent) * 1000)
    acks = [m.at for m in trace(out / "consultant" / "messages.log") if m.received and m.is_("ACK")]
    if gp_calls and acks:
        start = min(c[0].at for c in gp_calls)
        level.setup_rate = len(acks) / max(max(acks) - start, 1e-3)


def _series(engine: EngineTree) -> dict[str, float]:
    try:
        return engine.series()
    except (OSError, ValueError):
        return {}


def _wait_idle(engine: EngineTree, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if engine.health().get("active_calls") == 0:
                time.sleep(1.0)
                return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
