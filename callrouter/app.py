"""The composition root: build every adapter from the settings, run the engine, shut down well.

Start-up order: logs → records (close calls a crash left open) → metrics → prompts → SIP
workers → bus → health → READY=1. SIGTERM/SIGINT: stop taking calls, let calls in progress
finish for ``drain_seconds``, then hang up the rest and stop. SIGHUP: reload dialplans and rotas;
a bad reload is logged, counted, shown in systemd's STATUS= and the running configuration kept.

Shutdown closes every adapter on its own, each under a time limit: an adapter that died (an MQTT
task that crashed) or hangs is logged and passed over, so the others still close and the process
exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from callrouter import __version__
from callrouter.adapters import systemd
from callrouter.adapters.health import HealthServer
from callrouter.adapters.metrics import Metrics
from callrouter.adapters.mqtt import MqttBus
from callrouter.adapters.mqtt_busy import BusyShare
from callrouter.adapters.sealing import SealingKey
from callrouter.adapters.store_spool import MIB, SpoolOptions
from callrouter.adapters.store_sqlite import CallStore
from callrouter.audit import AuditTrail
from callrouter.core.learning import MemberStats
from callrouter.edge.process import EdgeProcess, edge_signals, start_edge, tell_edge
from callrouter.engine import Engine, EngineLimits
from callrouter.lifecycle import (
    CLOSE_STEP_SECONDS,
    cancel_task,
    close_all,
    log_crash,
    reload_settings,
)
from callrouter.live_cover import LiveCover
from callrouter.prompt_set import PreparedPrompts, prompts_of
from callrouter.recordings import RecordingArchive, open_archive
from callrouter.settings.config import Config
from callrouter.settings.loader import Settings, load_settings
from callrouter.shared_presence import bind_presence, busy_share, presence_for
from callrouter.sinks import Fanout, SealNhsNumbers, Store
from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.sip.pool_growth import PoolGrowth, start_growth
from callrouter.sip.reaper import Reaper
from callrouter.sip.worker_config import WorkerConfig
from callrouter.wiring import build_env, declare_areas, publish_gauges
from callrouter.worker_plan import (
    edge_port,
    engine_trunk_check,
    plan_workers,
    worker_count,
    worker_port,
)

__all__ = ["RunOptions", "build_env", "reload_settings", "run"]

log = structlog.get_logger("callrouter.app")

GAUGE_PERIOD_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line overrides of config.yaml, so instances and tests can run side by side."""

    sip_port: int | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    db: Path | None = None
    drain_seconds: float = 30.0


async def run(config_path: Path, options: RunOptions) -> int:
    settings = load_settings(config_path)
    security = settings.config.security
    # Before anything opens: a key that cannot be read is a start failure, not a late surprise.
    key = SealingKey.load(security.key_file, security.key_env) if security.has_key else None
    if security.key_env is not None:
        os.environ.pop(security.key_env, None)  # in memory only: never inherited by the workers
    database = settings.config.database
    metrics = Metrics(version=__version__)  # first: the store reports its failures to it
    spool = SpoolOptions(
        directory=database.spool_dir,
        max_events=database.spool_max_events,
        reserve_bytes=database.spool_reserve_mib * MIB,
    )
    store = await CallStore.open(options.db or database.path, spool=spool, observer=metrics)
    try:
        return await _run_with_store(settings, options, store, metrics, key)
    finally:
        # On every path, a failed start too: the store's thread would keep the process alive.
        # Last, and bounded like every other adapter, so the records see every call's end.
        await close_all([("records", store.close)])
        log.info("stopped")


async def _run_with_store(
    settings: Settings,
    options: RunOptions,
    store: CallStore,
    metrics: Metrics,
    key: SealingKey | None,
) -> int:
    cfg = settings.config
    metrics_port = cfg.metrics.listen_port if options.metrics_port is None else options.metrics_port
    db_path = store.path

    closed = await store.close_interrupted(time.time())
    log.info("records_open", path=str(db_path), interrupted_closed=closed, waiting=store.waiting)

    declare_areas(metrics, settings)
    metrics.config_loaded(time.time())
    metrics_server = metrics.serve(cfg.metrics.listen_host, metrics_port)
    log.info("metrics_listening", host=cfg.metrics.listen_host, port=metrics_server.port)

    prompts = await _prepared_prompts(settings)

    workers = plan_workers(
        cfg,
        first_port=worker_port(cfg, options.sip_port),
        edge_port=edge_port(cfg, options.sip_port),
    )
    pool, reaper = _pool(cfg, workers, metrics)
    growth: PoolGrowth | None = None
    trail = AuditTrail(store)  # availability, live overrides and reloads, append-only
    cover = await LiveCover.load(settings, trail, store)  # live overrides in force, from SQLite
    bus = None
    bus_task: asyncio.Task[None] | None = None
    edge: EdgeProcess | None = None
    archive: RecordingArchive | None = None
    sweeper: asyncio.Task[None] | None = None
    try:
        readies = await pool.start()
        for ready in readies:
            log.info("sip_listening", host=ready.sip_host, port=ready.sip_port, slots=ready.slots)
        metrics.set_worker_slots_free(pool.free_slots)  # over every worker
        edge = await start_edge(cfg, workers, readies, edge_port(cfg, options.sip_port))
        signals = edge_signals(cfg, workers, readies, edge_port(cfg, options.sip_port), edge)
        growth = start_growth(pool, idle_seconds=cfg.sip.spare_idle_seconds, edge=signals)

        share = busy_share(cfg, metrics.busy_race_lost)  # with the other engine nodes, if any
        bus = _bus(cfg, metrics, trail, cover, share)
        if bus is not None:
            bus_task = asyncio.create_task(bus.run(), name="mqtt")
            bus_task.add_done_callback(log_crash)

        stats = MemberStats()
        presence = presence_for(share, bus.is_available if bus is not None else None)
        env = build_env(cover.settings, presence, stats)
        sink = Fanout(store=await _records(store, key), metrics=metrics, bus=bus)
        recording = cfg.recording
        if recording is not None and recording.enabled and key is not None:
            archive = await open_archive(recording.directory, key, sink.handle)
            sweeper = asyncio.create_task(archive.sweep_forever(), name="recordings")
        engine = Engine(
            sip=pool,
            dialplans=cover.settings,
            env=env,
            presence=presence,
            prompts=prompts,
            sink=sink,
            recordings=archive,
            refusals=metrics,
            limits=EngineLimits(
                max_concurrent_calls=cfg.limits.max_concurrent_calls,
                trunk_allows=engine_trunk_check(cfg),
            ),
        )

        def on_worker_event(event: p.Event) -> None:
            if isinstance(event, p.Slots | p.LegClosed | p.Incoming):
                metrics.set_worker_slots_free(pool.free_slots)

        engine.on_worker_event = tell_edge(on_worker_event, signals)  # and its dead workers
        bind_presence(presence, engine.give_up_leg)
        cover.on_change = lambda merged: engine.reload(
            merged, build_env(merged, engine.presence, engine.env.stats)
        )
        return await _serve(
            engine=engine,
            settings=settings,
            metrics=metrics,
            prompts=prompts,
            options=options,
            pool=pool,
            trail=trail,
            cover=cover,
        )
    finally:
        await close_all(
            [
                ("mqtt", lambda: cancel_task(bus_task)),
                ("audit", trail.drain),
                ("pool_growth", lambda: growth.aclose() if growth else cancel_task(None)),
                ("edge", lambda: edge.aclose() if edge else cancel_task(None)),
                ("sip_workers", pool.aclose),
                ("reaper", reaper.aclose),
                ("recordings", lambda: _close_archive(archive, sweeper)),
                ("metrics", lambda: asyncio.to_thread(metrics_server.close)),
            ]
        )


async def _prepared_prompts(settings: Settings) -> PreparedPrompts:
    """Every prompt the dialplans name, synthesised into the cache before calls are taken."""
    prompts = PreparedPrompts(settings.config.paths.prompt_cache)
    made = await prompts.prepare(prompts_of(settings))
    log.info("prompts_ready", count=made)
    return prompts


def _pool(
    cfg: Config, workers: list[WorkerConfig], metrics: Metrics
) -> tuple[WorkerPool, Reaper]:
    """The workers (``sip.workers`` started, the rest of ``max_workers`` standing by), and the
    reaper that tells a dead worker's peers: behind the edge, only the consultants (the edge
    ends the callers' legs itself)."""
    reaper = Reaper(inbound=not cfg.edge.enabled)
    initial = worker_count(cfg.sip)
    return WorkerPool(workers, observer=metrics, initial=initial, reaper=reaper), reaper


def _bus(
    cfg: Config, metrics: Metrics, trail: AuditTrail, cover: LiveCover, share: BusyShare | None
) -> MqttBus | None:
    if cfg.mqtt is None:
        return None
    metrics.mqtt_connected(False)  # the series exists (and alerts) only with a bus
    return MqttBus(
        host=cfg.mqtt.host,
        port=cfg.mqtt.port,
        topic_prefix=cfg.mqtt.topic_prefix,
        node_id=cfg.mqtt.client_id,
        username=cfg.mqtt.username,
        password=cfg.mqtt.password,
        keepalive=cfg.mqtt.keepalive_seconds,
        observer=metrics,
        on_availability=trail.availability,
        commands=cover.handle if cfg.mqtt.live_cover else None,
        channels=() if share is None else (share,),
    )


async def _records(store: CallStore, key: SealingKey | None) -> Store:
    """The records as the sinks see them: NHS numbers sealed on the way in when there is a key
    (and any an older version left in clear sealed now)."""
    if key is None:
        return store
    sealed = SealNhsNumbers(store, key)
    if resealed := await store.seal_plain_nhs_numbers(sealed.seal):
        log.warning("nhs_numbers_sealed", count=resealed)
    return sealed


async def _close_archive(
    archive: RecordingArchive | None, sweeper: asyncio.Task[None] | None
) -> None:
    """Let recordings being sealed finish (what does not is sealed at the next start)."""
    await cancel_task(sweeper)
    if archive is not None:
        await archive.drain(timeout=CLOSE_STEP_SECONDS / 2)


async def _serve(
    *,
    engine: Engine,
    settings: Settings,
    metrics: Metrics,
    prompts: PreparedPrompts,
    options: RunOptions,
    pool: WorkerPool,
    trail: AuditTrail,
    cover: LiveCover,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    current = [settings]  # replaced by a good SIGHUP reload
    reloads: set[asyncio.Task[None]] = set()

    async def prepare(fresh: Settings) -> None:
        await prompts.prepare(prompts_of(fresh))
        declare_areas(metrics, fresh)

    async def reload() -> None:
        errors: list[str] = []
        fresh = await reload_settings(
            engine, settings.config_path, prepare, errors.append, running=settings.config
        )
        metrics.config_reloaded(ok=fresh is not None, now=time.time())
        trail.config_reload(str(settings.config_path), errors[0] if errors else None)
        if fresh is not None:
            current[0] = fresh
            cover.rebase(fresh)  # the live overrides, checked against the new rotas

    def on_sighup() -> None:
        task = asyncio.create_task(reload(), name="reload")
        reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)

    serving = asyncio.create_task(engine.serve(), name="engine")
    health = None
    if options.health_port is not None:
        health = HealthServer(
            lambda: {"active_calls": engine.active_calls, "worker_slots_free": pool.free_slots},
            ready=lambda: not stop.is_set(),
        )
        await health.start("127.0.0.1", options.health_port)

    async def gauges() -> None:
        while True:
            publish_gauges(current[0], metrics, engine.env, time.time())
            await asyncio.sleep(GAUGE_PERIOD_SECONDS)

    gauge_task = asyncio.create_task(gauges(), name="gauges")
    watchdog_task = asyncio.create_task(systemd.keep_watchdog_fed(), name="watchdog")
    systemd.ready()
    log.info("ready", areas=sorted(settings.dialplans))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)

    systemd.stopping()
    engine.stop_accepting()
    log.info("draining", active_calls=engine.active_calls, grace=options.drain_seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.wait_idle(), options.drain_seconds)
    await engine.hang_up_all(grace=5.0)
    for task in (gauge_task, watchdog_task, serving, stopper):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if health is not None:
        await health.close()
    return 0
