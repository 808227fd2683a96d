"""kill -9 of the engine mid-call, then a restart on the same records (issue 4, "Must show"):
the bridged call is closed as ``interrupted``, the calls before it are untouched, and the CSV
export still has one row per call."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.sip.conftest import free_port

from . import records
from .conftest import E2E, needs_tools
from .peers import Peer, Peers
from .running_engine import REPO, RunningEngine
from .tree import NUMBER, Member, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

COMPLETED_CALLS = 2


@dataclass
class Crashed:
    before: list[dict[str, Any]]  # the completed calls' rows (and legs) just before the kill
    after: list[dict[str, Any]]  # every call row after the restart
    legs_after: dict[str, list[dict[str, Any]]]
    restarted: RunningEngine
    crashed_call: str
    peers_on_crashed_call: tuple[Peer, Peer]
    leftover_children: list[int]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_connected(db: Path, count: int, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = records.calls(db)
        if len(rows) == count and rows[-1]["connected_at"] is not None:
            return str(rows[-1]["call_id"])
        time.sleep(0.05)
    raise AssertionError(f"call {count} never connected: {records.calls(db)}")


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory, prompt_cache: Path) -> Iterator[Crashed]:
    tmp = tmp_path_factory.mktemp("crash")
    world = E2E(tmp, prompt_cache, Peers(tmp))
    consultant = Member("c-crash", free_port())
    engine = world.start(TreeSpec(members=(consultant,)))
    restarted: RunningEngine | None = None
    try:
        for n in range(COMPLETED_CALLS):
            answers = world.peers.consultant(
                f"consultant-{n}", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
            )
            gp = world.gp(f"gp-{n}", "uac_menu_bye.xml", NUMBER, talk_ms=2000)
            assert gp.wait() == 0, gp.explain() + engine.log()
            assert answers.wait() == 0, answers.explain() + engine.log()
        engine.wait_idle()
        before = [
            {"call": row, "legs": records.legs(engine.db, row["call_id"])}
            for row in records.calls(engine.db)
        ]

        # the third call is bridged when the engine is killed
        talking = world.peers.consultant(
            "consultant-crash", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
        )
        gp = world.gp("gp-crash", "uac_menu_wait_bye.xml", NUMBER)
        crashed_call = _wait_connected(engine.db, COMPLETED_CALLS + 1)
        assert engine.process is not None
        workers = _children(engine.process.pid)
        engine.kill()
        for peer in (gp, talking):  # the orphaned worker hangs up (or sipp times out)
            peer.wait(timeout=45)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftover = [pid for pid in workers if _alive(pid)]
        for pid in leftover:
            subprocess.run(["kill", "-9", str(pid)], check=False)

        restarted = replace(engine, process=None)  # same ports, same database
        restarted.start()
        after = records.calls(restarted.db)
        legs_after = {
            str(row["call_id"]): records.legs(restarted.db, row["call_id"]) for row in after
        }
        yield Crashed(before, after, legs_after, restarted, crashed_call, (gp, talking), leftover)
    finally:
        world.peers.kill_all()
        engine.stop()
        if restarted is not None:
            restarted.stop()


class TestKillNineMidCall:
    """What the records hold after kill -9 and a restart."""

    def test_the_bridged_call_is_interrupted(self, crashed: Crashed) -> None:
        (row,) = [r for r in crashed.after if r["call_id"] == crashed.crashed_call]
        assert row["end_reason"] == "interrupted", row
        assert row["ended_at"] is not None
        assert row["connected_at"] is not None  # what was known before the crash is kept
        assert row["member_id"] == "c-crash"
        assert all(leg["ended_at"] is not None for leg in crashed.legs_after[crashed.crashed_call])

    def test_earlier_calls_are_untouched(self, crashed: Crashed) -> None:
        earlier: list[dict[str, Any]] = [
            {"call": row, "legs": crashed.legs_after[str(row["call_id"])]}
            for row in crashed.after
            if row["call_id"] != crashed.crashed_call
        ]
        assert earlier == crashed.before
        assert len(earlier) == COMPLETED_CALLS
        assert {e["call"]["end_reason"] for e in earlier} == {"completed"}

    def test_restart_reports_what_it_closed(self, crashed: Crashed) -> None:
        opened = [e for e in crashed.restarted.log_events() if e.get("event") == "records_open"]
        assert opened[-1]["interrupted_closed"] == 1

    def test_the_orphaned_worker_exits_and_hangs_up_its_peers(self, crashed: Crashed) -> None:
        assert crashed.leftover_children == []
        gp, consultant = crashed.peers_on_crashed_call
        assert gp.received("BYE"), gp.explain()
        assert consultant.received("BYE"), consultant.explain()


class TestCsvExport:
    """``cdr export --format csv`` of that database opens as a table with a row per call."""

    def test_one_row_per_call(self, crashed: Crashed) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "callrouter", "cdr", "export", "--format", "csv",
             "--db", str(crashed.restarted.db)],
            capture_output=True, text=True, check=True, cwd=REPO, timeout=30,
        )  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert [row["call_id"] for row in rows] == [str(r["call_id"]) for r in crashed.after]
        assert len(rows) == COMPLETED_CALLS + 1
        reasons = {row["call_id"]: row["end_reason"] for row in rows}
        assert reasons[crashed.crashed_call] == "interrupted"
        assert all(row["offered_at_local"] for row in rows)
