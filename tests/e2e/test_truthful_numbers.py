"""Truthful numbers (issue 4): calls with known answer and accept delays go through the running
engine; the call records and the scraped histograms must agree with what the sipp peers saw.

Peer-side connection time is from the GP's menu key (sent at its "menu" mark) to the
consultant's accept key (its "accept" mark); call length from the accept key to the GP's BYE.
Both keys are RFC 4733 pcaps whose first packet leaves at the mark.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sip.conftest import free_port

from . import records
from .conftest import E2E, needs_tools
from .peers import Peers
from .running_engine import REPO, RunningEngine
from .tree import AREA, NUMBER, SPECIALTY, Member, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

AGREE_SECONDS = 0.5  # the tolerance between what peers saw and what we report
# (ring before answer, accept key after answer, conversation) in ms, one call each: connection
# times land on both sides of the first connection-time bucket (5 s) and clear of its edge.
CALLS = ((200, 300, 1000), (900, 500, 2000), (1800, 900, 1500), (3600, 2300, 1000))
CONNECTION_BUCKET_EDGE = 5.0


@dataclass(frozen=True)
class Observed:
    """What the peers saw of one call."""

    connect_seconds: float
    talk_seconds: float


@dataclass
class Placed:
    engine: RunningEngine
    observed: list[Observed]
    scrape: str


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory, prompt_cache: Path) -> Iterator[Placed]:
    tmp = tmp_path_factory.mktemp("truthful")
    world = E2E(tmp, prompt_cache, Peers(tmp))
    consultant = Member("c-known", free_port())
    engine = world.start(TreeSpec(members=(consultant,)))
    observed = []
    try:
        for n, (ring_ms, key_ms, talk_ms) in enumerate(CALLS):
            answers = world.peers.consultant(
                f"consultant-{n}", "uas_accept.xml", port=consultant.port,
                ring_ms=ring_ms, key_ms=key_ms,
            )  # fmt: skip
            # the GP stays on until well after the accept, then hangs up
            gp = world.gp(f"gp-{n}", "uac_menu_bye.xml", NUMBER, talk_ms=ring_ms + key_ms + talk_ms)
            assert gp.wait() == 0, gp.explain() + engine.log()
            assert answers.wait() == 0, answers.explain() + engine.log()
            engine.wait_idle()
            accepted = answers.marks("accept")[0]
            observed.append(
                Observed(accepted - gp.marks("menu")[0], gp.sent("BYE")[0].at - accepted)
            )
        yield Placed(engine, observed, engine.scrape())
    finally:
        world.peers.kill_all()
        engine.stop()


class TestRecordsAgreeWithPeers:
    """The CDR export tells each call as the peers lived it."""

    def test_cdr_export_json_matches_every_call(self, placed: Placed) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "callrouter", "cdr", "export", "--format", "json",
             "--db", str(placed.engine.db)],
            capture_output=True, text=True, check=True, cwd=REPO, timeout=30,
        )  # fmt: skip
        rows = json.loads(out.stdout)
        assert len(rows) == len(CALLS)
        for row, seen in zip(rows, placed.observed, strict=True):
            assert row["outcome"] == "connected", row
            assert row["legs_started"] == 1
            assert row["connect_seconds"] == pytest.approx(seen.connect_seconds, abs=AGREE_SECONDS)
            assert row["talk_seconds"] == pytest.approx(seen.talk_seconds, abs=AGREE_SECONDS)
            assert row["connected_at"] - row["specialty_at"] == pytest.approx(
                row["connect_seconds"], abs=1e-6
            )


class TestMetricsAgreeWithPeers:
    """The scraped counters are exact and the histograms sum to what the peers saw."""

    def test_counters_are_exact(self, placed: Placed) -> None:
        text, n = placed.scrape, len(CALLS)
        labels = {"area": AREA, "specialty": SPECIALTY}
        assert records.sample(text, "callrouter_calls_offered_total", area=AREA) == n
        assert records.sample(text, "callrouter_specialty_chosen_total", **labels) == n
        assert records.sample(text, "callrouter_calls_connected_total", **labels) == n
        assert records.sample(text, "callrouter_calls_ended_total", outcome="connected") == n
        assert records.sample(text, "callrouter_legs_total", result="accepted") == n
        assert records.sample(text, "callrouter_active_calls", area=AREA) == 0

    def test_connection_time_histogram(self, placed: Placed) -> None:
        text, labels = placed.scrape, {"area": AREA, "specialty": SPECIALTY}
        seen = [o.connect_seconds for o in placed.observed]
        assert records.sample(text, "callrouter_connection_seconds_count", **labels) == len(seen)
        assert records.sample(text, "callrouter_connection_seconds_sum", **labels) == (
            pytest.approx(sum(seen), abs=AGREE_SECONDS)
        )
        below = records.sample(
            text, "callrouter_connection_seconds_bucket", le=f"{CONNECTION_BUCKET_EDGE}", **labels
        )
        assert all(abs(s - CONNECTION_BUCKET_EDGE) > AGREE_SECONDS for s in seen), seen
        assert below == sum(1 for s in seen if s <= CONNECTION_BUCKET_EDGE)

    def test_call_length_histogram(self, placed: Placed) -> None:
        text, labels = placed.scrape, {"area": AREA, "specialty": SPECIALTY}
        seen = [o.talk_seconds for o in placed.observed]
        assert records.sample(text, "callrouter_call_length_seconds_count", **labels) == len(seen)
        assert records.sample(text, "callrouter_call_length_seconds_sum", **labels) == (
            pytest.approx(sum(seen), abs=AGREE_SECONDS)
        )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (prometheus)")
class TestLiveScrapeLints:
    """``promtool check metrics`` accepts what the running engine serves."""

    def test_promtool_check_metrics(self, placed: Placed) -> None:
        live = placed.engine.scrape()
        assert "callrouter_connection_seconds_bucket" in live
        checked = subprocess.run(
            ["promtool", "check", "metrics"],
            input=live, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout + checked.stderr == ""
