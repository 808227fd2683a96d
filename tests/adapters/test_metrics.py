"""Prometheus metrics: scripted events in, exact counts out, and promtool's lint passes."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callrouter.adapters.metrics import Metrics
from callrouter.core.domain import CallEnded, CallOffered, DomainEvent, EndReason

from .scripted_calls import abandoned_in_hunt, connected_call, ivr_hangup

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, frozenset(labels.items()))]


def fed(*scripts: list[DomainEvent]) -> Metrics:
    metrics = Metrics("1.2.3")
    metrics.declare_area("north", ["cardiology", "dermatology"], ["local", "ncn"])
    metrics.declare_area("south", ["cardiology"], ["local", "ncn"])
    for script in scripts:
        for event in script:
            metrics.handle(event)
    return metrics


@pytest.fixture(scope="module")
def three_calls() -> Metrics:
    metrics = fed(connected_call(), abandoned_in_hunt(), ivr_hangup())
    metrics.set_members_on_call("north", "cardiology", "local", 2)
    metrics.set_members_on_call("north", "cardiology", "ncn", 5)
    metrics.set_worker_slots_free(7)
    metrics.set_in_service_hours("north", in_hours=True)
    return metrics


class TestLint:
    """The exposition passes `promtool check metrics` with no complaints."""

    def test_promtool_check_metrics(self, three_calls: Metrics) -> None:
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=three_calls.exposition(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == b""
        assert result.stderr == b""

    def test_no_created_series_and_own_registry(self, three_calls: Metrics) -> None:
        text = three_calls.exposition().decode()
        assert "_created" not in text
        assert "python_gc" not in text  # not the global registry's default collectors
        assert "process_cpu" not in text

    def test_no_identifiers_in_labels(self, three_calls: Metrics) -> None:
        text = three_calls.exposition().decode()
        for secret in ("0770", "c-connected", "m-ncn-7", "Y00001", "Dr Example", "9434765919"):
            assert secret not in text


class TestCounts:
    """Exact counter values after a connected, an abandoned and an IVR-hangup call."""

    def test_offered_and_ended(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        assert value(got, "callrouter_calls_offered_total", area="north") == 2
        assert value(got, "callrouter_calls_offered_total", area="south") == 1
        ended = {k: v for k, v in got.items() if k[0] == "callrouter_calls_ended_total"}
        assert ended == {
            (
                "callrouter_calls_ended_total",
                frozenset(
                    {
                        ("area", "north"),
                        ("specialty", "cardiology"),
                        ("outcome", "connected"),
                        ("reason", "completed"),
                    }
                ),
            ): 1,
            (
                "callrouter_calls_ended_total",
                frozenset(
                    {
                        ("area", "north"),
                        ("specialty", "dermatology"),
                        ("outcome", "abandoned"),
                        ("reason", "gp_hangup_hunt"),
                    }
                ),
            ): 1,
            (
                "callrouter_calls_ended_total",
                frozenset(
                    {
                        ("area", "south"),
                        ("specialty", "none"),
                        ("outcome", "abandoned"),
                        ("reason", "gp_hangup_ivr"),
                    }
                ),
            ): 1,
        }

    def test_ftcr_numerator_and_denominator(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        chosen = "callrouter_specialty_chosen_total"
        connected = "callrouter_calls_connected_total"
        assert value(got, chosen, area="north", specialty="cardiology") == 1
        assert value(got, chosen, area="north", specialty="dermatology") == 1
        assert value(got, chosen, area="south", specialty="cardiology") == 0  # declared, unused
        assert value(got, connected, area="north", specialty="cardiology") == 1
        assert value(got, connected, area="north", specialty="dermatology") == 0

    def test_legs_and_decisions(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        assert value(got, "callrouter_legs_total", tier="local", result="declined") == 1
        assert value(got, "callrouter_legs_total", tier="local", result="cancelled") == 1
        assert value(got, "callrouter_legs_total", tier="ncn", result="accepted") == 0
        started = "callrouter_legs_started_total"
        assert value(got, started, area="north", specialty="cardiology", tier="local") == 1
        assert value(got, started, area="north", specialty="cardiology", tier="ncn") == 1
        assert value(got, started, area="north", specialty="dermatology", tier="local") == 1
        decisions = "callrouter_consultant_decisions_total"
        assert value(got, decisions, tier="local", decision="decline") == 1
        assert value(got, decisions, tier="ncn", decision="accept") == 1
        assert value(got, decisions, tier="local", decision="accept") == 0

    def test_survey_answers(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        name = "callrouter_survey_answers_total"
        labels = {"area": "north", "specialty": "cardiology"}
        assert value(got, name, answer="avoided_referral", **labels) == 1
        assert value(got, name, answer="referral_needed", **labels) == 0


class TestHistograms:
    """Histogram counts, sums and bucket placement."""

    def test_connection_time(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        labels = {"area": "north", "specialty": "cardiology"}
        assert value(got, "callrouter_connection_seconds_count", **labels) == 1
        assert value(got, "callrouter_connection_seconds_sum", **labels) == 34.0
        bucket = "callrouter_connection_seconds_bucket"
        assert value(got, bucket, le="30.0", **labels) == 0
        assert value(got, bucket, le="34.0", **labels) == 1
        assert value(got, bucket, le="300.0", **labels) == 1

    def test_ring_call_length_and_ivr(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        assert value(got, "callrouter_leg_ring_seconds_count", tier="local") == 2
        assert value(got, "callrouter_leg_ring_seconds_sum", tier="local") == 37.0  # 7 + 30
        north_cardio = {"area": "north", "specialty": "cardiology"}
        assert value(got, "callrouter_call_length_seconds_count", **north_cardio) == 1
        assert value(got, "callrouter_call_length_seconds_sum", **north_cardio) == 260.0
        assert value(got, "callrouter_ivr_seconds_sum", **north_cardio) == 19.0
        north_derm = {"area": "north", "specialty": "dermatology"}
        assert value(got, "callrouter_ivr_seconds_sum", **north_derm) == 8.0
        # The abandoned call never connected: no call-length observation for it.
        assert ("callrouter_call_length_seconds_count", frozenset(north_derm.items())) not in got


class TestGauges:
    """Gauges the engine sets, and active calls kept by events."""

    def test_set_gauges_and_build_info(self, three_calls: Metrics) -> None:
        got = samples(three_calls.exposition())
        name = "callrouter_members_on_call"
        assert value(got, name, area="north", specialty="cardiology", tier="ncn") == 5
        assert value(got, "callrouter_worker_slots_free") == 7
        assert value(got, "callrouter_in_service", area="north") == 1
        assert value(got, "callrouter_in_service", area="south") == 0
        assert value(got, "callrouter_build_info", version="1.2.3") == 1

    def test_active_calls_rise_and_fall(self) -> None:
        metrics = fed(connected_call()[:5], ivr_hangup()[:1])
        got = samples(metrics.exposition())
        assert value(got, "callrouter_active_calls", area="north") == 1
        assert value(got, "callrouter_active_calls", area="south") == 1
        for event in connected_call()[5:]:
            metrics.handle(event)
        got = samples(metrics.exposition())
        assert value(got, "callrouter_active_calls", area="north") == 0

    def test_duplicate_end_does_not_go_negative(self) -> None:
        metrics = fed(ivr_hangup())
        metrics.handle(CallEnded("c-ivr", 0.0, "south", None, EndReason.GP_HANGUP_IVR, False, 0))
        got = samples(metrics.exposition())
        assert value(got, "callrouter_active_calls", area="south") == 0

    def test_two_instances_do_not_collide(self) -> None:
        first, second = Metrics("1"), Metrics("1")
        first.handle(CallOffered("a", 0.0, "north", "07700900123", None, None))
        got = samples(second.exposition())
        assert ("callrouter_calls_offered_total", frozenset({("area", "north")})) not in got


class TestServe:
    """serve() answers a scrape on loopback with our registry."""

    def test_http_scrape(self, three_calls: Metrics) -> None:
        server = three_calls.serve("127.0.0.1", 0)
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
        finally:
            server.close()
        got = samples(body)
        assert value(got, "callrouter_calls_offered_total", area="north") == 2
