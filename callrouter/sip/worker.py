"""The SIP worker process: one pjsua2 Endpoint, JSON-line commands in, events out.

    python -m callrouter.sip.worker --listen 127.0.0.1:5070 --public 127.0.0.1 \\
        --rtp-port-min 20000 --rtp-port-max 20099 [--media-timeout 30] [--log-level 1] \\
        [--worker-id w0] [--sip-trace] [--poll-ms 100]

Commands arrive on stdin and events leave on the *original* stdout, one JSON object per line
(``callrouter.sip.protocol``). fd 1 is pointed at stderr before pjsua2 starts, so its banner and
anything else printed can never corrupt the event stream.

The main thread owns pjsua2 and loops ``libHandleEvents``; after each poll it drains the inbox
that the reader thread fills (and wakes it early by a datagram to our own SIP port). When stdin
closes, or on ``Shutdown``/SIGTERM, it hangs up every leg, gives the BYEs/CANCELs a moment to
leave, destroys the library and exits.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from callrouter.sip import protocol as p
from callrouter.sip.worker_config import WorkerConfig, parse_argv
from callrouter.sip.worker_ipc import Inbox, Outbox, PipeClosed, Waker, start_reader
from callrouter.sip.worker_screen import InviteBudget

# How long the pj thread waits when nothing happens is ``WorkerConfig.poll_ms`` (100 ms by
# default): nothing latency-sensitive waits for that timeout. Commands wake the poll (a datagram
# to our SIP port, ``Waker``), SIP and RTP arrive on the sockets it polls (RFC 4733 digits are
# decoded inside the poll: no media thread, see worker_endpoint), pjsip's timers bound the wait,
# and a player's end is posted to the inbox from pjmedia's clock thread, which wakes it too.
# At 10 ms an idle worker cost ~0.7% of a core; see benchmarks/idle_worker.py.
_TICK_SECONDS = 1.0
_GC_EVERY_TICKS = 10
_DRAIN_MAX_SECONDS = 1.5  # how long hangups get to complete at shutdown
# pjsua reports a cancelled leg closed at once, but its 487 still needs our ACK: keep polling
# a little after the last leg is gone so the transactions can finish.
_DRAIN_MIN_SECONDS = 0.3
_GATE_CALIBRATION_SECONDS = 2.0
_CALIBRATION_POLL_MS = 10  # the gate's start-up probe waits on short polls
_GATE_TURNED_OFF = (
    "the request gate is turned off (--no-gate): hostile SIP reaching this worker directly is "
    "screened only by pjsua itself; the allow-list is kept by a 403 before any ringing"
)
_GATE_OFF = (
    "the request gate could not be installed on this pjsua2 build: hostile SIP reaching this "
    "worker directly (not through the edge) is screened only by pjsua itself"
)


def main(argv: list[str] | None = None) -> int:
    """Run one worker until the engine goes away; returns the exit status."""
    ipc_out = os.dup(1)
    os.dup2(2, 1)  # pjsip's banner and any stray print go to stderr, not into the IPC
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    config = parse_argv(argv)
    # Cyclic GC only on this thread (see the loop): a pjsua2 object finalised on another thread
    # would touch pjlib from an unregistered thread and abort the process.
    gc.disable()
    outbox = Outbox(ipc_out)
    try:
        status = _serve(config, outbox)
    finally:
        outbox.close()
    os._exit(status)  # no interpreter teardown: pjsua2 destructors after libDestroy abort


def _install_gate(
    config: WorkerConfig, stack: Any, outbox: Outbox
) -> tuple[object | None, InviteBudget]:
    """The worker's own gate ahead of pjsua (``worker_gate``), logged when it cannot run, and
    the new-call budget it shares with the worker's Dials (both directions use the handles)."""
    from callrouter.sip.worker_gate import Gate  # noqa: PLC0415 - needs pjsua2 loaded

    budget = InviteBudget()
    if not config.gate:
        outbox.send(p.Log(level=1, message=_GATE_TURNED_OFF))
        return None, budget
    gate = Gate(outbox, config.allows, budget=budget)
    if not (
        gate.install()
        and gate.calibrate(
            config.listen_host,
            config.listen_port,
            lambda: stack.endpoint.libHandleEvents(_CALIBRATION_POLL_MS),
            _GATE_CALIBRATION_SECONDS,
        )
    ):
        outbox.send(p.Log(level=1, message=_GATE_OFF))
    return gate, budget


def _announce(config: WorkerConfig, slots: int, free: int, outbox: Outbox) -> None:
    """Tell the pool this worker serves now, and how many slots it has."""
    outbox.send(
        p.Ready(
            worker_id=config.worker_id,
            sip_host=config.listen_host,
            sip_port=config.listen_port,
            slots=slots,
        )
    )
    outbox.send(p.Slots(free=free))


def _serve(config: WorkerConfig, outbox: Outbox) -> int:
    import pjsua2 as pj  # noqa: PLC0415 - imported only after fd 1 is safe

    from callrouter.sip.worker_endpoint import start_stack  # noqa: PLC0415
    from callrouter.sip.worker_legs import LegTable  # noqa: PLC0415

    waker = Waker(config.listen_host, config.listen_port)
    inbox = Inbox(waker)
    try:
        stack = start_stack(config, outbox)
    except pj.Error as exc:
        outbox.send(p.Log(level=1, message=f"worker start failed: {exc.info()}"))
        return 2
    _gate, budget = _install_gate(config, stack, outbox)  # held: pjsip keeps pointers in it
    table = LegTable(config, stack, inbox, outbox, time.monotonic, budget=budget)
    _announce(config, stack.slots, table.free, outbox)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        inbox.put(p.Shutdown())

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C in a terminal reaches the whole process group: the engine drains its calls and
    # then closes this worker itself, so the worker must not leave first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start_reader(0, inbox, outbox)
    # What start-up made lives for the whole process: keep it out of every later collection
    # (a full one over it took ~9 ms; a collection now sees only objects calls made).
    gc.collect()
    gc.freeze()

    ticks = 0
    next_tick = time.monotonic() + _TICK_SECONDS
    running = True
    while running:
        stack.endpoint.libHandleEvents(config.poll_ms)
        for item in inbox.drain():
            if isinstance(item, p.Shutdown | PipeClosed):
                running = False
            else:
                table.handle(item)
        if table.slot_waits:
            table.retry_dials()
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + _TICK_SECONDS
            table.tick(now)
            ticks += 1
            if ticks % _GC_EVERY_TICKS == 0:
                gc.collect()

    had_legs = bool(table.legs)
    table.hangup_all()
    start = time.monotonic()
    while had_legs:
        elapsed = time.monotonic() - start
        if elapsed >= _DRAIN_MAX_SECONDS or (not table.legs and elapsed >= _DRAIN_MIN_SECONDS):
            break
        stack.endpoint.libHandleEvents(20)
        inbox.drain()  # late commands are moot now
    table.drop_all()
    gc.collect()
    stack.close()
    waker.close()
    return 0


if __name__ == "__main__":
    main()
