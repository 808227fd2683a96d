"""Prometheus metrics from domain events: counters and histograms, plus gauges the engine sets.

Labels only ever take values from bounded sets: area and specialty (from config), tier, outcome,
end reason, leg result, survey answer, refusal reason and status. Never numbers, names, member ids
or call ids. Ratios (FTCR, means, quantiles) are recording rules over these in
monitoring/prometheus/rules.yml.

A leg is *placed* once it reached a phone: a provisional response (LegRang), an answer, or a
far-end 4xx/6xx (busy, rejected, unavailable). Local failures (no free slot, a dead worker, 5xx or
transport errors pjsip may make up, our ring timer on a silent 100 Trying) rang nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from threading import Thread
from typing import Final, assert_never
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from callrouter.adapters.metrics_ops import PREFIX, REFUSALS, OperationsMetrics
from callrouter.adapters.outcome import call_outcome
from callrouter.core.domain import (
    CallAnswered,
    CallEnded,
    CallOffered,
    Connected,
    DomainEvent,
    LegEnded,
    LegPickedUp,
    LegRang,
    LegResult,
    LegStarted,
    NhsNumberCaptured,
    OutcomeRecorded,
    RecordingFinished,
    SpecialtyChosen,
)

__all__ = ["PREFIX", "REFUSALS", "Metrics", "MetricsServer"]

NO_SPECIALTY: Final = "none"  # label value for calls that ended before a specialty was chosen
AVOIDED: Final = "avoided_referral"
NOT_AVOIDED: Final = "referral_needed"
ACCEPT: Final = "accept"
DECLINE: Final = "decline"

# Buckets follow the seed anchors: connection time ~34 s mean, call length ~4 min 20 s mean.
CONNECTION_BUCKETS: Final = (5.0, 10, 15, 20, 25, 30, 34, 40, 50, 60, 90, 120, 180, 240, 300)
RING_BUCKETS: Final = (1.0, 2, 3, 5, 8, 10, 15, 20, 25, 30, 45, 60)
CALL_LENGTH_BUCKETS: Final = (30.0, 60, 120, 180, 240, 260, 300, 420, 600, 900, 1200, 1800, 3600)
IVR_BUCKETS: Final = (5.0, 10, 15, 20, 30, 45, 60, 90, 120, 180)

# Leg results that only a far end can give (a final 4xx/6xx): such a leg rang a phone.
_REMOTE_RESULTS: Final = frozenset({LegResult.BUSY, LegResult.REJECTED, LegResult.UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running exposition endpoint; ``close()`` stops it."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Metrics(OperationsMetrics):
    """The metrics sink: ``handle(event)`` for every domain event, ``set_*`` for engine state;
    the operations series (faults, the bus, reloads, the records) come from the base class."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        # Process-wide switch: without it every counter grows a *_created twin series.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        super().__init__(CollectorRegistry(auto_describe=True) if registry is None else registry)
        reg = self.registry
        # Per call in progress, the labels later events lack (legs know no area or specialty),
        # and per leg its tier and whether it was placed yet (see the module docstring).
        self._calls: dict[str, tuple[str, str]] = {}
        self._legs: dict[str, dict[str, tuple[str, bool]]] = {}

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=reg)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(PREFIX + name, doc, labels, registry=reg, buckets=buckets)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=reg)

        self.calls_offered = counter("calls_offered", "Calls offered (GP INVITEs).", ("area",))
        self.calls_ended = counter(
            "calls_ended",
            "Calls ended, by outcome and end reason.",
            ("area", "specialty", "outcome", "reason"),
        )
        self.specialty_chosen = counter(
            "specialty_chosen",
            "Calls whose specialty choice became final (the FTCR denominator).",
            ("area", "specialty"),
        )
        self.calls_connected = counter(
            "calls_connected",
            "Calls a consultant answered and accepted (first-time connections).",
            ("area", "specialty"),
        )
        self.legs_started = counter(
            "legs_started", "Consultant legs dialled.", ("area", "specialty", "tier")
        )
        self.legs_placed = counter(
            "legs_placed",
            "Consultant legs that reached a phone: rang, answered or refused by the far end.",
            ("area", "specialty", "tier"),
        )
        self.legs_ended = counter(
            "legs", "Consultant legs ended, by result.", ("area", "specialty", "tier", "result")
        )
        self.decisions = counter(
            "consultant_decisions",
            "Consultants' answers to the whisper: accept (1) or decline (2).",
            ("area", "specialty", "tier", "decision"),
        )
        self.survey_answers = counter(
            "survey_answers",
            "GPs' answers to the post-call question.",
            ("area", "specialty", "answer"),
        )
        self.connection_seconds = histogram(
            "connection_seconds",
            "Connection time: specialty chosen to consultant accepted.",
            ("area", "specialty"),
            CONNECTION_BUCKETS,
        )
        self.ring_seconds = histogram(
            "leg_ring_seconds",
            "Ring time of each consultant leg.",
            ("area", "specialty", "tier"),
            RING_BUCKETS,
        )
        self.call_length_seconds = histogram(
            "call_length_seconds",
            "Call length: connected to the end of the bridged conversation.",
            ("area", "specialty"),
            CALL_LENGTH_BUCKETS,
        )
        self.ivr_seconds = histogram(
            "ivr_seconds",
            "Time in the IVR: answer to final specialty choice.",
            ("area", "specialty"),
            IVR_BUCKETS,
        )
        self.active_calls = gauge("active_calls", "Calls in progress.", ("area",))
        self.members_on_call = gauge(
            "members_on_call",
            "Rota members on call now.",
            ("area", "specialty", "tier"),
        )
        self.worker_slots_free = gauge(
            "worker_slots_free", "Free call-leg slots across the SIP workers."
        )
        self.in_service = gauge(
            "in_service", "1 while the area's advice line is in its service hours.", ("area",)
        )
        self.build_info = gauge("build_info", "Always 1; the version is a label.", ("version",))
        self.build_info.labels(version=version).set(1)

    # -- engine state -----------------------------------------------------------------------

    def declare_area(
        self, area: str, specialties: Iterable[str], tiers: Iterable[str] = ()
    ) -> None:
        """Create an area's series at zero, so rates see the first call and dashboards show 0."""
        specialty_list = list(specialties)
        tier_list = list(tiers)
        self.calls_offered.labels(area=area)
        self.active_calls.labels(area=area)
        self.in_service.labels(area=area)
        for specialty in specialty_list:
            self.specialty_chosen.labels(area=area, specialty=specialty)
            self.calls_connected.labels(area=area, specialty=specialty)
            for answer in (AVOIDED, NOT_AVOIDED):
                self.survey_answers.labels(area=area, specialty=specialty, answer=answer)
            for tier in tier_list:
                labels = {"area": area, "specialty": specialty, "tier": tier}
                self.legs_started.labels(**labels)
                self.legs_placed.labels(**labels)
                for result in LegResult:
                    self.legs_ended.labels(**labels, result=result.value)
                for decision in (ACCEPT, DECLINE):
                    self.decisions.labels(**labels, decision=decision)

    def set_members_on_call(self, area: str, specialty: str, tier: str, count: int) -> None:
        self.members_on_call.labels(area=area, specialty=specialty, tier=tier).set(count)

    def set_worker_slots_free(self, count: int) -> None:
        self.worker_slots_free.set(count)

    def set_in_service_hours(self, area: str, *, in_hours: bool) -> None:
        self.in_service.labels(area=area).set(1 if in_hours else 0)

    # -- domain events ----------------------------------------------------------------------

    def handle(self, event: DomainEvent) -> None:
        """Count one domain event. Synchronous and I/O-free: safe on the engine's hot path."""
        match event:
            case CallOffered():
                self._calls[event.call_id] = (event.area, NO_SPECIALTY)
                self.calls_offered.labels(area=event.area).inc()
                self.active_calls.labels(area=event.area).inc()
            case SpecialtyChosen():
                self._calls[event.call_id] = (event.area, event.specialty)
                self.specialty_chosen.labels(area=event.area, specialty=event.specialty).inc()
                self.ivr_seconds.labels(area=event.area, specialty=event.specialty).observe(
                    event.ivr_seconds
                )
            case LegStarted():
                self._legs.setdefault(event.call_id, {})[event.leg] = (event.tier, False)
                self.legs_started.labels(*self._where(event.call_id), event.tier).inc()
            case LegRang() | LegPickedUp():
                self._placed(event.call_id, event.leg)
            case LegEnded():
                self._leg_ended(event)
            case Connected():
                labels = {"area": event.area, "specialty": event.specialty}
                self.calls_connected.labels(**labels).inc()
                self.connection_seconds.labels(**labels).observe(event.connect_seconds)
                self.decisions.labels(**labels, tier=event.tier, decision=ACCEPT).inc()
            case OutcomeRecorded():
                answer = AVOIDED if event.avoided_referral else NOT_AVOIDED
                self.survey_answers.labels(
                    area=event.area, specialty=event.specialty, answer=answer
                ).inc()
            case CallEnded():
                self._call_ended(event)
            case RecordingFinished():
                self.recordings.labels(state=event.state.value).inc()
            case CallAnswered() | NhsNumberCaptured():
                pass  # recorded by the call records; nothing here worth a series
            case _:  # a new event type must be placed here explicitly
                assert_never(event)

    def _where(self, call_id: str) -> tuple[str, str]:
        return self._calls.get(call_id, (NO_SPECIALTY, NO_SPECIALTY))

    def _placed(self, call_id: str, leg: str) -> None:
        """Count ``leg`` as placed the first time it shows it reached a phone."""
        legs = self._legs.get(call_id, {})
        found = legs.get(leg)
        if found is not None and not found[1]:
            legs[leg] = (found[0], True)
            self.legs_placed.labels(*self._where(call_id), found[0]).inc()

    def _leg_ended(self, event: LegEnded) -> None:
        if event.result in _REMOTE_RESULTS:
            self._placed(event.call_id, event.leg)
        self._legs.get(event.call_id, {}).pop(event.leg, None)
        area, specialty = self._where(event.call_id)
        labels = {"area": area, "specialty": specialty, "tier": event.tier}
        self.legs_ended.labels(**labels, result=event.result.value).inc()
        self.ring_seconds.labels(**labels).observe(event.ring_seconds)
        if event.result is LegResult.DECLINED:
            self.decisions.labels(**labels, decision=DECLINE).inc()

    def _call_ended(self, event: CallEnded) -> None:
        specialty = event.specialty or NO_SPECIALTY
        outcome = call_outcome(event.reason, connected=event.connected)
        self.calls_ended.labels(
            area=event.area, specialty=specialty, outcome=outcome, reason=event.reason.value
        ).inc()
        if event.connected:
            self.call_length_seconds.labels(area=event.area, specialty=specialty).observe(
                event.talk_seconds
            )
        self._legs.pop(event.call_id, None)
        # A second CallEnded for one call (a bug elsewhere) must not drive the gauge negative.
        if self._calls.pop(event.call_id, None) is not None:
            self.active_calls.labels(area=event.area).dec()

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text exposition format, as a scrape would return it."""
        return prometheus_client.generate_latest(self.registry)

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port) from a daemon thread."""
        server, thread = prometheus_client.start_http_server(
            port, addr=host, registry=self.registry
        )
        return MetricsServer(server, thread)
