"""A throwaway configuration tree for one end-to-end test: config.yaml, one dialplan, one rota.

The line is always open (no service-hours windows, bank holidays ignored), so tests do not depend
on the time of day. Each rota member sits in a layer of its own, so the ring order is exactly the
order given here whatever the date; their URIs point at the test's own sipp consultants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from callrouter.adapters.sealing import SealingKey
from callrouter.settings.loader import Settings, load_settings

AREA = "testarea"
SPECIALTY = "cardiology"
SPECIALTY_NAME = "Cardiology"
NUMBER = "02080009999"  # the advice line the GPs dial
UNKNOWN_NUMBER = "02080001234"  # no dialplan answers this one
GP_NUMBER = "01234567890"  # the From user of every GP scenario (tests/sip and tests/e2e)
PRACTICE = "Test Surgery"
MQTT_PREFIX = "e2e"
NOTICE = "This call is recorded."
LOCAL_TEAM = "test-local-cardiology"
NCN_TEAM = "test-ncn-cardiology"


@dataclass(frozen=True, slots=True)
class Member:
    """A consultant on the rota: rung at sip:<id>@<host>:<port>, in ``tier`` (local or ncn)."""

    id: str
    port: int
    tier: str = "local"
    host: str = "127.0.0.1"  # another address for an engine in a network namespace

    @property
    def uri(self) -> str:
        return f"sip:{self.id}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TreeSpec:
    """What varies between tests; everything else is fixed and short."""

    members: tuple[Member, ...]
    strategy: str = "linear"
    ring_seconds: float = 5.0  # the minimum the loader allows
    confirm_seconds: float = 3.0  # the minimum the loader allows
    loops: int = 1
    max_wait_seconds: float = 120.0
    trunk_allow: tuple[str, ...] = ("127.0.0.0/8",)
    max_concurrent_calls: int = 30
    media_timeout_seconds: float = 600.0  # sipp sends no RTP besides its digits
    extra_ivr: dict[str, float] = field(default_factory=dict)
    mqtt_port: int | None = None  # a broker on 127.0.0.1 to talk to; None = no bus
    record: bool = False  # record bridged calls (sealed under <tree>/var/recordings)
    nhs_number: str = "off"  # the dialplan's NHS-number capture: off, optional or required
    live_cover: bool = False  # take rota overrides from <prefix>/commands/override
    workers: int = 1  # SIP worker processes, on ports sip, sip + 1, ...
    edge: bool = False  # a Kamailio edge on Ports.edge in front of the workers
    edge_pike_requests: int = 200  # requests per 2 s one source may send the edge
    edge_retry_after: int = 30  # Retry-After on the edge's own 503
    log_level: str = "INFO"
    sip_dumps: bool = False  # workers log every SIP message they receive (needs DEBUG)


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports one engine instance binds."""

    sip: int
    rtp_min: int
    rtp_max: int
    metrics: int
    health: int
    edge: int = 0  # the edge's SIP port (only used when TreeSpec.edge)


def write_tree(root: Path, spec: TreeSpec, ports: Ports, prompt_cache: Path) -> Settings:
    """Write the tree under ``root`` and load it with the real loader (a bad tree fails here)."""
    (root / "dialplans").mkdir(parents=True)
    (root / "rotas").mkdir()
    config = {
        "sip": {
            "listen_host": "127.0.0.1",
            "listen_port": ports.sip,
            "rtp_port_min": ports.rtp_min,
            "rtp_port_max": ports.rtp_max,
            "trunk_allow": list(spec.trunk_allow),
            "media_timeout_seconds": spec.media_timeout_seconds,
            "workers": spec.workers,
        },
        "limits": {"max_concurrent_calls": spec.max_concurrent_calls, "max_call_seconds": 600},
        "metrics": {"listen_host": "127.0.0.1", "listen_port": ports.metrics},
        "database": {"path": "var/callrouter.sqlite3"},
        "paths": {"dialplans": "dialplans", "rotas": "rotas", "prompt_cache": str(prompt_cache)},
        "timezone": "Europe/London",
        "logging": {"level": spec.log_level, "sip_message_dumps": spec.sip_dumps},
        "specialties": {SPECIALTY: SPECIALTY_NAME},
    }
    # Every tree has a sealing key (NHS numbers need one); recording is on only when asked.
    key_file = root / "var" / "sealing.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(SealingKey.generate().text() + "\n", encoding="ascii")
    config["security"] = {"key_file": str(key_file)}
    if spec.record:
        config["recording"] = {"enabled": True, "directory": "var/recordings", "notice": NOTICE}
    if spec.edge:
        config["edge"] = {
            "enabled": True,
            "listen_port": ports.edge,
            "run_dir": "var/edge",
            "pike_requests": spec.edge_pike_requests,
            "retry_after_seconds": spec.edge_retry_after,
        }
    if spec.mqtt_port is not None:
        config["mqtt"] = {
            "host": "127.0.0.1",
            "port": spec.mqtt_port,
            "topic_prefix": MQTT_PREFIX,
            "client_id": "e2e-node",
            "keepalive_seconds": 5,
        }
        if spec.live_cover:
            config["mqtt"]["live_cover"] = True
    dialplan = {
        "area": AREA,
        "name": "Test advice line",
        "numbers": [NUMBER],
        "prompts": {"greeting": "Welcome to the test advice line."},
        "ivr": {"first_digit_seconds": 6, "inter_digit_seconds": 3, "max_attempts": 3}
        | spec.extra_ivr,
        "nhs_number": spec.nhs_number,
        "hours": {"windows": [], "closed_on_bank_holidays": False},
        "unknown_callers": "allow",
        "practices": [{"id": "test-surgery", "name": PRACTICE, "numbers": [GP_NUMBER]}],
        "menu": {"options": [{"digits": "1", "specialty": SPECIALTY}]},
        "specialties": {
            SPECIALTY: {
                "tiers": [LOCAL_TEAM, NCN_TEAM],
                "strategy": spec.strategy,
                "ring_seconds": spec.ring_seconds,
                "loops": spec.loops,
                "max_wait_seconds": spec.max_wait_seconds,
                "require_accept": True,
                "confirm_seconds": spec.confirm_seconds,
            }
        },
    }
    rota = {
        "members": [
            {"id": m.id, "name": f"Dr {m.id}", "uri": m.uri, "specialties": [SPECIALTY]}
            for m in spec.members
        ],
        "teams": [
            _team(LOCAL_TEAM, "local", spec.members, "local"),
            _team(NCN_TEAM, "ncn", spec.members, "ncn"),
        ],
    }
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "dialplans" / f"{AREA}.yaml").write_text(yaml.safe_dump(dialplan, sort_keys=False))
    (root / "rotas" / f"{SPECIALTY}.yaml").write_text(yaml.safe_dump(rota, sort_keys=False))
    return load_settings(config_path)


def _team(team_id: str, kind: str, members: tuple[Member, ...], tier: str) -> dict[str, object]:
    # One always-on layer per member: a one-member rotation never rotates, and layers keep
    # their order, so the ring order is the order of ``members`` on any date.
    layers: list[dict[str, object]] = [
        {
            "name": f"seat-{i + 1}",
            "members": [m.id],
            "rotation": {"start": "2020-01-06 08:00", "turn": "weekly"},
        }
        for i, m in enumerate(m for m in members if m.tier == tier)
    ]
    if not layers:  # a team needs a layer: an empty tier gets one whose turns never start
        layers.append(
            {
                "name": "never",
                "members": [members[0].id],
                "rotation": {"start": "2099-01-05 08:00", "turn": "weekly"},
            }
        )
    return {"id": team_id, "specialty": SPECIALTY, "kind": kind, "name": team_id, "layers": layers}
