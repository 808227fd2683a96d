"""The records' disk fills mid-call (issue 9, "Must show"): the call still routes and ends
cleanly, its records wait in the spool (counted), and land complete once space returns."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tmpfs import mounted_tmpfs

from . import records
from .conftest import E2E, member, needs_tools
from .running_engine import RunningEngine
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(90)]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs for the records alone, unmounted at the end whatever happened."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as mount:
        yield mount


def until(condition: Callable[[], bool], what: str, engine: RunningEngine) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never {what}:\n{engine.log()}")


class TestDiskFull:
    """dd fills the records' tmpfs while the GP and the consultant talk."""

    def test_call_routes_and_its_record_lands_after_space_returns(
        self, e2e: E2E, disk: Path
    ) -> None:
        consultant = member("c-disk")

        def small_spool(config: dict[str, Any]) -> None:
            config["database"]["spool_reserve_mib"] = 1  # preallocated before the disk fills

        db = disk / "records.sqlite3"
        engine = e2e.start(TreeSpec(members=(consultant,)), config=small_spool, db=db)

        accepts = e2e.peers.consultant(
            "consultant", "uas_accept.xml", port=consultant.port, ring_ms=200, key_ms=200
        )
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=4000)
        until(
            lambda: [c["connected_at"] is not None for c in records.calls(db)] == [True],
            "connected",
            engine,
        )
        filler = disk / "filler"
        dd = subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=4k"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "No space left on device" in dd.stderr

        assert gp.wait() == 0, gp.explain() + engine.log()  # the call went on and ended well
        assert accepts.wait() == 0, accepts.explain() + engine.log()
        engine.wait_idle()
        (call,) = records.calls(db)
        assert call["ended_at"] is None  # its end is waiting in the spool
        scrape = engine.scrape()
        assert records.sample(scrape, "callrouter_store_spooled_events") >= 1
        assert records.sample(scrape, "callrouter_store_write_failures_total", kind="full") >= 1

        filler.unlink()
        until(lambda: records.calls(db)[0]["ended_at"] is not None, "written", engine)
        until(
            lambda: records.sample(engine.scrape(), "callrouter_store_spooled_events") == 0,
            "drained",
            engine,
        )
        call = records.only_call(db)
        assert (call["outcome"], call["end_reason"]) == ("connected", "completed"), call
        assert call["talk_seconds"] > 0
        (leg,) = records.legs(db, call["call_id"])
        assert (leg["result"], leg["accepted"], leg["member_id"]) == ("accepted", 1, "c-disk")
        assert leg["ended_at"] == call["ended_at"]
        assert records.sample(engine.scrape(), "callrouter_store_spool_dropped_total") == 0
        assert engine.stop() == 0, engine.log()
