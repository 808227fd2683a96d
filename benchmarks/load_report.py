"""What benchmarks/sip_load.py found: one ramp level's figures, what a failed level shows about
the limit, and the printed report."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load_rig import Usage
from benchmarks.sip_latency import by_call, pct, trace

HEARD_FRAMES = 40  # of the 50 talk frames a bridged call carries to its GP each second
MIB = 1024


@dataclass
class Level:
    """One step of the ramp and what it showed."""

    calls: int
    passed: bool = False
    ok: int = 0
    failed: int = 0
    bridged: int = 0  # consultant sipp calls that ran as scripted
    connected: int = 0  # calls the engine recorded connected
    peak: int = 0  # most of them bridged at once (connected_at..ended_at in its records)
    hearing: int = -1  # GP streams carrying the consultants' talk (-1: never all up)
    answer_ms: list[float] = field(default_factory=list)
    setup_rate: float = 0.0  # calls/s from the first INVITE to the last consultant ACK
    cores: dict[str, float] = field(default_factory=dict)  # engine, workers, kamailio
    sipp_cores: float = 0.0  # the two sipp peers
    machine_busy: float = 0.0  # share of all cores, while every call was held
    machine_busy_whole: float = 0.0  # the same, over the whole level
    tree_whole: float = 0.0  # cores the engine tree used over the whole level
    drops: int = 0  # datagrams dropped on the edge's and workers' sockets (most seen at once)
    pss_kib: int = 0
    evidence: list[str] = field(default_factory=list)


def evidence(
    out: Path,
    level: Level,
    workers: int,
    metrics: tuple[dict[str, float], dict[str, float]],
    engine_log: str,
) -> list[str]:
    """What the failed level shows about the limit: the GPs' traces, the engine's metrics
    before and after the level, and its log."""
    before, after = metrics
    found = []
    finals: dict[str, int] = {}
    byes = 0
    for call in by_call(trace(out / "gp" / "messages.log")):
        for m in call:
            if m.received and m.cseq.endswith("INVITE") and m.first[8:9] in "3456":
                code = m.first.split(" ", 2)[1]
                finals[code] = finals.get(code, 0) + 1
            if m.received and m.is_("BYE"):
                byes += 1
    if finals:
        found.append("GP INVITEs refused: " + ", ".join(f"{n} x {c}" for c, n in finals.items()))
    if "503" in finals and level.calls > 2 * workers:
        found.append(f"slots: {workers} workers hold {2 * workers} bridged calls (4 legs each)")
    if byes:
        found.append(f"{byes} GP calls hung up by the engine before the GP's BYE")
    if level.hearing < 0:
        found.append("never every consultant leg up at once: audio not checked")
    elif level.hearing < level.calls:
        found.append(
            f"{level.hearing} of {level.calls} GPs heard >= {HEARD_FRAMES} of the consultant's"
            " 50 talk frames in a second (audio late or missing)"
        )
    if level.drops > 0:
        found.append(
            f"{level.drops} datagrams dropped on the edge's and workers' sockets (receive buffer"
            " full: not read in time)"
        )
    busy = max(level.machine_busy, level.machine_busy_whole)
    if busy >= 0.9:
        found.append(
            f"machine CPU {busy:.0%} busy during the level (all users; the engine tree"
            f" {level.tree_whole:.0%} of a core) -> CPU"
        )
    for key, value in sorted(after.items()):
        interesting = ("calls_ended", "legs_total", "refused")
        normal = ('outcome="connected"', 'result="accepted"')
        if (
            any(word in key for word in interesting)
            and not any(word in key for word in normal)
            and value - before.get(key, 0.0) > 0
        ):
            found.append(f"engine metric {key} +{value - before.get(key, 0.0):.0f}")
    errors = out / "gp" / "errors.log"
    if errors.exists():
        text = errors.read_text(errors="replace")
        timeouts = text.count("timeout")
        if timeouts:
            found.append(f"{timeouts} GP timeouts in sipp's error log")
    for needle, meaning in (
        ("no free call slot", "slots (pool full)"),
        ("ETOOMANY", "slots (pjsua's 4 legs)"),
        ("Address already in use", "ports"),
        ("worker_died", "a worker died"),
    ):
        count = engine_log.count(needle)
        if count:
            found.append(f"engine log: {count} x {needle!r} -> {meaning}")
    return found or ["no refusal seen; see the level's sipp traces"]


def pct_line(name: str, ms: Sequence[float], base: Sequence[float] | None = None) -> str:
    text = (f"  {name:<34} n={len(ms):<5} p50={statistics.median(ms):7.2f} ms"
            f"  p99={pct(ms, 0.99):7.2f} ms  max={max(ms):7.2f} ms")  # fmt: skip
    if base:
        text += (f"  added p50={statistics.median(ms) - statistics.median(base):6.2f} ms"
                 f" p99={pct(ms, 0.99) - pct(base, 0.99):6.2f} ms")  # fmt: skip
    return text


def slope(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of cores against calls."""
    if len(points) < 2:
        return float("nan")
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


def report(
    args: argparse.Namespace,
    idle0: Usage,
    idle1: Usage,
    base_answer: list[float],
    edge_answer: list[float],
    levels: list[Level],
) -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(f"\nsip_load: {args.workers} workers + Kamailio edge, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} at the end; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print("idle (no calls)")
    workers = max(idle1.count.get("workers", 1), 1)
    for who in ("engine", "workers", "kamailio"):
        print(
            f"  {who:<9} CPU {idle0.cpu_share(idle1, who) * 100:6.2f}% of a core"
            f"  PSS {idle1.pss.get(who, 0) / MIB:8.1f} MiB  ({idle1.count.get(who, 0)} procs)"
        )
    per_worker = idle0.cpu_share(idle1, "workers") / workers
    print(
        f"  idle CPU per worker: {per_worker * 100:.2f}% of a core"
        f" (goal <= 0.2%); PSS per worker {idle1.pss.get('workers', 0) / workers / MIB:.1f} MiB"
    )
    print("answer latency, INVITE -> 200 at the GP, calls one at a time")
    print(pct_line("sipp -> sipp (baseline)", [s * 1000 for s in base_answer]))
    print(pct_line("sipp -> edge -> engine", [s * 1000 for s in edge_answer],
                    [s * 1000 for s in base_answer]))  # fmt: skip
    if len(edge_answer) < 1000:
        print("  (fewer than 1,000 samples: p99 is close to the maximum)")
    print(
        f"ramp: +{args.step} calls per level at {args.rate:g} calls/s,"
        f" all held together {args.hold_seconds:g}s"
    )
    idle_cores = sum(idle0.cpu_share(idle1, r) for r in idle1.cpu)
    idle_pss = sum(idle1.pss.values())
    for lv in levels:
        busy = sum(lv.cores.values())
        per_call = (busy - idle_cores) / lv.calls * 100 if lv.cores else float("nan")
        print(
            f"  {lv.calls:4d} calls: {'PASS' if lv.passed else 'FAIL'}  GP scripts ok={lv.ok}"
            f" failed={lv.failed}, consultant scripts ok={lv.bridged}; engine records"
            f" connected={lv.connected}, at once={lv.peak}; GPs hearing the consultant="
            f"{'n/a' if lv.hearing < 0 else lv.hearing}; set-up {lv.setup_rate:.1f} calls/s"
        )
        roles = ", ".join(f"{r} {c:.0%}" for r, c in sorted(lv.cores.items()))
        if lv.cores:
            print(
                f"    tree CPU {busy:.1%} of a core ({roles}; sipp peers {lv.sipp_cores:.0%}),"
                f" machine {lv.machine_busy:.0%} of {os.cpu_count()} cores busy;"
                f" {per_call:+.2f}% of a core per call above idle; PSS {lv.pss_kib / MIB:.0f} MiB;"
                f" {lv.drops} datagrams dropped on the tree's sockets"
            )
        else:
            print(f"    never all held (machine {lv.machine_busy_whole:.0%} busy over the level)")
        if lv.answer_ms:
            print("    " + pct_line("answer under load", lv.answer_ms).strip())
        for item in lv.evidence:
            print(f"    limit evidence: {item}")
    best = max((lv for lv in levels if lv.passed), key=lambda lv: lv.calls, default=None)
    print("summary")
    if best is None:
        print("  no level passed")
    else:
        marginal = (best.pss_kib - idle_pss) / best.calls / MIB
        busy = sum(best.cores.values())
        print(f"  most concurrent bridged calls held, 0 failed: {best.calls} (goal >= 200)")
        print(f"  calls/s set up at that level: {best.setup_rate:.1f} (offered {args.rate:g})")
        points = [(0, idle_cores)] + [
            (lv.calls, sum(lv.cores.values())) for lv in levels if lv.cores
        ]
        print(
            f"  CPU per bridged call: {(busy - idle_cores) / best.calls * 100:.2f}% of a core"
            f" above idle at {best.calls}; slope over the levels {slope(points) * 100:.2f}%;"
            f" {busy / best.calls * 100:.2f}% with the idle pool"
        )
        print(
            f"  PSS per bridged call: {best.pss_kib / best.calls / MIB:.1f} MiB with the whole"
            f" tree (goal <= 10 MB); {marginal:.2f} MiB above idle"
        )
    added = pct(edge_answer, 0.99) - pct(base_answer, 0.99)
    print(f"  answer p99 added through the edge: {added * 1000:.2f} ms (goal <= 5 ms)")
    print(f"  idle per spare worker: {per_worker * 100:.2f}% of a core (goal <= 0.2%)")
    failed = next((lv for lv in levels if not lv.passed), None)
    if failed is None:
        print(f"  limit: not reached by --max-calls {args.max_calls}")
    else:
        print(f"  limit at {failed.calls} calls: " + "; ".join(failed.evidence))
