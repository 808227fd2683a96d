"""How the settings become what the engine runs on: the flow's environment, and the metric
series and gauges that follow the configuration (used at start-up and by every reload)."""

from __future__ import annotations

from datetime import datetime

import structlog

from callrouter.adapters.metrics import Metrics
from callrouter.core.callflow import FlowEnv
from callrouter.core.learning import MemberStats
from callrouter.core.strategies import strategy_named
from callrouter.engine import EnginePresence
from callrouter.oncall.calendar import is_open
from callrouter.oncall.planner import RotaPlanSource
from callrouter.prompt_set import recording_notice
from callrouter.settings.compile import compile_lines
from callrouter.settings.loader import Settings

log = structlog.get_logger("callrouter.app")


def build_env(settings: Settings, presence: EnginePresence, stats: MemberStats) -> FlowEnv:
    zone = settings.rotas.zone

    dialplans = settings.dialplans

    def open_now(area: str, now: float) -> bool:
        return is_open(dialplans[area].hours, datetime.fromtimestamp(now, tz=zone))

    names = dict(settings.config.specialties)
    return FlowEnv(
        lines=compile_lines(dialplans, names, recording_notice(settings)),
        plans=RotaPlanSource(settings.dialplans, settings.rotas),
        presence=presence,
        stats=stats,
        strategy_for=lambda policy: strategy_named(policy.strategy.value),
        is_open=open_now,
        free_legs=lambda: 0,  # the engine gives each call its own worker's count
        max_call_seconds=settings.config.limits.max_call_seconds,
    )


def declare_areas(metrics: Metrics, settings: Settings) -> None:
    """Every area's series at zero, so rates and alerts see the first call."""
    for area, dialplan in settings.dialplans.items():
        metrics.declare_area(area, dialplan.specialties, ("local", "ncn"))


def publish_gauges(settings: Settings, metrics: Metrics, env: FlowEnv, now: float) -> None:
    """Members on call per area/specialty/tier, distinct people on call (the NCN serves several
    areas and specialties but is one set of people), and service hours."""
    on_call: dict[str, set[str]] = {}
    for area, dialplan in settings.dialplans.items():
        metrics.set_in_service_hours(area, in_hours=env.is_open(area, now))
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
