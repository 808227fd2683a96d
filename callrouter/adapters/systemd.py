"""systemd's notify protocol (sd_notify(3)), by hand: one datagram to ``$NOTIFY_SOCKET``.

Every function is a no-op returning False when the service was not started by systemd
(``NOTIFY_SOCKET`` unset) or the datagram could not be sent: telling systemd is never worth
crashing the service over. systemd 252 has no ``Type=notify-reload``, so the unit is
``Type=notify`` and the service reports ``RELOADING=1`` … ``READY=1`` itself around a SIGHUP.

With ``NotifyAccess=main`` (the default for Type=notify) only the main process is heard, so SIP
worker processes that inherit ``NOTIFY_SOCKET`` cannot confuse systemd.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

WATCHDOG_FRACTION = 0.5  # ping at half the watchdog interval, as sd_watchdog_enabled(3) advises


def _address(raw: str) -> str | None:
    if raw.startswith("@"):
        return "\0" + raw[1:]  # Linux abstract namespace
    if raw.startswith("/"):
        return raw
    return None  # vsock: and other forms systemd 252 does not use


def notify(message: str) -> bool:
    """Send one notify datagram (newline-separated ``KEY=value`` lines). True if sent."""
    raw = os.environ.get("NOTIFY_SOCKET")
    if not raw:
        return False
    address = _address(raw)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def ready() -> bool:
    """Start-up (or a reload) is complete: systemd marks the unit active."""
    return notify("READY=1")


def reloading() -> bool:
    """A reload has begun; follow with ready() when it is done (or failed and was kept out)."""
    # systemd ≥ 253 matches the timestamp to the reload request; 252 ignores it harmlessly.
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping() -> bool:
    """Shutdown has begun (draining calls): systemd shows the unit as deactivating."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    one_line = " ".join(text.split())  # the protocol is line-based: no newlines inside a value
    return notify(f"STATUS={one_line}")


def watchdog() -> bool:
    """Tell the service manager we are alive (``WatchdogSec=``)."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds if one is set for this process, else None."""
    raw_usec = os.environ.get("WATCHDOG_USEC")
    if raw_usec is None:
        return None
    raw_pid = os.environ.get("WATCHDOG_PID")
    try:
        usec = int(raw_usec)
        if raw_pid is not None and int(raw_pid) != os.getpid():
            return None  # meant for our parent, inherited through exec
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


async def keep_watchdog_fed(alive: Callable[[], bool] = lambda: True) -> None:
    """Ping the watchdog from the event loop until cancelled; returns at once without one.

    Run from the loop, a ping proves the loop is turning; ``alive`` can add a check of its own
    (a ping is skipped while it is False, so systemd restarts a wedged service).
    """
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        if alive():
            watchdog()
        await asyncio.sleep(interval * WATCHDOG_FRACTION)
