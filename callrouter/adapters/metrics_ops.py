"""Operations metrics: the faults and states an operator must see at once (worker deaths,
refused calls, the MQTT bus, config reloads, recordings, the call records' spool, people on
call). The metrics sink inherits them; the pool, the engine, the bus and the store report here
through their own small observer ports, never importing prometheus themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from callrouter.adapters.mqtt import REJECT_REASONS
from callrouter.adapters.store_errors import WRITE_FAILURE_KINDS
from callrouter.core.admission import Admission
from callrouter.core.domain import RecordingState
from callrouter.refusal_log import WORKER_BUSY

PREFIX: Final = "callrouter_"

# Refusal reasons (bounded label values): the engine's admission decisions, and pjsua's own 486.
REFUSALS: Final = (
    *((a.name.lower(), a.status) for a in Admission if a is not Admission.ACCEPT),
    (WORKER_BUSY, 486),
)
RELOAD_OK: Final = "ok"
RELOAD_FAILED: Final = "failed"


class OperationsMetrics:
    """The operations series and their setters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Worker deaths, refusals, the bus, reloads, recordings, the records' spool, people on
        call. Counters exist at zero from the start, so ``increase()`` sees the first event (it
        cannot see a first sample)."""
        self.registry = registry
        self._mqtt_registered = False
        self._declare_store_metrics()

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=registry)

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
        self.busy_races_lost = counter(
            "busy_races_lost",
            "Consultant legs given up to another engine node that claimed them first.",
            (),
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

    def busy_race_lost(self) -> None:
        """BusyShare (callrouter.adapters.mqtt_busy): a race for a consultant lost."""
        self.busy_races_lost.inc()

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
