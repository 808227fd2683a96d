"""What the Kamailio edge adds at answer (prints figures only; a script, not a test).

    PYTHONPATH=. python benchmarks/edge_latency.py [--answers 1000]

One ``callrouter run`` with the edge and one worker on loopback. The same sipp GP scenario
(INVITE, 200, ACK, BYE while the greeting plays; calls one at a time) runs twice: straight at
the worker's loopback port, then at the edge. INVITE sent → 200 received, from sipp's own
microsecond traces; the difference is what the edge adds (record-route, dispatcher pick, one
extra loopback hop each way).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.sip_latency import by_call, finish, first, line, ms, sipp, trace
from tests.e2e.peers import scenario_path
from tests.e2e.running_engine import RunningEngine, engine_ports
from tests.e2e.tree import NUMBER, Member, TreeSpec, write_tree
from tests.sip.conftest import LOOPBACK, SIPP, free_port


def answers(work: Path, name: str, target: str, calls: int) -> list[float]:
    """INVITE sent → 200 received, per call, for ``calls`` calls at ``target`` (host:port)."""
    gp, out = sipp(
        work, name, scenario_path("uac_answer_bye.xml"), free_port(), calls,
        "-d", "20", "-s", NUMBER, target,
    )  # fmt: skip
    finish(gp, out, 60 + calls)
    return [
        first(c, "200", "INVITE", received=True) - first(c, "INVITE", None, received=False)
        for c in by_call(trace(out / "messages.log"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--answers", type=int, default=1000, help="calls per pass")
    args = parser.parse_args()
    if SIPP is None or shutil.which("espeak-ng") is None or not Path("/usr/sbin/kamailio").exists():
        sys.exit("needs sipp (sip-tester), espeak-ng and kamailio")

    with tempfile.TemporaryDirectory(prefix="edge-latency-") as tmp:
        work = Path(tmp)
        ports = engine_ports(1, edge=True)
        spec = TreeSpec(members=(Member("c-bench", free_port()),), workers=1, edge=True,
                        max_concurrent_calls=5)  # fmt: skip
        write_tree(work / "tree", spec, ports, work / "prompts")
        engine = RunningEngine(work / "tree" / "config.yaml", ports, work / "cdr.sqlite3",
                               work / "engine.log")  # fmt: skip
        engine.start()
        try:
            time.sleep(1.0)
            direct = answers(work, "direct", f"{LOOPBACK}:{ports.sip}", args.answers)
            edge = answers(work, "edge", f"{LOOPBACK}:{ports.edge}", args.answers)
        finally:
            engine.stop()

    print(f"edge_latency: one worker, calls one at a time; {time.strftime('%Y-%m-%d %H:%M')}")
    print("INVITE -> 200 (GP side)")
    line("sipp -> worker (no edge, baseline)", ms(direct))
    line("sipp -> edge -> worker", ms(edge), ms(direct))


if __name__ == "__main__":
    main()
