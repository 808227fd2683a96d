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
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callrouter import __version__
from callrouter.adapters import systemd
from callrouter.adapters.health import HealthServer
from callrouter.adapters.metrics import Metrics
from callrouter.adapters.mqtt import MqttBus
from callrouter.adapters.sealing import SealingKey
from callrouter.adapters.store_spool import MIB, SpoolOptions
from callrouter.adapters.store_sqlite import CallStore
from callrouter.core.calendar import is_open
from callrouter.core.callflow import FlowEnv
from callrouter.core.directory import CallerDirectory
from callrouter.core.learning import MemberStats
from callrouter.core.planner import RotaPlanSource
from callrouter.core.strategies import strategy_named
from callrouter.edge.process import EdgeProcess, start_edge, tell_edge
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.prompt_set import PreparedPrompts, prompts_of, recording_notice
from callrouter.recordings import RecordingArchive, open_archive
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError
from callrouter.settings.loader import Settings, load_settings
from callrouter.sinks import Fanout, SealNhsNumbers, Store
from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.worker_plan import edge_port, engine_trunk_check, plan_workers, worker_port

log = structlog.get_logger("callrouter.app")

GAUGE_PERIOD_SECONDS = 30.0
CLOSE_STEP_SECONDS = 10.0  # the most any one adapter may take to close at shutdown


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line overrides of config.yaml, so instances and tests can run side by side."""

    sip_port: int | None = None
    metrics_port: int | None = None
    health_port: int | None = None
    db: Path | None = None
    drain_seconds: float = 30.0


def build_env(settings: Settings, presence: EnginePresence, stats: MemberStats) -> FlowEnv:
    zone = settings.rotas.zone

    def open_now(dialplan: Dialplan, now: float) -> bool:
        return is_open(dialplan.hours, datetime.fromtimestamp(now, tz=zone))

    return FlowEnv(
        specialty_names=dict(settings.config.specialties),
        directories={area: CallerDirectory(plan) for area, plan in settings.dialplans.items()},
        plans=RotaPlanSource(settings.dialplans, settings.rotas),
        presence=presence,
        stats=stats,
        strategy_for=lambda policy: strategy_named(policy.strategy.value),
        is_open=open_now,
        free_legs=lambda: 0,  # the engine gives each call its own worker's count
        max_call_seconds=settings.config.limits.max_call_seconds,
        recording_notice=recording_notice(settings),
    )


def declare_areas(metrics: Metrics, settings: Settings) -> None:
    """Every area's series at zero, so rates and alerts see the first call."""
    for area, dialplan in settings.dialplans.items():
        metrics.declare_area(area, dialplan.specialties, ("local", "ncn"))


def _publish_gauges(settings: Settings, metrics: Metrics, env: FlowEnv, now: float) -> None:
    """Members on call per area/specialty/tier, distinct people on call (the NCN serves several
    areas and specialties but is one set of people), and service hours."""
    on_call: dict[str, set[str]] = {}
    for area, dialplan in settings.dialplans.items():
        metrics.set_in_service_hours(area, in_hours=env.is_open(dialplan, now))
        people = on_call.setdefault(area, set())
        for specialty in dialplan.specialties:
            try:
                plan = env.plans.plan(area, specialty, now)
            except LookupError:
                log.exception("plan_failed", area=area, specialty=specialty)
                continue
            for tier in plan.tiers:
                metrics.set_members_on_call(area, specialty, tier.name, len(tier.members))
                people.update(member.member_id for member in tier.members)
    metrics.set_consultants_on_call(on_call)


async def run(config_path: Path, options: RunOptions) -> int:
    settings = load_settings(config_path)
    security = settings.config.security
    # Before anything opens: a key that cannot be read is a start failure, not a late surprise.
    key = SealingKey.load(security.key_file, security.key_env) if security.has_key else None
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

    prompts = PreparedPrompts(cfg.paths.prompt_cache)
    made = await prompts.prepare(prompts_of(settings))
    log.info("prompts_ready", count=made)

    workers = plan_workers(cfg, first_port=worker_port(cfg, options.sip_port))
    pool = WorkerPool(workers, observer=metrics)
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

        if cfg.mqtt is not None:
            metrics.mqtt_connected(False)  # the series exists (and alerts) only with a bus
            bus = MqttBus(
                host=cfg.mqtt.host,
                port=cfg.mqtt.port,
                topic_prefix=cfg.mqtt.topic_prefix,
                node_id=cfg.mqtt.client_id,
                username=cfg.mqtt.username,
                password=cfg.mqtt.password,
                keepalive=cfg.mqtt.keepalive_seconds,
                observer=metrics,
            )
            bus_task = asyncio.create_task(bus.run(), name="mqtt")
            bus_task.add_done_callback(_log_crash)

        stats = MemberStats()
        presence = EnginePresence(bus.is_available if bus is not None else None)
        env = build_env(settings, presence, stats)
        records: Store = store
        if key is not None:
            records = sealed = SealNhsNumbers(store, key)
            if resealed := await store.seal_plain_nhs_numbers(sealed.seal):
                log.warning("nhs_numbers_sealed", count=resealed)  # left in clear by an old version
        sink = Fanout(store=records, metrics=metrics, bus=bus)
        recording = cfg.recording
        if recording is not None and recording.enabled and key is not None:
            archive = await open_archive(recording.directory, key, sink.handle)
            sweeper = asyncio.create_task(archive.sweep_forever(), name="recordings")
        engine = Engine(
            sip=pool,
            dialplans=settings,
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

        engine.on_worker_event = tell_edge(on_worker_event, edge)  # and its dead workers
        return await _serve(
            engine=engine,
            settings=settings,
            metrics=metrics,
            prompts=prompts,
            options=options,
            pool=pool,
        )
    finally:
        await close_all(
            [
                ("mqtt", lambda: _cancel(bus_task)),
                ("edge", lambda: edge.aclose() if edge else _cancel(None)),
                ("sip_workers", pool.aclose),
                ("recordings", lambda: _close_archive(archive, sweeper)),
                ("metrics", lambda: asyncio.to_thread(metrics_server.close)),
            ]
        )


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel and reap a task; an error it already died of is raised here (and logged)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_archive(
    archive: RecordingArchive | None, sweeper: asyncio.Task[None] | None
) -> None:
    """Let recordings being sealed finish (what does not is sealed at the next start)."""
    await _cancel(sweeper)
    if archive is not None:
        await archive.drain(timeout=CLOSE_STEP_SECONDS / 2)


async def close_all(
    steps: list[tuple[str, Callable[[], Awaitable[None]]]],
    step_seconds: float = CLOSE_STEP_SECONDS,
) -> list[str]:
    """Run every close step in order, each bounded; returns the names of those that failed.

    A failed or stuck step is logged and the next one still runs: the call records must be
    closed even when the bus died of a hostile message or the workers will not stop.
    """
    failed = []
    for name, step in steps:
        try:
            async with asyncio.timeout(step_seconds):
                await step()
        except Exception as error:  # one adapter's death must not keep the rest open
            failed.append(name)
            log.error("close_failed", adapter=name, error=repr(error)[:300])
    return failed


async def _serve(
    *,
    engine: Engine,
    settings: Settings,
    metrics: Metrics,
    prompts: PreparedPrompts,
    options: RunOptions,
    pool: WorkerPool,
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
        fresh = await reload_settings(engine, settings.config_path, prepare)
        metrics.config_reloaded(ok=fresh is not None, now=time.time())
        if fresh is not None:
            current[0] = fresh

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
            _publish_gauges(current[0], metrics, engine.env, time.time())
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


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))


async def reload_settings(
    engine: Engine, config_path: Path, prepare: Callable[[Settings], Awaitable[None]]
) -> Settings | None:
    """Load the tree again; on any error keep what runs. Returns the new settings if taken.

    ``prepare`` makes the new tree's prompts (and metric series) before any call can use them,
    so no call makes audio on the event loop mid-call.
    """
    systemd.reloading()
    try:
        fresh = await asyncio.to_thread(load_settings, config_path)
    except ConfigError as error:
        _reload_failed("reload_rejected", str(error))
        return None
    try:
        await prepare(fresh)
    except Exception as error:  # e.g. TTS missing or disk full: keep what runs
        _reload_failed("reload_prepare_failed", repr(error))
        return None
    engine.reload(fresh, build_env(fresh, engine.presence, engine.env.stats))
    log.info("reloaded", areas=sorted(fresh.dialplans))
    systemd.status(f"running; configuration reloaded {_stamp()}")
    systemd.ready()
    return fresh


def _reload_failed(event: str, errors: str) -> None:
    """Log, tell systemd why (STATUS=), and leave the reload state: the old config still runs."""
    log.error(event, errors=errors)
    # A ConfigError opens with a count ("2 configuration errors"); the first error follows it.
    summary = "; ".join(errors.strip().splitlines()[:2]) or event
    systemd.status(f"reload FAILED {_stamp()}, running configuration kept: {summary[:300]}")
    systemd.ready()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
