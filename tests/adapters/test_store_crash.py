"""kill -9 proof: a writer process SIGKILLed mid-call loses nothing it had already recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from callrouter.adapters.store_sqlite import CallStore

from .scripted_calls import T0, connected_call

REPO = Path(__file__).resolve().parents[2]

# The child records scripted calls back to back and prints "<call_id> <event index>" after each
# handle() returns, i.e. once the event is committed. Given a halt count it stops writing after
# that many events (so the kill lands at a known point); given 0 it writes until killed.
CHILD = """
import asyncio, sys
from callrouter.adapters.store_sqlite import CallStore
from tests.adapters.scripted_calls import T0, connected_call

async def main(path, halt_after):
    store = await CallStore.open(path)
    n = written = 0
    while True:
        for i, event in enumerate(connected_call(f"c{n:04d}", T0 + n * 1000)):
            await store.handle(event)
            written += 1
            print(f"c{n:04d} {i}", flush=True)
            if written == halt_after:
                await asyncio.sleep(3600)
        n += 1

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

EVENTS_PER_CALL = len(connected_call())


def _run_and_kill(path: Path, stop_after_lines: int, *, halt: bool) -> list[tuple[str, int]]:
    """Start the writer, read its progress, SIGKILL it mid-call; return what it reported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    halt_after = stop_after_lines if halt else 0
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(halt_after)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    reported: list[tuple[str, int]] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            call_id, index = line.split()
            reported.append((call_id, int(index)))
            if len(reported) >= stop_after_lines:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return reported


class TestKillNine:
    """SIGKILL between events: every reported event is on disk; restart closes the open call."""

    def test_killed_mid_call(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        # Halt part-way through the fourth call (index 7: first leg picked up, not yet ended).
        reported = _run_and_kill(path, stop_after_lines=3 * EVENTS_PER_CALL + 8, halt=True)
        assert reported[-1] == ("c0003", 7)

        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            db.row_factory = sqlite3.Row
            calls = {r["call_id"]: dict(r) for r in db.execute("SELECT * FROM calls")}
        for n in range(3):
            call = calls[f"c{n:04d}"]
            assert call["end_reason"] == "completed"
            assert call["talk_seconds"] == 260.0
            assert call["survey_avoided_referral"] == 1
            assert call["nhs_number"] == "9434765919"
        assert calls["c0003"]["specialty"] == "cardiology"
        assert calls["c0003"]["ended_at"] is None

        async def restart() -> int:
            async with await CallStore.open(path) as store:
                return await store.close_interrupted(T0 + 99_999)

        closed = asyncio.run(restart())
        assert closed == 1
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            after = {r["call_id"]: dict(r) for r in db.execute("SELECT * FROM calls")}
            open_legs = db.execute("SELECT COUNT(*) FROM legs WHERE ended_at IS NULL").fetchone()
        assert after["c0003"]["end_reason"] == "interrupted"
        assert after["c0003"]["ended_at"] == T0 + 99_999
        for n in range(3):
            assert after[f"c{n:04d}"] == calls[f"c{n:04d}"]  # finished calls untouched
        assert open_legs[0] == 0

    def test_killed_while_writing(self, tmp_path: Path) -> None:
        """The kill lands wherever the writer is, perhaps inside a commit: still consistent."""
        path = tmp_path / "calls.db"
        reported = _run_and_kill(path, stop_after_lines=5 * EVENTS_PER_CALL + 3, halt=False)
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            db.row_factory = sqlite3.Row
            calls = {r["call_id"]: dict(r) for r in db.execute("SELECT * FROM calls")}
        # Everything reported was committed; the kill may have come after later commits too.
        ended = {call_id for call_id, index in reported if index == EVENTS_PER_CALL - 1}
        assert len(ended) >= 5
        for call_id in ended:
            assert calls[call_id]["end_reason"] == "completed"
            assert calls[call_id]["talk_seconds"] == 260.0
        still_open = {call_id for call_id, call in calls.items() if call["ended_at"] is None}
        assert len(still_open) <= 1  # at most the call in flight

        async def restart() -> int:
            async with await CallStore.open(path) as store:
                return await store.close_interrupted(T0 + 99_999)

        assert asyncio.run(restart()) == len(still_open)
        with sqlite3.connect(path) as db:
            for table in ("calls", "legs"):
                sql = f"SELECT COUNT(*) FROM {table} WHERE ended_at IS NULL"  # fixed table names
                assert db.execute(sql).fetchone() == (0,)
