"""The engine's lifecycle steps that are not start-up: SIGHUP reloads (with what systemd and the
log are told) and a shutdown that closes every adapter on its own, each under a time limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog

from callrouter.adapters import systemd
from callrouter.engine import Engine
from callrouter.settings.config import Config
from callrouter.settings.errors import ConfigError
from callrouter.settings.loader import Settings, load_settings
from callrouter.wiring import build_env

log = structlog.get_logger("callrouter.app")

CLOSE_STEP_SECONDS: Final = 10.0  # the most any one adapter may take to close at shutdown


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel and reap a task; an error it already died of is raised here (and logged)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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


def log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task_crashed", task=task.get_name(), error=repr(task.exception()))


async def reload_settings(
    engine: Engine,
    config_path: Path,
    prepare: Callable[[Settings], Awaitable[None]],
    on_error: Callable[[str], None] | None = None,
    running: Config | None = None,
) -> Settings | None:
    """Load the tree again; on any error keep what runs. Returns the new settings if taken.

    ``prepare`` makes the new tree's prompts (and metric series) before any call can use them,
    so no call makes audio on the event loop mid-call. ``on_error`` is given a refusal's error
    text (the audit trail keeps it). With ``running`` (the config the engine started with), a
    tree that changes what only a restart can change is refused.
    """
    systemd.reloading()
    try:
        fresh = await asyncio.to_thread(load_settings, config_path)
        if running is not None:
            _restart_only_unchanged(running, fresh)
    except ConfigError as error:
        _reload_failed("reload_rejected", str(error))
        if on_error is not None:
            on_error(str(error))
        return None
    try:
        await prepare(fresh)
    except Exception as error:  # e.g. TTS missing or disk full: keep what runs
        _reload_failed("reload_prepare_failed", repr(error))
        if on_error is not None:
            on_error(repr(error))
        return None
    engine.reload(fresh, build_env(fresh, engine.presence, engine.env.stats))
    log.info("reloaded", areas=sorted(fresh.dialplans))
    systemd.status(f"running; configuration reloaded {_stamp()}")
    systemd.ready()
    return fresh


def _restart_only_unchanged(running: Config, fresh: Settings) -> None:
    """The key is read once, at start-up, and the recordings archive opened then: a reload
    cannot bring a key (NHS numbers would be stored in clear) or start or move recordings."""
    changed = [
        name
        for name in ("security", "recording")
        if getattr(running, name) != getattr(fresh.config, name)
    ]
    if changed:
        source = fresh.sources[0]  # config.yaml is read first
        message = "changed: this section takes effect only at a restart (the running one is kept)"
        raise ConfigError([source.issue((name,), message, at_key=True) for name in changed])


def _reload_failed(event: str, errors: str) -> None:
    """Log, tell systemd why (STATUS=), and leave the reload state: the old config still runs."""
    log.error(event, errors=errors)
    # A ConfigError opens with a count ("2 configuration errors"); the first error follows it.
    summary = "; ".join(errors.strip().splitlines()[:2]) or event
    systemd.status(f"reload FAILED {_stamp()}, running configuration kept: {summary[:300]}")
    systemd.ready()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
