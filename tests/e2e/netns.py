"""Two engine "hosts" for one test: network namespaces joined by veth pairs to a bridge in the
test's own namespace, on a private /24 that no packet leaves (no route out, no forwarding).

``.1`` is the bridge (where the test's broker, GPs and consultants live); each namespace gets
``.2``, ``.3``, … and its own loopback. Everything is created by ``hosts()`` and torn down when
it ends, processes left inside the namespaces killed first. Needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IP = "/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else "/sbin/ip"


def can_make_namespaces() -> bool:
    return os.geteuid() == 0 and Path(IP).exists()


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace: its name (for ``ip netns exec``) and its address on the bridge."""

    netns: str
    address: str


@dataclass(frozen=True, slots=True)
class Network:
    bridge_address: str  # the test's own address on the bridge
    subnet: str
    hosts: tuple[Host, ...]


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=10)


def _used_subnets() -> str:
    return subprocess.run(
        [IP, "-4", "addr"], check=True, capture_output=True, text=True, timeout=10
    ).stdout


def _kill_inside(netns: str) -> None:
    found = subprocess.run(
        [IP, "netns", "pids", netns], capture_output=True, text=True, timeout=10, check=False
    )
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@contextlib.contextmanager
def hosts(count: int) -> Iterator[Network]:
    """``count`` namespaces on a fresh bridge; everything removed at the end."""
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    used = _used_subnets()
    third = next(n for n in random.sample(range(1, 255), 254) if f"10.213.{n}." not in used)
    subnet = f"10.213.{third}"
    bridge = f"crb{tag}"
    made: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        network = []
        for index in range(count):
            netns, outer, inner = f"cr{tag}n{index}", f"cr{tag}v{index}", "eth0"
            _ip("netns", "add", netns)
            made.append(netns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", netns)
            _ip("link", "set", outer, "master", bridge, "up")
            address = f"{subnet}.{index + 2}"
            _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inner)
            _ip("-n", netns, "link", "set", inner, "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            network.append(Host(netns, address))
        yield Network(f"{subnet}.1", f"{subnet}.0/24", tuple(network))
    finally:
        for netns in made:
            _kill_inside(netns)
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", netns)  # its end of the veth goes, and so the pair
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", bridge)
