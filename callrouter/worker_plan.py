"""How many SIP workers to run, and where each one listens: its SIP port and its RTP slice.

Worker ``i`` (``w0``, ``w1``…) listens on ``sip.listen_port + i`` and takes the ``i``-th equal,
even-aligned slice of ``rtp_port_min..rtp_port_max``, so no two workers ever bind one port. The
plan covers ``sip.max_workers`` workers when growth is on: the ones started on demand have their
ports and slices reserved from the start, so the edge's dispatcher list can name them all.

``workers: auto`` sizes the pool from the machine. With the pjsua2 wheels a worker holds 4 call
legs (2 bridged calls) and a bridged pair costs ~0.4% of a core at 8 kHz, so CPU is not what
runs out first: a worker is one Python process with one pjsua2 endpoint (tens of MB), one pj
thread and an idle poll. So ``auto`` is the smallest of: 4 workers per core (keeps the idle poll
cost and the scheduler's run queue small on a shared box), a quarter of the memory available now
at ``AUTO_WORKER_BYTES`` each, and what the RTP range can give ``MIN_RTP_PORTS`` each.

With an edge (``edge.enabled``) the workers' SIP sockets bind ``edge.worker_host`` (loopback)
and only the edge talks to them; their media still binds ``sip.listen_host`` and is advertised
as ``sip.public_host``. Their own requests (a consultant's INVITE, and so its dialog) leave
through the edge too (``outbound_proxy``: the edge's socket on ``worker_host``): a socket bound
to loopback cannot reach a consultant on the network. Behind an edge on another host
(``edge.remote_edge``) they bind ``sip.listen_host`` as without an edge, and the engine takes
calls from that edge only. Pure functions apart from ``machine_worker_count``, which reads the
machine once.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from callrouter.sip.worker_config import WorkerConfig

if TYPE_CHECKING:
    from callrouter.settings.config import Config, SipConfig


class PlanError(ValueError):
    """The workers cannot be laid out on these ports."""


MIN_RTP_PORTS = 8  # 4 legs x (RTP + RTCP): what one worker needs of the RTP range
AUTO_WORKERS_PER_CORE = 4
AUTO_WORKER_BYTES = 64 * 1024 * 1024  # a worker's share of memory when sizing (PSS ~40 MB, idle)
MAX_WORKERS = 256


def auto_worker_count(*, cpus: int, available_bytes: int, rtp_ports: int) -> int:
    """The ``auto`` size of the pool on a machine with these resources (at least 1)."""
    by_cpu = max(cpus, 1) * AUTO_WORKERS_PER_CORE
    by_memory = (available_bytes // 4) // AUTO_WORKER_BYTES
    by_rtp = rtp_ports // MIN_RTP_PORTS
    return max(1, min(by_cpu, by_memory, by_rtp, MAX_WORKERS))


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def machine_worker_count(rtp_ports: int) -> int:
    """``auto`` on this machine: the CPUs this process may use and the memory available now."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return auto_worker_count(
        cpus=cpus or 1, available_bytes=_available_bytes(), rtp_ports=rtp_ports
    )


def worker_count(sip: SipConfig) -> int:
    """The number of workers ``sip.workers`` asks for (``auto`` resolved on this machine)."""
    if sip.workers == "auto":
        return machine_worker_count(sip.rtp_port_max - sip.rtp_port_min + 1)
    return sip.workers


def max_worker_count(sip: SipConfig) -> int:
    """The most workers there may be (``sip.max_workers``; without it, ``sip.workers``)."""
    if sip.max_workers is None:
        return worker_count(sip)
    if sip.max_workers == "auto":
        return max(machine_worker_count(sip.rtp_port_max - sip.rtp_port_min + 1), 1)
    return sip.max_workers


def grows(sip: SipConfig) -> bool:
    """Whether workers beyond ``sip.workers`` may be started on demand."""
    return max_worker_count(sip) > worker_count(sip)


def rtp_slices(low: int, high: int, count: int) -> list[tuple[int, int]]:
    """``count`` disjoint ranges inside ``low..high``, each starting on an even port and
    ``MIN_RTP_PORTS`` long at least; ValueError when the range is too small."""
    start = low + (low % 2)
    size = (high - start + 1) // count
    size -= size % 2
    if count < 1 or size < MIN_RTP_PORTS:
        msg = (
            f"the RTP range {low}-{high} gives each of {count} workers {max(size, 0)} ports;"
            f" a worker needs {MIN_RTP_PORTS}"
        )
        raise PlanError(msg)
    return [(start + i * size, start + (i + 1) * size - 1) for i in range(count)]


def sip_ports(first: int, count: int) -> range:
    """The workers' SIP ports; ValueError past 65535."""
    if first + count - 1 > 65535:  # the highest port number
        raise PlanError(f"{count} workers from port {first} run past port 65535")
    return range(first, first + count)


def plan_workers(
    config: Config, *, first_port: int | None = None, edge_port: int | None = None
) -> list[WorkerConfig]:
    """One ``WorkerConfig`` for each worker there may be (``max_worker_count``: the first
    ``worker_count`` run from the start, the others on demand); ``first_port`` overrides the first
    worker's port, ``edge_port`` the edge's (``edge.listen_port``). PlanError when the ports do
    not fit."""
    sip, edge = config.sip, config.edge
    count = max(max_worker_count(sip), worker_count(sip))
    ports = sip_ports(first_port or sip.listen_port, count)
    slices = rtp_slices(sip.rtp_port_min, sip.rtp_port_max, count)
    clash = set(ports) & set(range(sip.rtp_port_min, sip.rtp_port_max + 1))
    if clash:
        raise PlanError(f"worker SIP port {min(clash)} is inside the RTP port range")
    behind_edge = edge.enabled
    sip_host = edge.worker_host if behind_edge else sip.listen_host
    proxy = outbound_proxy(config, edge_port) if behind_edge else None
    return [
        WorkerConfig(
            worker_id=f"w{i}",
            listen_host=sip_host,
            listen_port=port,
            public_host=sip_host if behind_edge else sip.advertised_host,
            media_host=sip.listen_host,
            media_public_host=sip.advertised_host,
            rtp_port_min=low,
            rtp_port_max=high,
            media_timeout=sip.media_timeout_seconds,
            sip_trace=config.logging.sip_message_dumps,
            log_level=4 if config.logging.sip_message_dumps else 2,
            allow=worker_allow(config),
            outbound_proxy=proxy,
        )
        for i, (port, (low, high)) in enumerate(zip(ports, slices, strict=True))
    ]


def outbound_proxy(config: Config, port: int | None = None) -> str:
    """The edge as a loose-routing outbound proxy, at its socket on ``worker_host``."""
    host = config.edge.worker_host
    where = f"[{host}]" if ":" in host else host
    return f"sip:{where}:{port or config.edge.listen_port};lr"


def worker_port(config: Config, override: int | None) -> int:
    """The first worker's SIP port given ``--sip-port``, which names the port callers dial: the
    edge's when there is one (the workers then take the ports after it), else the first
    worker's."""
    if not override:
        return config.sip.listen_port
    return override + 1 if config.edge.enabled else override


def edge_port(config: Config, override: int | None) -> int:
    """The edge's public SIP port given ``--sip-port``."""
    return override or config.edge.listen_port


def worker_allow(config: Config) -> tuple[str, ...]:
    """The networks a worker lets start calls (its gate answers others 403 before pjsua sees
    them): ``trunk_allow``, and behind an edge the edge's worker-side address too."""
    networks = tuple(str(network) for network in config.sip.trunk_allow)
    if config.edge.enabled:
        networks += (config.edge.worker_host,)
    return networks


def engine_trunk_check(config: Config) -> Callable[[str], bool]:
    """The engine's allow-list: behind an edge (which applies ``trunk_allow`` itself and is the
    only sender the workers see) the edge's worker-side address is allowed too."""
    remote_edge = config.edge.remote_edge
    if remote_edge is not None:  # behind an edge on another host: nobody else may send calls
        edge_address = ipaddress.ip_address(remote_edge)
        return lambda address: _same_address(address, edge_address)
    if not config.edge.enabled:
        return config.sip.trunk_allows
    edge_host = config.edge.worker_host

    def allowed(address: str) -> bool:
        return address == edge_host or config.sip.trunk_allows(address)

    return allowed


def _same_address(address: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(address) == wanted
    except ValueError:
        return False
