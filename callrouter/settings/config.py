"""The model of ``config.yaml``: how this node listens, stores, reports, and the specialty
catalogue the whole service shares.

Relative paths are resolved against the config file's directory when the loader passes
``context={"base_dir": ...}``; without it (a model built in a test) they stay as written.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    Field,
    IPvAnyNetwork,
    PlainValidator,
    ValidationInfo,
    field_validator,
)
from pydantic import model_validator as model_check

from callrouter import worker_plan
from callrouter.settings.base import Frozen, known_zone, usable_path
from callrouter.settings.dialplan import Slug
from callrouter.settings.errors import FieldError

Port = Annotated[int, Field(ge=1, le=65535)]
DisplayName = Annotated[str, Field(min_length=1, max_length=80)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# Eight years: the medico-legal minimum for adult clinical records in England.
RETENTION_DAYS = 2922


def _ip_address(value: str) -> str:
    ipaddress.ip_address(value)  # ValueError names the bad value
    return value


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    try:
        return usable_path((Path(base) / value).resolve())
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise ValueError(f"cannot resolve the path: {error}") from error


def _worker_count(value: object) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    if text.isdigit() and 1 <= int(text) <= worker_plan.MAX_WORKERS:
        return int(text)
    msg = f'must be a whole number 1-{worker_plan.MAX_WORKERS} or "auto", got {value!r}'
    raise ValueError(msg)


IpAddress = Annotated[str, AfterValidator(_ip_address)]
WorkerCount = Annotated[int | Literal["auto"], PlainValidator(_worker_count)]
ConfigPath = Annotated[Path, AfterValidator(usable_path), AfterValidator(_resolve)]


def section() -> Any:
    """A section that may be left out: its defaults are validated too, so paths resolve."""
    return Field(default_factory=dict, validate_default=True)


def resolved(default: str) -> Any:
    return Field(default=Path(default), validate_default=True)


class SipConfig(Frozen):
    listen_host: IpAddress = "127.0.0.1"
    listen_port: Port = 5060
    public_host: str | None = None  # the address written into SDP and Contact; None = listen_host
    rtp_port_min: Port = 40000
    rtp_port_max: Port = 40999
    trunk_allow: Annotated[tuple[IPvAnyNetwork, ...], Field(min_length=1)] = (
        ipaddress.ip_network("127.0.0.0/8"),
    )
    # SIP worker processes (worker i on listen_port + i), or "auto": sized from the machine
    workers: WorkerCount = 1
    # more workers on demand, up to this many in all, so one idle worker's worth of slots is
    # always free (a warm spare); None: exactly `workers`, no growth
    max_workers: WorkerCount | None = None
    # an extra worker (beyond `workers`) that held no call this long stops, unless it is the spare
    spare_idle_seconds: Annotated[float, Field(ge=5, le=86400)] = 300.0
    media_timeout_seconds: Annotated[float, Field(ge=5, le=600)] = 30.0

    @model_check(mode="after")
    def _rtp_range(self) -> Self:
        if self.rtp_port_min >= self.rtp_port_max:
            raise FieldError("must be above rtp_port_min", "rtp_port_max")
        if self.rtp_port_min <= self.listen_port <= self.rtp_port_max:
            raise FieldError("falls inside the RTP port range", "listen_port")
        count = worker_plan.worker_count(self)
        self._check_plan(count, "workers")
        if self.max_workers is not None:
            most = worker_plan.max_worker_count(self)
            if most < count:
                msg = f"is below workers ({count}): it counts every worker, the first included"
                raise FieldError(msg, "max_workers")
            self._check_plan(most, "max_workers")
        return self

    def _check_plan(self, count: int, field: str) -> None:
        """``count`` workers' SIP ports and RTP slices fit (else a FieldError at ``field``)."""
        try:
            ports = worker_plan.sip_ports(self.listen_port, count)
        except ValueError as error:
            raise FieldError(str(error), field) from None
        if self.rtp_port_min <= ports[-1] and ports[0] <= self.rtp_port_max:
            msg = f"workers' SIP ports {ports[0]}-{ports[-1]} overlap the RTP port range"
            raise FieldError(msg, field)
        try:
            worker_plan.rtp_slices(self.rtp_port_min, self.rtp_port_max, count)
        except ValueError as error:
            raise FieldError(str(error), field) from None

    def trunk_allows(self, address: str) -> bool:
        """True when a SIP peer at ``address`` may send us calls."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.trunk_allow)

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.listen_host


def _loopback(value: str) -> str:
    if not ipaddress.ip_address(value).is_loopback:
        raise ValueError(f"{value} is not a loopback address: workers behind an edge stay local")
    return value


def _reachable(value: str) -> str:
    address = ipaddress.ip_address(value)
    if address.is_loopback or address.is_unspecified:
        raise ValueError(f"{value} is not an address another host can reach")
    return value


class RemoteWorkers(Frozen):
    """SIP workers of another engine node, which the edge reaches over the network (that node
    runs with ``edge.remote_edge`` set to this edge's address)."""

    host: Annotated[IpAddress, AfterValidator(_reachable)]
    port: Port  # the first worker's SIP port: that node's sip.listen_port
    count: Annotated[int, Field(ge=1, le=worker_plan.MAX_WORKERS)] = 1  # on port, port + 1...
    max_calls: Annotated[int, Field(ge=1, le=10_000)] = 2  # calls each is given: half its legs

    @model_check(mode="after")
    def _ports_fit(self) -> Self:
        if self.port + self.count - 1 > 65535:  # the highest port number
            raise FieldError(f"{self.count} workers from port {self.port} run past 65535", "count")
        return self

    @property
    def ports(self) -> range:
        return range(self.port, self.port + self.count)


class EdgeConfig(Frozen):
    """The Kamailio SIP edge: the only public SIP socket, in front of the workers (which then
    listen on ``worker_host``, loopback). ``callrouter run`` starts and supervises it."""

    enabled: bool = False
    # true: `callrouter run` starts and supervises Kamailio; false: its own unit runs it
    # (systemd/callrouter-edge.service, config written by `callrouter edge-config`)
    supervise: bool = True
    listen_host: IpAddress = "127.0.0.1"
    listen_port: Port = 5060
    worker_host: Annotated[IpAddress, AfterValidator(_loopback)] = "127.0.0.1"
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)] = 30  # on its 503 when all full
    # pike: a source sending more than pike_requests in pike_seconds is dropped for a while
    pike_requests: Annotated[int, Field(ge=2, le=100_000)] = 30
    pike_seconds: Annotated[int, Field(ge=1, le=60)] = 2
    kamailio: ConfigPath = Path("/usr/sbin/kamailio")
    run_dir: ConfigPath = resolved("var/edge")  # generated kamailio.cfg and its pid/ctl files
    # Workers of other engine nodes this edge also gives calls to (across machines)
    remote_workers: tuple[RemoteWorkers, ...] = ()
    # This node runs no edge: the edge at this address (on another host) lists its workers,
    # which then listen on sip.listen_host and take calls from that address only
    remote_edge: Annotated[IpAddress, AfterValidator(_reachable)] | None = None

    @model_check(mode="after")
    def _one_role(self) -> Self:
        if self.remote_edge is not None and self.enabled:
            msg = "a node runs the edge (enabled) or sits behind one on another host, not both"
            raise FieldError(msg, "remote_edge")
        if self.remote_workers and not self.enabled:
            raise FieldError("only an edge this node runs (enabled: true) has workers to list",
                             "remote_workers")  # fmt: skip
        seen: dict[tuple[str, int], int] = {}
        here = ipaddress.ip_address(self.listen_host)
        for index, group in enumerate(self.remote_workers):
            if ipaddress.ip_address(group.host) == here:
                msg = "is the edge's own address: this host's workers come from sip.workers"
                raise FieldError(msg, "remote_workers", index, "host")
            host = str(ipaddress.ip_address(group.host))
            for port in group.ports:
                if (host, port) in seen:
                    msg = f"{host}:{port} is listed already (remote_workers[{seen[host, port]}])"
                    raise FieldError(msg, "remote_workers", index)
                seen[host, port] = index
        return self


class LimitsConfig(Frozen):
    max_concurrent_calls: Annotated[int, Field(ge=1, le=10_000)] = 30
    max_call_seconds: Annotated[float, Field(ge=60, le=86_400)] = 3600.0


class MetricsConfig(Frozen):
    listen_host: IpAddress = "127.0.0.1"
    listen_port: Port = 9464


class DatabaseConfig(Frozen):
    path: ConfigPath = resolved("var/callrouter.sqlite3")
    retention_days: Annotated[int, Field(ge=1, le=36_500)] = RETENTION_DAYS
    # Records the database cannot take (disk full...) wait in <spool_dir>/<db file name>.spool;
    # None = next to the database. spool_reserve_mib is preallocated at start-up.
    spool_dir: ConfigPath | None = None
    spool_max_events: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    spool_reserve_mib: Annotated[int, Field(ge=0, le=65_536)] = 32


class MqttConfig(Frozen):
    host: Annotated[str, Field(min_length=1)]
    port: Port = 1883
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "callrouter"
    )
    # Also the node id in topics, so no MQTT wildcards or separators.
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "callrouter"
    username: str | None = None
    password: str | None = None
    keepalive_seconds: Annotated[int, Field(ge=5, le=3600)] = 30
    # Take live rota overrides from <prefix>/commands/override (off unless asked for: whoever
    # may publish there changes who is rung, so the broker's ACLs must restrict it first).
    live_cover: bool = False
    # Share which consultants this node is ringing or talking to with the other engine nodes on
    # the bus (each node needs its own client_id), and skip those they claim. A claim not
    # refreshed for busy_ttl_seconds (a node cut off from the bus) stops counting.
    share_busy: bool = True
    busy_ttl_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0

    @model_check(mode="after")
    def _password_needs_user(self) -> Self:
        if self.password is not None and self.username is None:
            raise FieldError("a password needs a username", "password")
        return self


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class SecurityConfig(Frozen):
    """Where the key that seals recordings and NHS numbers is: a file or an environment variable
    (never the key itself, so config.yaml can stay world-readable). ``callrouter keygen PATH``
    makes a key file."""

    key_file: ConfigPath | None = None
    key_env: EnvName | None = None

    @model_check(mode="after")
    def _one_source(self) -> Self:
        if self.key_file is not None and self.key_env is not None:
            raise FieldError("give key_file or key_env, not both", "key_env")
        return self

    @property
    def has_key(self) -> bool:
        return self.key_file is not None or self.key_env is not None


class RecordingConfig(Frozen):
    """Medico-legal recording of every bridged conversation, sealed at rest."""

    enabled: bool = True
    directory: ConfigPath = resolved("var/recordings")
    retention_days: Annotated[int, Field(ge=1, le=36_500)] = RETENTION_DAYS
    # Said to the GP before the hold music and to the consultant before the accept keys.
    notice: Annotated[str, Field(min_length=1, max_length=300)] = (
        "This call will be recorded for clinical safety."
    )


class PathsConfig(Frozen):
    dialplans: ConfigPath = resolved("dialplans")
    rotas: ConfigPath = resolved("rotas")
    prompt_cache: ConfigPath = resolved("var/prompts")


class LoggingConfig(Frozen):
    level: LogLevel = "INFO"
    sip_message_dumps: bool = False  # full SIP messages in the log: numbers unmasked in headers

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Config(Frozen):
    sip: SipConfig = section()
    edge: EdgeConfig = section()
    limits: LimitsConfig = section()
    metrics: MetricsConfig = section()
    database: DatabaseConfig = section()
    mqtt: MqttConfig | None = None  # absent = no MQTT bus
    security: SecurityConfig = section()
    recording: RecordingConfig | None = None  # absent = calls are not recorded
    paths: PathsConfig = section()
    timezone: str = "Europe/London"
    logging: LoggingConfig = section()
    specialties: Annotated[dict[Slug, DisplayName], Field(min_length=1)]

    @model_check(mode="before")
    @classmethod
    def _empty_sections(cls, data: object) -> object:
        """``sip:`` with every key commented out is an empty section, not an error (an empty
        ``mqtt:`` stays None: off)."""
        if not isinstance(data, dict):
            return data
        sections = {"sip", "edge", "limits", "metrics", "database", "paths", "logging", "security"}
        return {k: {} if v is None and k in sections else v for k, v in data.items()}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @model_check(mode="after")
    def _recording_needs_a_key(self) -> Self:
        if self.recording is not None and self.recording.enabled and not self.security.has_key:
            msg = "recording needs a key to seal the files: set security.key_file or key_env"
            raise FieldError(msg, "recording", "enabled")
        return self

    @model_check(mode="after")
    def _ports_distinct(self) -> Self:
        same_host = self.metrics.listen_host == self.sip.listen_host
        if same_host and self.metrics.listen_port == self.sip.listen_port:
            raise FieldError("is the SIP port too", "metrics", "listen_port")
        if worker_plan.grows(self.sip) and not self.edge.enabled:
            msg = "above `workers` needs the edge (callers reach the extra workers through it)"
            raise FieldError(msg, "sip", "max_workers")
        if self.edge.enabled:
            count = worker_plan.max_worker_count(self.sip)
            workers = range(self.sip.listen_port, self.sip.listen_port + count)
            rtp = range(self.sip.rtp_port_min, self.sip.rtp_port_max + 1)
            port = self.edge.listen_port
            if port in workers:
                msg = f"is a worker's SIP port too (workers use {workers[0]}-{workers[-1]})"
                raise FieldError(msg, "edge", "listen_port")
            if port in rtp:
                raise FieldError("falls inside the RTP port range", "edge", "listen_port")
        if self.edge.remote_edge is not None:
            try:
                _reachable(self.sip.listen_host)
            except ValueError:
                msg = "the edge on another host cannot reach workers here: use this host's address"
                raise FieldError(msg, "sip", "listen_host") from None
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def specialty_name(self, slug: str) -> str:
        """The display name of a specialty ("mental-health" → "Mental health")."""
        return self.specialties.get(slug, slug.replace("-", " ").capitalize())
