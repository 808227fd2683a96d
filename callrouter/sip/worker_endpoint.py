"""Creating and destroying the one pjsua2 Endpoint of a worker process.

Everything here runs on the pj thread. The settings follow DESIGN §4: one owning thread
(threadCnt 0, mainThreadOnly, and no media thread either: RTP shares the SIP ioqueue), 8 kHz
bridge, null sound device (its clock stopped while idle), bound *and* public address on the SIP
transport and on the account's media transport, G.711 only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from callrouter.sip import protocol as p
from callrouter.sip.worker_config import WorkerConfig
from callrouter.sip.worker_ipc import Outbox
from callrouter.sip.worker_native import max_calls

# Codecs we offer and accept, best first. Everything else is disabled: G.711 is what the
# trunks speak, keeps the bridge at 8 kHz and the SDP short.
_CODECS = ("PCMU/8000/1", "PCMA/8000/1")


class PjLogWriter(pj.LogWriter):  # type: ignore[misc]  # pjsua2 ships no type hints
    """Routes pjsip's log into the IPC as ``Log`` events (may run on any pj thread)."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def write(self, entry: Any) -> None:
        with contextlib.suppress(Exception):  # a log line must never break pjsip
            self._outbox.send(p.Log(level=int(entry.level), message=str(entry.msg).rstrip()))


class WorkerEndpoint(pj.Endpoint):  # type: ignore[misc]
    """The Endpoint, reporting INVITEs that pjsua refused by itself (no call slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_refused: Callable[[Any], None] | None = None

    def onRejectedIncomingCall(self, prm: Any) -> None:
        if self.on_refused is not None:
            self.on_refused(prm)


class WorkerAccount(pj.Account):  # type: ignore[misc]
    """The one local account; hands every new INVITE to ``on_incoming``."""

    def __init__(self) -> None:
        super().__init__()
        self.on_incoming: Callable[[Any], None] | None = None

    def onIncomingCall(self, prm: Any) -> None:
        if self.on_incoming is not None:
            self.on_incoming(prm)


@dataclass
class Stack:
    """The live pjsua2 objects of the process; ``close`` tears them down in order."""

    endpoint: WorkerEndpoint
    account: WorkerAccount
    log_writer: PjLogWriter
    slots: int

    def close(self) -> None:
        """Shut the account and destroy the library without waiting for replies."""
        with contextlib.suppress(pj.Error):
            self.account.shutdown()
        self.endpoint.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)


def start_stack(config: WorkerConfig, outbox: Outbox) -> Stack:
    """Create, configure and start the Endpoint, its UDP transport and the account."""
    ep = WorkerEndpoint()
    ep.libCreate()
    try:
        return _configure(ep, config, outbox)
    except pj.Error:
        # Fast teardown here: otherwise the Endpoint's destructor runs the slow (1 s) libDestroy.
        ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        raise


def _configure(ep: WorkerEndpoint, config: WorkerConfig, outbox: Outbox) -> Stack:
    ep_cfg = pj.EpConfig()
    ep_cfg.uaConfig.threadCnt = 0
    ep_cfg.uaConfig.mainThreadOnly = True
    ep_cfg.uaConfig.maxCalls = config.max_calls
    ep_cfg.uaConfig.userAgent = "callrouter-worker"
    writer = PjLogWriter(outbox)
    ep_cfg.logConfig.writer = writer
    ep_cfg.logConfig.level = config.log_level
    ep_cfg.logConfig.consoleLevel = config.log_level  # the writer only sees lines at or below this
    ep_cfg.logConfig.msgLogging = 1 if config.sip_trace else 0
    ep_cfg.logConfig.decor = 0
    med = ep_cfg.medConfig
    med.clockRate = 8000
    med.sndClockRate = 8000
    med.noVad = True  # keep RTP flowing in silence: the far side's media timeout relies on it
    med.ecTailLen = 0  # no echo canceller: no sound card, G.711 trunks
    # RTP on the SIP ioqueue, polled by this (the pj) thread: an RFC 4733 digit is decoded in
    # the poll that received it, so its callback runs at once instead of waiting, queued by a
    # media thread, for the poll to time out. That lets the idle poll be long (see worker.py).
    med.hasIoqueue = False
    med.threadCnt = 0
    ep.libInit(ep_cfg)

    tp_cfg = pj.TransportConfig()
    tp_cfg.port = config.listen_port
    tp_cfg.boundAddress = config.listen_host
    tp_cfg.publicAddress = config.public_host
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tp_cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    _idle_clock(ep)
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 0)
    for rank, codec in enumerate(_CODECS):
        ep.codecSetPriority(codec, 255 - rank)

    acc_cfg = pj.AccountConfig()
    acc_cfg.idUri = f"sip:{config.user}@{_uri_host(config.public_host)}:{config.listen_port}"
    if config.outbound_proxy is not None:  # behind a local edge: our INVITEs leave through it
        acc_cfg.sipConfig.proxies.append(config.outbound_proxy)
    media_tp = acc_cfg.mediaConfig.transportConfig
    media_tp.port = config.rtp_port_min
    # RTP on even ports from the start, RTCP on the next: both stay inside [min, max].
    media_tp.portRange = max(config.rtp_port_max - config.rtp_port_min - 1, 0)
    media_tp.boundAddress = config.media_bind
    media_tp.publicAddress = config.media_public
    acc = WorkerAccount()
    acc.create(acc_cfg, True)
    return Stack(endpoint=ep, account=acc, log_writer=writer, slots=_real_call_cap(config))


def _idle_clock(ep: WorkerEndpoint) -> None:
    """Let the null sound device's clock stop while there is no call.

    Its thread ticks the conference bridge 50 times a second (a third of an idle worker's CPU).
    pjsua closes an idle device ``sndAutoCloseTime`` (1 s) after a bridge disconnect finds no
    call, and reopens it on the next connect, but only a disconnect starts that check: so
    disconnect the bridge's own port from itself (never connected; pjsua may say so).
    """
    manager = ep.audDevManager()
    with contextlib.suppress(pj.Error):
        manager.getCaptureDevMedia().stopTransmit(manager.getPlaybackDevMedia())


def _real_call_cap(config: WorkerConfig) -> int:
    """How many calls pjsua really allows: libInit caps ``maxCalls`` to PJSUA_MAX_CALLS silently.

    If the build hides the getter, assume the smallest cap any upstream build has (4).
    """
    return min(max_calls(fallback=min(config.max_calls, 4)), config.max_calls)


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
