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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from threading import Thread
from typing import Final, assert_never
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from callrouter.adapters.mqtt import REJECT_REASONS
from callrouter.adapters.outcome import call_outcome
from callrouter.adapters.store_errors import WRITE_FAILURE_KINDS
from callrouter.core.admission import Admission
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
    RecordingState,
    SpecialtyChosen,
)
from callrouter.refusal_log import WORKER_BUSY

PREFIX: Final = "callrouter_"
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
# Refusal reasons (bounded label values): the engine's admission decisions, and pjsua's own 486.
REFUSALS: Final = (
    *((a.name.lower(), a.status) for a in Admission if a is not Admission.ACCEPT),
    (WORKER_BUSY, 486),
)
RELOAD_OK: Final = "ok"
RELOAD_FAILED: Final = "failed"


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


class Metrics:
    """The metrics sink: ``handle(event)`` for every domain event, ``set_*`` for engine state."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        # Process-wide switch: without it every counter grows a *_created twin series.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        reg = self.registry
        # Per call in progress, the labels later events lack (legs know no area or specialty),
        # and per leg its tier and whether it was placed yet (see the module docstring).
        self._calls: dict[str, tuple[str, str]] = {}
        self._legs: dict[str, dict[str, tuple[str, bool]]] = {}
        self._mqtt_registered = False
        self._declare_store_metrics()

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
        self._init_operations(counter, gauge)

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

    # -- call records: write failures and the spool (the store's StoreObserver) -------------

    def _declare_store_metrics(self) -> None:
        reg = self.registry
        self.store_write_failures = Counter(
            PREFIX + "store_write_failures",
            "Call-record writes the database refused, by kind (full, io, busy, ...).",
            ("kind",),
            registry=reg,
        )
        for kind in WRITE_FAILURE_KINDS:
            self.store_write_failures.labels(kind=kind)
        self.store_spooled_events = Gauge(
            PREFIX + "store_spooled_events",
            "Call records waiting in the spool until the database can take them.",
            registry=reg,
        )
        self.store_spool_dropped = Counter(
            PREFIX + "store_spool_dropped",
            "Call records lost: the spool was full, or they were only in memory at shutdown.",
            registry=reg,
        )

    def store_write_failed(self, kind: str) -> None:
        self.store_write_failures.labels(kind=kind).inc()

    def set_store_spooled(self, count: int) -> None:
        self.store_spooled_events.set(count)

    def store_records_dropped(self, count: int) -> None:
        self.store_spool_dropped.inc(count)

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

    # -- operations: faults an operator must see (issue 9) -----------------------------------

    def _init_operations(
        self,
        counter: Callable[[str, str, tuple[str, ...]], Counter],
        gauge: Callable[..., Gauge],
    ) -> None:
        """Worker deaths, refusals, the bus, reloads, people on call. Counters exist at zero from
        the start, so ``increase()`` sees the first event (it cannot see a first sample)."""
        self.worker_deaths = counter(
            "worker_deaths", "SIP worker processes that exited unasked.", ()
        )
        self.worker_restarts = counter(
            "worker_restarts", "SIP worker processes started again after a death.", ()
        )
        self.calls_refused = counter(
            "calls_refused", "GP calls refused, by reason and SIP status.", ("reason", "status")
        )
        for reason, status in REFUSALS:
            self.calls_refused.labels(reason=reason, status=str(status))
        # Registered on first use: the series exists only where MQTT is configured, so the
        # disconnected alert never fires for an engine that runs without a bus.
        self._mqtt_connected = Gauge(
            PREFIX + "mqtt_connected", "1 while the MQTT bus connection is up.", registry=None
        )
        self.mqtt_rejected = counter(
            "mqtt_payloads_rejected", "MQTT payloads refused as malformed, by reason.", ("reason",)
        )
        self.config_reloads = counter(
            "config_reloads", "SIGHUP reloads of dialplans and rotas, by outcome.", ("outcome",)
        )
        for reason in REJECT_REASONS:
            self.mqtt_rejected.labels(reason=reason)
        self.recordings = counter(
            "recordings", "Call recordings settled, by state.", ("state",)
        )
        for state in RecordingState:
            self.recordings.labels(state=state.value)
        for outcome in (RELOAD_OK, RELOAD_FAILED):
            self.config_reloads.labels(outcome=outcome)
        self.config_reload_ok = gauge(
            "config_last_reload_successful", "0 while the last reload was rejected, else 1."
        )
        self.config_reload_ok.set(1)
        self.config_reload_at = gauge(
            "config_last_reload_success_timestamp_seconds",
            "When the running configuration was last loaded or reloaded successfully.",
        )
        self.consultants_on_call = gauge(
            "consultants_on_call",
            "Distinct people on call now, over every area, specialty and tier.",
        )
        self.area_consultants_on_call = gauge(
            "area_consultants_on_call",
            "Distinct people on call now for the area, over its specialties and tiers.",
            ("area",),
        )

    def worker_died(self, worker: str) -> None:
        """WorkerObserver (callrouter.sip.pool): label-free; the engine's log names ``worker``."""
        self.worker_deaths.inc()

    def worker_restarted(self, worker: str) -> None:
        self.worker_restarts.inc()

    def call_refused(self, reason: str, status: int) -> None:
        """Count one refused call; ``reason`` is one of REFUSALS' (a bounded set)."""
        self.calls_refused.labels(reason=reason, status=str(status)).inc()

    def mqtt_connected(self, connected: bool) -> None:
        if not self._mqtt_registered:
            self.registry.register(self._mqtt_connected)
            self._mqtt_registered = True
        self._mqtt_connected.set(1 if connected else 0)

    def mqtt_payload_rejected(self, reason: str) -> None:
        """Count one refused payload; ``reason`` must come from a fixed set in the adapter."""
        self.mqtt_rejected.labels(reason=reason).inc()

    def config_loaded(self, now: float) -> None:
        """The configuration the engine started with: a success time, not a reload."""
        self.config_reload_ok.set(1)
        self.config_reload_at.set(now)

    def config_reloaded(self, ok: bool, now: float) -> None:
        self.config_reloads.labels(outcome=RELOAD_OK if ok else RELOAD_FAILED).inc()
        self.config_reload_ok.set(1 if ok else 0)
        if ok:
            self.config_reload_at.set(now)

    def set_consultants_on_call(self, by_area: Mapping[str, Iterable[str]]) -> None:
        """Distinct people on call: ``by_area`` maps each area to the member ids on call there
        (any specialty or tier, repeats allowed). Ids are only counted, never exported."""
        everyone: set[str] = set()
        for area, member_ids in by_area.items():
            people = set(member_ids)
            everyone |= people
            self.area_consultants_on_call.labels(area=area).set(len(people))
        self.consultants_on_call.set(len(everyone))

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
