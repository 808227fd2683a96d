"""kill -9 of a real SIP worker: the deaths and restarts counters rise on a real HTTP scrape,
and promtool shows the shipped alert rules fire for exactly those scraped values."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from callrouter.adapters.metrics import Metrics
from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from tests.sip.conftest import Events, run, worker_config

pytestmark = [pytest.mark.sip, pytest.mark.timeout(60)]

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus" / "rules.yml"
RESTARTED_TEXT = (
    "A SIP worker of 127.0.0.1:9464 died and was restarted in the last 15 minutes;"
    " its calls were lost (see the log's worker_died lines)"
)
COUNTERS = ("callrouter_worker_deaths_total", "callrouter_worker_restarts_total")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in COUNTERS
    }


def promtool_alerts_fire(before: dict[str, float], after: dict[str, float], workdir: Path) -> str:
    """A promtool unit test whose input is the scraped values: 1 min before the kill, then after."""
    labels = '{job="callrouter",instance="127.0.0.1:9464"}'
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": name + labels, "values": f"{before[name]:g}x3 {after[name]:g}x60"}
                    for name in COUNTERS
                ],
                "alert_rule_test": [
                    {
                        "alertname": "CallrouterWorkerRestarted",
                        "eval_time": "30s",
                        "exp_alerts": [],
                    },
                    {
                        "alertname": "CallrouterWorkerRestarted",
                        "eval_time": "2m",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "job": "callrouter",
                                    "instance": "127.0.0.1:9464",
                                },
                                "exp_annotations": {"summary": RESTARTED_TEXT},
                            }
                        ],
                    },
                    # It came back: deaths - restarts is 0, so "worker down" stays quiet.
                    {"alertname": "CallrouterWorkerDown", "eval_time": "5m", "exp_alerts": []},
                ],
            }
        ],
    }
    path = workdir / "kill_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        ["promtool", "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr if result.returncode != 0 else ""


class TestKilledWorkerIsVisible:
    """SIGKILL a worker process: both counters go up by one, and the alert fires on them."""

    def test_kill_9_counts_and_alerts(self, tmp_path: Path) -> None:
        metrics = Metrics("test")
        server = metrics.serve("127.0.0.1", 0)
        scraped: list[dict[str, float]] = []

        async def main() -> None:
            async with WorkerPool([worker_config()], observer=metrics) as pool:
                events = Events(pool)
                await events.expect(p.Ready, worker_id="w0")
                scraped.append(scrape(server.port))
                pid = pool.pid("w0")
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                died = await events.expect(p.WorkerDied)
                assert died.exit_code == -signal.SIGKILL
                await events.expect(p.Ready, worker_id="w0.1")
                scraped.append(scrape(server.port))

        try:
            run(main)
        finally:
            server.close()
        before, after = scraped
        assert before == {COUNTERS[0]: 0.0, COUNTERS[1]: 0.0}
        assert after == {COUNTERS[0]: 1.0, COUNTERS[1]: 1.0}
        assert promtool_alerts_fire(before, after, tmp_path) == ""

    def test_the_promtool_check_can_fail(self, tmp_path: Path) -> None:
        """Counters that never moved must not satisfy the same expectations."""
        still = {COUNTERS[0]: 0.0, COUNTERS[1]: 0.0}
        assert "FAILED" in promtool_alerts_fire(still, still, tmp_path)
