"""Ends a dead worker's legs at their far ends, with the datagrams the worker wrote for them
while alive (``Teardown``, see ``worker_teardown``): a BYE to each answered peer, a CANCEL (then
the ACK for its 487) to each consultant still ringing.

UDP, fire and forget: each first message goes out at once and again after 1 s (by then the
peer has finished with the first copy: a retransmitted CANCEL arriving while its 487 is still
unacknowledged confuses some peers), the ACK for a 487 at 0.3 s and 1 s; answers go to the
worker's port and are not awaited (the peer answers 200 or 481, either means it knows). Runs
on a thread; a peer that cannot be resolved or reached is logged and passed over. Behind the
edge, ``inbound=False``: the edge ends the callers' legs itself (its dialogs), so only the legs
the worker placed are sent here, and they go to the edge as the worker's own requests did (the
BYE by the dialog's route set, the CANCEL to the outbound proxy), which relays them to the
consultant: the edge lets a CANCEL and a request in a dialog it keeps through from any source.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Sequence

import structlog

from callrouter.sip import protocol as p

log = structlog.get_logger("callrouter.sip.reaper")

# (seconds after the start, which of a teardown's messages go out then)
ROUNDS: tuple[tuple[float, tuple[int, ...]], ...] = ((0.0, (0,)), (0.3, (1,)), (1.0, (0, 1)))


def send_teardowns(
    teardowns: Sequence[p.Teardown], *, rounds: tuple[tuple[float, tuple[int, ...]], ...] = ROUNDS
) -> int:
    """Send every teardown's datagrams on the schedule (blocking); returns how many went out."""
    targets: list[tuple[p.Teardown, int, tuple[str, int]]] = []
    for teardown in teardowns:
        try:
            found = socket.getaddrinfo(teardown.host, teardown.port, type=socket.SOCK_DGRAM)[0]
        except (OSError, IndexError) as error:
            log.warning("reap_unresolved", leg=teardown.leg, host=teardown.host, error=str(error))
            continue
        family, address = int(found[0]), found[4]
        targets.append((teardown, family, (str(address[0]), int(address[1]))))
    sent = 0
    start = time.monotonic()
    sockets: dict[int, socket.socket] = {}
    try:
        for at, indexes in rounds:
            time.sleep(max(start + at - time.monotonic(), 0.0))
            for teardown, family, address in targets:
                sock = sockets.get(family)
                if sock is None:
                    sock = sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
                for index in indexes:
                    if index < len(teardown.messages):
                        with contextlib.suppress(OSError):
                            sock.sendto(teardown.messages[index].encode(), address)
                            sent += 1
    finally:
        for sock in sockets.values():
            sock.close()
    return sent


class Reaper:
    """The pool's ``reaper``: sends a dead worker's teardowns on a thread, logs what it did."""

    def __init__(self, *, inbound: bool = True) -> None:
        self._inbound = inbound
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, teardowns: Sequence[p.Teardown]) -> None:
        chosen = [t for t in teardowns if self._inbound or not t.inbound]
        if not chosen:
            return
        task = asyncio.get_running_loop().create_task(self._reap(chosen), name="reaper")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reap(self, teardowns: list[p.Teardown]) -> None:
        kinds = sorted({t.messages[0].split(" ", 1)[0] for t in teardowns if t.messages})
        log.warning("reaping_lost_legs", legs=[t.leg for t in teardowns], requests=kinds)
        sent = await asyncio.to_thread(send_teardowns, teardowns)
        log.info("reaped_lost_legs", legs=len(teardowns), datagrams=sent)

    async def aclose(self) -> None:
        """Let teardowns under way finish (they take about a second)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
