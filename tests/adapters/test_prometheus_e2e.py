"""End to end on loopback: a real Prometheus scrapes Metrics, evaluates rules.yml, and answers
the dashboard's headline queries with the figures the scripted calls imply."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callrouter.adapters.metrics import Metrics, MetricsServer
from callrouter.core.domain import DomainEvent

from .promql_names import RULES
from .scripted_calls import abandoned_in_hunt, connected_call
from .test_dashboard import as_prometheus_sees_it, load_dashboard, panel_exprs

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus")

WAIT_LIMIT = 60.0  # seconds: a bound on polling, not a speed assertion
# rate() extrapolates each series to the window's edge, but not past the point where a counter
# would have been zero, so series that start at different values (0 vs the warm-up's 1) are
# stretched differently and a ratio of them drifts by up to a few percent from the exact count.
DRIFT = 0.03


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """A throwaway Prometheus on 127.0.0.1 scraping one target every second."""

    def __init__(self, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        shutil.copy(RULES, workdir / "rules.yml")
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            "scrape_configs:\n"
            "  - job_name: callrouter\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, *, count_at_least: float = 0) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns a non-NaN result (and the scrape count is reached)."""
        deadline = time.monotonic() + WAIT_LIMIT
        while time.monotonic() < deadline:
            try:
                result = self.query(expr)
                scrapes = self.query('count_over_time(up{job="callrouter"}[10m])')
            except OSError:
                result, scrapes = [], []  # still starting
            enough = scrapes and float(scrapes[0]["value"][1]) >= count_at_least
            if result and enough and not any(math.isnan(float(r["value"][1])) for r in result):
                return result
            time.sleep(0.2)
        pytest.fail(f"no value for {expr!r} within {WAIT_LIMIT} s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Metrics with a first call, scraped; then ten more calls; then rules evaluated."""
    metrics = Metrics("9.9.9")
    metrics.declare_area("north", ["cardiology", "dermatology"], ["local", "ncn"])
    metrics.set_in_service_hours("north", in_hours=True)
    metrics.set_consultants_on_call({"north": ["a", "n"], "south": ["b", "n"]})
    server: MetricsServer = metrics.serve("127.0.0.1", 0)
    prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), server.port)

    def feed(events: list[DomainEvent]) -> None:
        for event in events:
            metrics.handle(event)

    try:
        feed(connected_call("warm-up"))  # creates the histogram series before the first scrape
        prometheus.wait_for("callrouter_connection_seconds_count", count_at_least=2)
        # Nine connected cardiology calls and one abandoned dermatology call.
        for n in range(9):
            feed(connected_call(f"c{n}"))
        feed(abandoned_in_hunt())
        prometheus.wait_for('callrouter_calls_connected_total{specialty="cardiology"} == 10')
        yield prometheus
    finally:
        prometheus.close()
        server.close()


class TestRecordingRulesLive:
    """rules.yml, evaluated by Prometheus over real scrapes of Metrics."""

    def test_area_ftcr(self, scraped: Prometheus) -> None:
        # Since the first scrape: 9 of 9 cardiology connected, the dermatology call abandoned.
        (sample,) = scraped.wait_for("area:callrouter_ftcr:ratio1h")
        assert sample["metric"]["area"] == "north"
        assert float(sample["value"][1]) == pytest.approx(0.9, rel=DRIFT)

    def test_specialty_ftcr(self, scraped: Prometheus) -> None:
        result = scraped.wait_for("area_specialty:callrouter_ftcr:ratio1h")
        by_specialty = {r["metric"]["specialty"]: float(r["value"][1]) for r in result}
        assert by_specialty == {"cardiology": pytest.approx(1.0, rel=DRIFT), "dermatology": 0.0}

    def test_mean_connection_and_call_length(self, scraped: Prometheus) -> None:
        (connect,) = scraped.wait_for("area:callrouter_connection_seconds:mean1h")
        (length,) = scraped.wait_for("area:callrouter_call_length_seconds:mean1h")
        assert float(connect["value"][1]) == pytest.approx(34.0)
        assert float(length["value"][1]) == pytest.approx(260.0)

    def test_referral_avoided_share(self, scraped: Prometheus) -> None:
        (share,) = scraped.wait_for("area:callrouter_referral_avoided:ratio1h")
        assert float(share["value"][1]) == pytest.approx(1.0)


class TestDashboardHeadlinesLive:
    """The dashboard's stat queries return the scripted figures from a real Prometheus."""

    @pytest.mark.parametrize(
        ("title", "expected"),
        [
            # increase() counts from the first scrape, after the warm-up: 9 of 10 connected.
            ("First-time connection rate", 0.9),
            ("Mean connection time", 34.0),
            ("Mean call length", 260.0),
            ("Consultants on call now", 3.0),  # a, b and n, who covers both areas
            ("Calls in progress", 0.0),
        ],
    )
    def test_stat(self, scraped: Prometheus, title: str, expected: float) -> None:
        expr = next(e for t, e in panel_exprs(load_dashboard()) if t == title)  # the first query
        (sample,) = scraped.query(as_prometheus_sees_it(expr))
        assert float(sample["value"][1]) == pytest.approx(expected, rel=DRIFT)
