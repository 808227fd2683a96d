"""Settings of one SIP worker process, and its command line both ways.

The pool builds the argv from a ``WorkerConfig``; the worker parses it back. No pjsua2 here.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Where one worker listens and how it behaves."""

    worker_id: str
    listen_host: str
    listen_port: int
    public_host: str
    rtp_port_min: int
    rtp_port_max: int
    media_timeout: float = 30.0  # seconds without RTP on an answered leg; 0 turns it off
    log_level: int = 1  # pjsip log level routed to the engine as Log events (1 = errors)
    sip_trace: bool = False  # dump whole SIP messages into the log (needs log_level >= 4)
    max_calls: int = 1000  # asked of pjsua; the build's PJSUA_MAX_CALLS caps it silently
    user: str = "callrouter"  # user part of our own SIP URI
    media_host: str | None = None  # address RTP binds; None = listen_host
    media_public_host: str | None = None  # address written into SDP; None = public_host
    # Networks that may start calls (or any request outside a dialog); () lets anyone in.
    # Others get 403 from the worker's gate before pjsua sees them (see worker_gate).
    allow: tuple[str, ...] = ()
    poll_ms: int = 100  # longest idle wait of the pj thread; work that arrives wakes it at once
    # Behind a local edge: every request we start (a consultant's INVITE, its CANCEL) goes to
    # this loose-routing SIP URI, the edge's socket on worker_host; None: straight to the peer.
    outbound_proxy: str | None = None
    # The request gate (worker_gate) ahead of pjsua; off only to diagnose it or a build it
    # cannot measure, and then the allow-list is still kept, by a 403 before any ringing.
    gate: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.listen_port < 65536:
            raise ValueError(f"listen port {self.listen_port} out of range")
        if not 0 < self.rtp_port_min <= self.rtp_port_max < 65536:
            raise ValueError(f"bad RTP port range {self.rtp_port_min}-{self.rtp_port_max}")
        if self.media_timeout < 0:
            raise ValueError("media_timeout must be >= 0")
        if not 1 <= self.poll_ms <= 600_000:
            raise ValueError(f"poll_ms {self.poll_ms} out of range 1-600000")
        for network in self.allow:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        if self.outbound_proxy is not None and not self.outbound_proxy.startswith("sip:"):
            raise ValueError(f"outbound proxy {self.outbound_proxy!r} is not a sip: URI")

    def allows(self, address: str) -> bool:
        """True when ``address`` may start a call here (everyone, if ``allow`` is empty)."""
        if not self.allow:
            return True
        try:
            peer = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(peer in network for network in _networks(self.allow))

    def argv(self) -> list[str]:
        """Arguments for ``python -m callrouter.sip.worker``."""
        args = [
            "--worker-id",
            self.worker_id,
            "--listen",
            f"{self.listen_host}:{self.listen_port}",
            "--public",
            self.public_host,
            "--rtp-port-min",
            str(self.rtp_port_min),
            "--rtp-port-max",
            str(self.rtp_port_max),
            "--media-timeout",
            str(self.media_timeout),
            "--log-level",
            str(self.log_level),
            "--max-calls",
            str(self.max_calls),
            "--user",
            self.user,
            "--poll-ms",
            str(self.poll_ms),
        ]
        if self.sip_trace:
            args.append("--sip-trace")
        if self.media_host is not None:
            args += ["--media", self.media_host]
        if self.media_public_host is not None:
            args += ["--media-public", self.media_public_host]
        for network in self.allow:
            args += ["--allow", network]
        if self.outbound_proxy is not None:
            args += ["--outbound-proxy", self.outbound_proxy]
        if not self.gate:
            args.append("--no-gate")
        return args

    @property
    def media_bind(self) -> str:
        return self.listen_host if self.media_host is None else self.media_host

    @property
    def media_public(self) -> str:
        return self.public_host if self.media_public_host is None else self.media_public_host

    def with_worker_id(self, worker_id: str) -> WorkerConfig:
        """A copy under another id (the pool renames a worker on each restart)."""
        return dataclasses.replace(self, worker_id=worker_id)


@functools.cache
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in allow)


def parse_argv(argv: list[str] | None = None) -> WorkerConfig:
    """Parse the worker's command line (exits with usage on error, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="python -m callrouter.sip.worker",
        description="SIP worker: owns one pjsua2 endpoint; JSON-line commands on stdin, "
        "events on stdout.",
    )
    parser.add_argument("--worker-id", default="w0")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument(
        "--public", required=True, metavar="HOST", help="address put in SDP/Contact"
    )
    parser.add_argument("--rtp-port-min", type=int, required=True)
    parser.add_argument("--rtp-port-max", type=int, required=True)
    parser.add_argument("--media-timeout", type=float, default=30.0)
    parser.add_argument("--log-level", type=int, default=1)
    parser.add_argument("--sip-trace", action="store_true")
    parser.add_argument("--max-calls", type=int, default=1000)
    parser.add_argument("--user", default="callrouter")
    parser.add_argument("--poll-ms", type=int, default=100, help="longest idle poll of pjsua")
    parser.add_argument("--media", metavar="HOST", help="address RTP binds (default: --listen's)")
    parser.add_argument("--media-public", metavar="HOST", help="address in SDP (default --public)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NETWORK",
        help="a network that may start calls (repeat; none: anyone)",
    )
    parser.add_argument(
        "--outbound-proxy",
        metavar="URI",
        help="loose-routing proxy for the requests we start (the edge), e.g. sip:127.0.0.1:5060;lr",
    )
    parser.add_argument(
        "--no-gate", action="store_true", help="leave every request to pjsua (diagnosis only)"
    )
    ns = parser.parse_args(argv)
    host, sep, port = str(ns.listen).rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--listen needs HOST:PORT, got {ns.listen!r}")
    try:
        return WorkerConfig(
            worker_id=ns.worker_id,
            listen_host=host.strip("[]"),
            listen_port=int(port),
            public_host=ns.public,
            rtp_port_min=ns.rtp_port_min,
            rtp_port_max=ns.rtp_port_max,
            media_timeout=ns.media_timeout,
            log_level=ns.log_level,
            sip_trace=ns.sip_trace,
            max_calls=ns.max_calls,
            user=ns.user,
            media_host=ns.media,
            media_public_host=ns.media_public,
            allow=tuple(ns.allow),
            poll_ms=ns.poll_ms,
            outbound_proxy=ns.outbound_proxy,
            gate=not ns.no_gate,
        )
    except ValueError as exc:
        parser.error(str(exc))
