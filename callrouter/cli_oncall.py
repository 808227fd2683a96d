"""``callrouter oncall``: who would be rung for a specialty at a given time, in order, and why.

It builds the same hunt plan the call flow builds (``oncall.planner.build_hunt_plan``) and adds the
rota's reasoning: which layers apply, each turn's next handoff, and the overrides in force,
including those added live over the bus (read from the records database, ``--db``; default the
configured one). This is the shell: it reads the clock when no ``--at`` is given; the core is
handed the instant.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from callrouter.adapters.store_audit import live_in_force
from callrouter.cli_common import (
    EXIT_CONFIG,
    EXIT_OK,
    Subparsers,
    add_config_argument,
    settings_or_exit,
)
from callrouter.core.localtime import instant
from callrouter.core.plan import HuntPlan
from callrouter.oncall.calendar import bank_holiday_name, is_open
from callrouter.oncall.live_cover import LiveOverride, usable, with_live_overrides
from callrouter.oncall.planner import build_hunt_plan
from callrouter.oncall.rota import TeamOnCall, explain
from callrouter.settings.loader import Settings
from callrouter.settings.rota import Rotas


class UsageError(Exception):
    """A bad --area, --specialty or --at, reported in one line."""


def add_oncall_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "oncall",
        help="show who would be rung for a specialty at a time, in order, and why",
        description="Show the hunt plan for a specialty: tiers, members in order, ring time, "
        "strategy, and the rota layer or override that put each member there.",
    )
    parser.add_argument("--specialty", required=True, metavar="SLUG", help="e.g. cardiology")
    parser.add_argument(
        "--area", metavar="AREA", help="the dialplan's area; needed when there is more than one"
    )
    parser.add_argument(
        "--at",
        metavar="ISO-8601",
        help="the moment to ask about (default: now). Without an offset it is local time in the "
        "configured zone, e.g. 2026-03-29T08:00; with one, that instant, e.g. 2026-03-29T07:00Z",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="records database holding the live overrides (default: database.path of config)",
    )
    add_config_argument(parser)
    parser.set_defaults(func=run_oncall)


def parse_at(text: str | None, zone: ZoneInfo) -> datetime:
    """The instant asked about, in ``zone``. Reads the clock only when ``text`` is None."""
    if text is None:
        return datetime.now(zone)
    try:
        given = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO-8601 date-time (2026-03-29T08:00)") from None
    if given.tzinfo is None:
        return instant(given, zone).astimezone(zone)  # wall-clock; core.localtime: DST edges
    return given.astimezone(zone)


def choose_area(settings: Settings, area: str | None) -> str:
    areas = sorted(settings.dialplans)
    if area is None:
        if len(areas) == 1:
            return areas[0]
        raise UsageError(f"there are {len(areas)} areas ({', '.join(areas)}): give --area")
    if area not in settings.dialplans:
        raise UsageError(f"no dialplan for area {area!r}; areas: {', '.join(areas)}")
    return area


def run_oncall(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    settings = settings_or_exit(args.config, err)
    zone = settings.rotas.zone
    try:
        area = choose_area(settings, args.area)
        dialplan = settings.dialplans[area]
        if args.specialty not in dialplan.specialties:
            known = ", ".join(sorted(dialplan.specialties))
            raise UsageError(f"area {area} has no specialty {args.specialty!r}; it has: {known}")
        at = parse_at(args.at, zone)
    except UsageError as error:
        print(f"callrouter oncall: {error}", file=err)
        return EXIT_CONFIG
    db_path: Path = args.db or settings.config.database.path
    try:
        rotas, lives = live_rotas(settings, db_path, at)
    except sqlite3.Error as error:  # say so: the answer below may then be wrong
        print(
            f"callrouter oncall: WARNING: live overrides not read from {db_path}: {error}", file=err
        )
        rotas, lives = settings.rotas, []
    plan = build_hunt_plan(dialplan, rotas, args.specialty, at)
    teams = [explain(rotas, tier.team, at) for tier in plan.tiers]
    report = oncall_report(plan, teams, at, line_open=is_open(dialplan.hours, at, zone))
    tier_teams = {tier.team for tier in plan.tiers}
    report["live_overrides"] = [
        {
            "override_id": live.override_id,
            "team": live.team_id,
            "member": live.override.member,
            "replaces": live.override.replaces,
            "from": live.override.from_.isoformat(),
            "to": live.override.to.isoformat(),
            "by": live.added_by,
            "reason": live.override.reason,
        }
        for live in lives
        if live.team_id in tier_teams
    ]
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        out.write(render_text(report))
    return EXIT_OK


def live_rotas(settings: Settings, db_path: Path, at: datetime) -> tuple[Rotas, list[LiveOverride]]:
    """The rotas with the live overrides stored in ``db_path`` (those in force at ``at`` that
    still fit the rotas, as the engine applies them); unchanged if there is no database."""
    stored = live_in_force(db_path, at.timestamp())
    good, _ = usable(settings.rotas, stored, at)
    return with_live_overrides(settings.rotas, good), good


def oncall_report(
    plan: HuntPlan, teams: list[TeamOnCall], at: datetime, *, line_open: bool
) -> dict[str, Any]:
    """The plan and its reasons as plain data: what ``--json`` prints and the text is made of."""
    policy = plan.policy
    return {
        "area": plan.area,
        "specialty": plan.specialty,
        "at": at.isoformat(),
        "timezone": str(at.tzinfo),
        "bank_holiday": bank_holiday_name(at.date()),
        "line_open": line_open,
        "strategy": policy.strategy.value,
        "ring_seconds": policy.ring_seconds,
        "loops": policy.loops,
        "max_wait_seconds": policy.max_wait_seconds,
        "require_accept": policy.require_accept,
        "tiers": [
            {
                "tier": number,
                "name": tier.name,
                "team": tier.team,
                "members": [
                    {"member_id": c.member_id, "name": c.name, "uri": c.uri, "why": c.why}
                    for c in tier.members
                ],
                "layers": [
                    {"name": layer.name, "applies": layer.applies, "note": layer.note}
                    for layer in team.layers
                ],
                "overrides": list(team.overrides),
            }
            for number, (tier, team) in enumerate(zip(plan.tiers, teams, strict=True), start=1)
        ],
    }


def render_text(report: dict[str, Any]) -> str:
    at = datetime.fromisoformat(report["at"]).astimezone(ZoneInfo(report["timezone"]))
    holiday = f", bank holiday: {report['bank_holiday']}" if report["bank_holiday"] else ""
    lines = [
        f"{report['specialty']} in {report['area']} at {at:%a %Y-%m-%d %H:%M %Z} "
        f"({report['timezone']}{holiday})",
        f"line {'open' if report['line_open'] else 'CLOSED'} at this time; "
        f"strategy {report['strategy']}, ring {report['ring_seconds']:g} s each, "
        f"{report['loops']} loop(s), give up after {report['max_wait_seconds']:g} s"
        + (", accept key required" if report["require_accept"] else ""),
    ]
    for tier in report["tiers"]:
        lines.append(f"tier {tier['tier']}: {tier['name']} (team {tier['team']})")
        if not tier["members"]:
            lines.append("  nobody on call")
        for number, member in enumerate(tier["members"], start=1):
            lines.append(
                f"  {number}. {member['name']} [{member['member_id']}] {member['uri']}"
                f"  <- {member['why']}"
            )
        for layer in tier["layers"]:
            state = "applies" if layer["applies"] else "off"
            lines.append(f"     layer {layer['name']}: {state}, {layer['note']}")
        lines += [f"     {note}" for note in tier["overrides"]]
    for live in report.get("live_overrides", []):
        by = f" by {live['by']}" if live["by"] else ""
        lines.append(
            f"live override {live['override_id']}{by}: {live['member']} in {live['team']}"
            f" {live['from']} to {live['to']}"
        )
    empty = all(not tier["members"] for tier in report["tiers"])
    if empty:
        lines.append("nobody is on call in any tier")
    return "\n".join(lines) + "\n"
