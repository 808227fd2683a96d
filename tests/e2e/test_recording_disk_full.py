"""The recordings' disk fills in the middle of a conversation (issue 12): the call goes on and
ends as usual, the record is flagged, the failure is counted, and the audio written so far is
kept (the engine's sweep seals it once there is room: tests/adapters/test_recordings.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tmpfs import mounted_tmpfs

from . import records
from .conftest import E2E, member, needs_tools
from .tree import NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """64 KiB for the recordings: about four seconds of 8 kHz audio."""
    with mounted_tmpfs(tmp_path / "rec-disk", "64k") as mount:
        yield mount


class TestRecordingDiskFull:
    """A conversation longer than the recordings' disk can hold."""

    def test_call_completes_and_the_record_says_what_happened(
        self, e2e: E2E, small_disk: Path
    ) -> None:
        consultant = member("c-full")

        def on_small_disk(config: dict[str, Any]) -> None:
            config["recording"]["directory"] = str(small_disk)

        engine = e2e.start(TreeSpec(members=(consultant,), record=True), config=on_small_disk)
        accepts = e2e.peers.consultant(
            "accepts", "uas_accept.xml", port=consultant.port, ring_ms=300, key_ms=300
        )
        # about 8 s of talk: twice what the disk holds
        gp = e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=9000)
        assert gp.wait() == 0, gp.explain() + engine.log()  # our 200 OK to its BYE came back
        assert accepts.wait() == 0, accepts.explain() + engine.log()  # and it got our BYE
        engine.wait_idle()
        deadline = time.monotonic() + 15
        while records.only_call(engine.db)["recording_state"] is None:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.1)

        call = records.only_call(engine.db)
        assert (call["end_reason"], call["outcome"]) == ("completed", "connected"), call
        assert call["talk_seconds"] > 7.0
        # no room to seal a copy beside the plain file: failed for now, audio kept, reason given
        assert call["recording_state"] in {"failed", "incomplete"}, call
        assert call["recording_detail"], call
        left = list((small_disk / "incoming").glob("*.wav")) + list(small_disk.rglob("*.sealed"))
        assert left, "the audio written before the disk filled was lost"
        scrape = engine.scrape()
        stored = f'callrouter_recordings_total{{state="{call["recording_state"]}"}} 1.0'
        assert stored in scrape
        assert engine.stop() == 0, engine.log()
