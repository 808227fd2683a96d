"""Prometheus metrics: scripted events in, exact counts out, and promtool's lint passes."""

from __future__ import annotations

import subprocess
import urllib.request
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callrouter.adapters.metrics import REFUSALS, Metrics
from callrouter.core.domain import (
    CallEnded,
    CallOffered,
    DomainEvent,
    EndReason,
    LegEnded,
    LegPickedUp,
    LegRang,
    LegResult,
    LegStarted,
    SpecialtyChosen,
)

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
        cardio = {"area": "north", "specialty": "cardiology"}
        derm = {"area": "north", "specialty": "dermatology"}
        legs = "callrouter_legs_total"
        assert value(got, legs, **cardio, tier="local", result="declined") == 1
        assert value(got, legs, **derm, tier="local", result="cancelled") == 1
        assert value(got, legs, **cardio, tier="ncn", result="accepted") == 0
        assert value(got, legs, **derm, tier="local", result="declined") == 0
        started = "callrouter_legs_started_total"
        assert value(got, started, area="north", specialty="cardiology", tier="local") == 1
        assert value(got, started, area="north", specialty="cardiology", tier="ncn") == 1
        assert value(got, started, area="north", specialty="dermatology", tier="local") == 1
        decisions = "callrouter_consultant_decisions_total"
        assert value(got, decisions, **cardio, tier="local", decision="decline") == 1
        assert value(got, decisions, **cardio, tier="ncn", decision="accept") == 1
        assert value(got, decisions, **cardio, tier="local", decision="accept") == 0

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
        north_cardio = {"area": "north", "specialty": "cardiology"}
        north_derm = {"area": "north", "specialty": "dermatology"}
        ring = "callrouter_leg_ring_seconds"
        assert value(got, f"{ring}_count", **north_cardio, tier="local") == 1
        assert value(got, f"{ring}_sum", **north_cardio, tier="local") == 7.0
        assert value(got, f"{ring}_sum", **north_derm, tier="local") == 30.0
        assert value(got, "callrouter_call_length_seconds_count", **north_cardio) == 1
        assert value(got, "callrouter_call_length_seconds_sum", **north_cardio) == 260.0
        assert value(got, "callrouter_ivr_seconds_sum", **north_cardio) == 19.0
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


def _leg_script(call_id: str, *middle: DomainEvent) -> list[DomainEvent]:
    """A north/cardiology call that dials one local leg L1, then ``middle``, then ends."""
    return [
        CallOffered(call_id, 0.0, "north", "07700900123", None, None),
        SpecialtyChosen(call_id, 1.0, "north", "cardiology", 1.0),
        LegStarted(call_id, 1.0, "L1", "m-1", "sip:m1@127.0.0.1", "local", "rota"),
        *middle,
        CallEnded(call_id, 9.0, "north", "cardiology", EndReason.NOBODY_ACCEPTED, False, 0.0),
    ]


def _ended(call_id: str, result: LegResult, status: int) -> LegEnded:
    return LegEnded(call_id, 5.0, "L1", "m-1", "local", result, status, 4.0)


class TestLegsPlaced:
    """A leg counts as placed only if it reached a phone: rang, answered or a far-end 4xx/6xx."""

    PLACED = "callrouter_legs_placed_total"
    NORTH_CARDIO_LOCAL: ClassVar = {"area": "north", "specialty": "cardiology", "tier": "local"}

    @pytest.mark.parametrize(
        ("middle", "placed"),
        [
            ((_ended("c", LegResult.ERROR, 503),), 0),  # no free slot: failed locally
            ((_ended("c", LegResult.ERROR, 500),), 0),  # worker died / makeCall error
            ((_ended("c", LegResult.NO_ANSWER, 0),), 0),  # ring timer on a silent 100 Trying
            ((_ended("c", LegResult.BUSY, 486),), 1),  # the far end said busy
            ((_ended("c", LegResult.UNAVAILABLE, 480),), 1),
            ((_ended("c", LegResult.REJECTED, 603),), 1),
            ((LegRang("c", 2.0, "L1"), _ended("c", LegResult.NO_ANSWER, 487)), 1),
            ((LegRang("c", 2, "L1"), LegRang("c", 3, "L1"), _ended("c", LegResult.BUSY, 486)), 1),
            ((LegPickedUp("c", 3.0, "L1", "m-1"), _ended("c", LegResult.DECLINED, 200)), 1),
        ],
    )  # fmt: skip
    def test_placed_or_not(self, middle: tuple[DomainEvent, ...], placed: int) -> None:
        metrics = fed(_leg_script("c", *middle))
        got = samples(metrics.exposition())
        assert value(got, self.PLACED, **self.NORTH_CARDIO_LOCAL) == placed
        assert value(got, "callrouter_legs_started_total", **self.NORTH_CARDIO_LOCAL) == 1

    def test_connected_leg_is_placed_once(self) -> None:
        got = samples(fed(connected_call()).exposition())
        cardio = {"area": "north", "specialty": "cardiology"}
        assert value(got, self.PLACED, **cardio, tier="local") == 1  # declined after ringing
        assert value(got, self.PLACED, **cardio, tier="ncn") == 1  # accepted: no LegEnded

    def test_leg_tracking_is_dropped_when_the_call_ends(self) -> None:
        metrics = fed(_leg_script("c", LegRang("c", 2.0, "L1")))
        assert metrics._legs == {}  # no per-call state may outlive the call
        assert metrics._calls == {}


class TestOperations:
    """Worker deaths, refused calls, the bus, config reloads and distinct people on call."""

    def test_fresh_series_are_zero_and_mqtt_absent(self) -> None:
        got = samples(Metrics("1").exposition())
        assert value(got, "callrouter_worker_deaths_total") == 0
        assert value(got, "callrouter_worker_restarts_total") == 0
        for reason, status in REFUSALS:
            labels = {"reason": reason, "status": str(status)}
            assert value(got, "callrouter_calls_refused_total", **labels) == 0
        assert {r for r, _ in REFUSALS} == {
            "forbidden", "unknown_number", "draining", "full", "no_slot", "worker_busy"
        }  # fmt: skip
        assert value(got, "callrouter_config_reloads_total", outcome="failed") == 0
        assert value(got, "callrouter_config_last_reload_successful") == 1
        # Without a bus the gauge must not exist, or the disconnected alert would fire.
        assert not [k for k in got if k[0] == "callrouter_mqtt_connected"]

    def test_setters(self) -> None:
        metrics = Metrics("1")
        metrics.worker_died("w0")
        metrics.worker_restarted("w0")
        metrics.worker_died("w1")
        metrics.call_refused("no_slot", 503)
        metrics.call_refused("no_slot", 503)
        metrics.call_refused("forbidden", 403)
        metrics.mqtt_connected(True)
        metrics.mqtt_connected(False)
        metrics.mqtt_payload_rejected("too_deep")
        metrics.busy_race_lost()
        metrics.config_loaded(1000.0)
        metrics.config_reloaded(False, 2000.0)
        got = samples(metrics.exposition())
        assert value(got, "callrouter_worker_deaths_total") == 2
        assert value(got, "callrouter_worker_restarts_total") == 1
        refused = "callrouter_calls_refused_total"
        assert value(got, refused, reason="no_slot", status="503") == 2
        assert value(got, refused, reason="forbidden", status="403") == 1
        assert value(got, refused, reason="full", status="503") == 0
        assert value(got, "callrouter_mqtt_connected") == 0
        assert value(got, "callrouter_mqtt_payloads_rejected_total", reason="too_deep") == 1
        assert value(got, "callrouter_busy_races_lost_total") == 1
        assert value(got, "callrouter_config_reloads_total", outcome="failed") == 1
        assert value(got, "callrouter_config_last_reload_successful") == 0
        stamp = "callrouter_config_last_reload_success_timestamp_seconds"
        assert value(got, stamp) == 1000.0  # a failed reload keeps the last success time
        metrics.config_reloaded(True, 3000.0)
        got = samples(metrics.exposition())
        assert value(got, "callrouter_config_reloads_total", outcome="ok") == 1
        assert value(got, "callrouter_config_last_reload_successful") == 1
        assert value(got, stamp) == 3000.0

    def test_consultants_on_call_counts_people_once(self) -> None:
        metrics = Metrics("1")
        # The NCN consultant n1 covers both areas and two specialties; a1 is on two rotas.
        metrics.set_consultants_on_call(
            {"north": ["a1", "a2", "a1", "n1", "n1"], "south": ["b1", "n1"]}
        )
        got = samples(metrics.exposition())
        assert value(got, "callrouter_consultants_on_call") == 4
        assert value(got, "callrouter_area_consultants_on_call", area="north") == 3
        assert value(got, "callrouter_area_consultants_on_call", area="south") == 2
        text = metrics.exposition().decode()
        assert "a1" not in text
        assert "n1" not in text

    def test_promtool_lints_the_operations_series(self) -> None:
        metrics = Metrics("1")
        metrics.mqtt_connected(True)
        metrics.mqtt_payload_rejected("not_json")
        metrics.set_consultants_on_call({"north": ["a"]})
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=metrics.exposition(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout + result.stderr == b""
