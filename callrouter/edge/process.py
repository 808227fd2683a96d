"""Kamailio as a supervised child of ``callrouter run``.

``start`` writes kamailio.cfg and the dispatcher list, has ``kamailio -c`` check them (a config
Kamailio refuses is a start failure, with Kamailio's own words), starts it in the foreground
(``-DD -E``: no daemon, log on stderr) and waits until it answers an OPTIONS on its public
socket. Each line it logs becomes an ``edge`` event in our log at its level. If it exits while
we run, it is started again after a back-off (0.5 s, 1 s, 2 s, 5 s, then every 10 s), and the
exit is logged. ``aclose`` sends SIGTERM, then SIGKILL after a bound. The child also gets
SIGTERM from the kernel if we die (``PR_SET_PDEATHSIG``), so a killed engine leaves no edge
holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import os
import re
import signal
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from callrouter.edge.kamailio_cfg import (
    WORKER_DOWN_HEADER,
    EdgePlan,
    EdgeWorker,
    dispatcher_list,
    render,
)
from callrouter.edge.kamailio_checks import WORKER_STATE_HEADER
from callrouter.settings.config import Config
from callrouter.sip import protocol as p
from callrouter.sip.worker_config import WorkerConfig

log = structlog.get_logger("callrouter.edge")

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
START_TIMEOUT = 10.0
CHECK_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1
_LEVEL = re.compile(r"\b(ALERT|BUG|CRITICAL|ERROR|WARNING|NOTICE|INFO|DEBUG):\s*")
_LEVELS = {"ALERT": "error", "BUG": "error", "CRITICAL": "error", "ERROR": "error"}
_LEVELS |= {"WARNING": "warning", "NOTICE": "info", "INFO": "info", "DEBUG": "debug"}


# The UTF-8 check is a regex over raw bytes: it needs the C locale's byte-wise matching.
_KAMAILIO_ENV = {**os.environ, "LC_ALL": "C"}


class EdgeStartError(RuntimeError):
    """Kamailio refused the generated config, or did not answer in time."""


def plan_edge(
    config: Config, workers: Sequence[WorkerConfig], readies: Sequence[p.Ready], port: int
) -> EdgePlan:
    """The edge in front of these workers. A worker is given at most half its slots in calls:
    every call it takes needs the GP's leg and a consultant's leg in that same worker. Workers
    without a Ready in ``readies`` are standing by (started on demand)."""
    edge = config.edge
    slots = {ready.worker_id: ready.slots for ready in readies}
    return EdgePlan(
        listen_host=edge.listen_host,
        listen_port=port,
        worker_host=edge.worker_host,
        workers=(
            *(
                EdgeWorker(
                    w.worker_id,
                    w.listen_port,
                    max(1, slots.get(w.worker_id, 4) // 2),
                    standby=w.worker_id not in slots,
                )
                for w in workers
            ),
            *(
                EdgeWorker(f"r{i}.{j}", port, group.max_calls, host=str(group.host))
                for i, group in enumerate(edge.remote_workers)
                for j, port in enumerate(group.ports)
            ),
        ),
        trunk_allow=tuple(str(network) for network in config.sip.trunk_allow),
        run_dir=edge.run_dir,
        outside_host=_outside_host(config.sip.listen_host),
        retry_after_seconds=edge.retry_after_seconds,
        pike_requests=edge.pike_requests,
        pike_seconds=edge.pike_seconds,
        max_call_seconds=int(config.limits.max_call_seconds),
    )


def _outside_host(listen_host: str) -> str | None:
    """Where the workers' consultants are reached from (``sip.listen_host``, their media's
    address); None for a wildcard: the edge cannot bind it beside its other sockets, and its
    own ``listen_host`` then has to reach them."""
    return None if ipaddress.ip_address(listen_host).is_unspecified else listen_host


def write_files(plan: EdgePlan) -> None:
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    plan.dispatcher_file.write_text(dispatcher_list(plan), encoding="ascii")
    plan.config_file.write_text(render(plan), encoding="latin-1")  # raw bytes in one regex


async def check_config(kamailio: Path, plan: EdgePlan) -> None:
    """``kamailio -c`` on the generated file; EdgeStartError with its complaint if refused."""
    process = await asyncio.create_subprocess_exec(
        str(kamailio),
        "-c",
        "-f",
        str(plan.config_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=_KAMAILIO_ENV,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), CHECK_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise EdgeStartError(f"{kamailio} -c took over {CHECK_TIMEOUT}s") from None
    text = output.decode(errors="replace")
    if process.returncode != 0 or "config file ok" not in text:
        problems = [line for line in text.splitlines() if "ERROR" in line or "CRITICAL" in line]
        raise EdgeStartError(f"kamailio refused {plan.config_file}: " + " | ".join(problems[:5]))


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _options(sock: socket.socket, host: str, port: int, extra: str = "") -> bytes:
    """An OPTIONS to the edge at ``host:port`` from ``sock`` (connected to it)."""
    uri_host = f"[{host}]" if ":" in host else host
    local_host, local_port = sock.getsockname()[:2]
    local = f"[{local_host}]" if ":" in local_host else local_host
    tag = uuid.uuid4().hex[:12]
    return (
        f"OPTIONS sip:{uri_host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local}:{local_port};branch=z9hG4bK{tag}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:callrouter@{local}>;tag={tag}\r\n"
        f"To: <sip:{uri_host}:{port}>\r\n"
        f"Call-ID: {tag}@callrouter\r\n"
        "CSeq: 1 OPTIONS\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode("ascii")


def options_probe(host: str, port: int, timeout: float = 0.3) -> bool:
    """One OPTIONS to the edge itself over UDP; True on a 200."""
    probe_host = "127.0.0.1" if host == "0.0.0.0" else host  # a wildcard listen
    family = socket.AF_INET6 if ":" in probe_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((probe_host, port))
        message = _options(sock, probe_host, port)
        try:
            sock.send(message)
            return sock.recv(65535).startswith(b"SIP/2.0 200")
        except OSError:  # a timeout, or ICMP port unreachable before Kamailio binds
            return False


class EdgeSignals:
    """What the engine tells a running edge, over SIP from ``worker_host``: a worker is dead (end
    its calls), a worker is in or out of the dispatching. Enough on its own for an edge that
    systemd runs (``edge.supervise: false``); ``EdgeProcess`` adds running Kamailio."""

    def __init__(self, plan: EdgePlan) -> None:
        self.plan = plan

    def dispatch_to(self, port: int, *, active: bool) -> None:
        """Put the worker on ``port`` into the dispatching (it has just started) or take it out
        (it is retiring); remembered in the plan, so a restarted edge starts from it too."""
        workers = tuple(
            replace(w, standby=not active) if w.port == port and w.host is None else w
            for w in self.plan.workers
        )
        self.plan = replace(self.plan, workers=workers)
        self._tell(f"{WORKER_STATE_HEADER}: {port} {'ap' if active else 'd'}\r\n")
        log.info("edge_told_worker_state", port=port, active=active)

    def _tell(self, header: str) -> None:
        """An OPTIONS carrying ``header`` to the edge, from ``worker_host`` (the only source
        it takes these from)."""
        family = socket.AF_INET6 if ":" in self.plan.worker_host else socket.AF_INET
        edge_host = self.plan.worker_host  # the edge listens there too (or it is listen_host)
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((self.plan.worker_host, 0))
            sock.connect((edge_host, self.plan.listen_port))
            with contextlib.suppress(OSError):  # the edge is down: its restart reads the plan
                sock.send(_options(sock, edge_host, self.plan.listen_port, header))

    def worker_down(self, worker_id: str) -> None:
        """Tell the edge a worker died (``w0`` or a restart's ``w0.2``): it ends that worker's
        calls with a BYE to each GP. From ``worker_host``, the only source it takes this from."""
        name = worker_id.split(".", 1)[0]
        ports = [w.port for w in self.plan.workers if w.name == name and w.host is None]
        if not ports:
            return
        self._tell(f"{WORKER_DOWN_HEADER}: {self.plan.worker_host}:{ports[0]}\r\n")
        log.warning("edge_told_worker_down", worker=worker_id, port=ports[0])


class EdgeProcess(EdgeSignals):
    """One supervised Kamailio (see the module docstring)."""

    def __init__(self, plan: EdgePlan, kamailio: Path) -> None:
        super().__init__(plan)
        self._kamailio = kamailio
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        write_files(self.plan)
        await check_config(self._kamailio, self.plan)
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="edge")

    async def _spawn(self) -> None:
        plan = self.plan
        write_files(plan)  # a restart starts from the workers in service now
        self._process = process = await asyncio.create_subprocess_exec(
            str(self._kamailio),
            "-DD",
            "-E",
            "-f",
            str(plan.config_file),
            "-P",
            str(plan.pid_file),
            "-Y",
            str(plan.run_dir),
            "-m",
            "64",
            "-M",
            "8",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,  # only prctl, async-signal-safe
            start_new_session=True,  # its children with it: killpg reaches them all
            env=_KAMAILIO_ENV,
        )
        asyncio.create_task(self._pump(process), name="edge-log")  # noqa: RUF006  # ends at EOF
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while loop.time() < deadline:
            if process.returncode is not None:
                raise EdgeStartError(f"kamailio exited with {process.returncode} at start")
            if await asyncio.to_thread(options_probe, plan.listen_host, plan.listen_port):
                log.info(
                    "edge_listening",
                    host=plan.listen_host,
                    port=plan.listen_port,
                    workers=[f"{w.name}:{w.port}/{w.max_calls}" for w in plan.workers],
                    pid=process.pid,
                )
                return
            await asyncio.sleep(0.05)
        await self._terminate(process, 2.0)
        raise EdgeStartError(f"kamailio did not answer OPTIONS within {START_TIMEOUT}s")

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            found = _LEVEL.search(text)
            level = _LEVELS.get(found.group(1), "info") if found else "info"
            message = text[found.end() :] if found else text.strip()
            getattr(log, level)("edge", message=message[:2000])

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            process = self._process
            assert process is not None
            await _exited(process.pid)
            if self._closing:
                return
            # Its children outlive a killed main process and hold the port: end them all.
            await self._terminate(process, 5.0)
            code = process.returncode
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            log.error("edge_died", exit_code=code, restart_in=delay)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._spawn()
            except (EdgeStartError, OSError) as error:
                log.error("edge_restart_failed", error=str(error)[:500])
                continue
            self.restarts += 1
            attempt = 0
            log.warning("edge_restarted", pid=self.pid)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop supervising and stop Kamailio (SIGTERM, SIGKILL after ``timeout``)."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._process is not None:
            await self._terminate(self._process, timeout)

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process, timeout: float) -> None:
        """SIGTERM to Kamailio (it stops its children), then SIGKILL to whatever of its process
        group is left after ``timeout``, or at once if the main process had died already."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_exited(process.pid), timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout)


async def _exited(pid: int) -> None:
    """Until process ``pid`` has exited (a pidfd: ``Process.wait`` also waits for its pipes,
    which the children of a killed Kamailio keep open)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def start_edge(
    config: Config,
    workers: Sequence[WorkerConfig],
    readies: Sequence[p.Ready],
    port: int,
) -> EdgeProcess | None:
    """The edge for ``workers``, started, when config.yaml asks ``callrouter run`` for one."""
    if not (config.edge.enabled and config.edge.supervise):
        return None
    edge = EdgeProcess(plan_edge(config, workers, readies, port), config.edge.kamailio)
    await edge.start()
    return edge


def edge_signals(
    config: Config,
    workers: Sequence[WorkerConfig],
    readies: Sequence[p.Ready],
    port: int,
    edge: EdgeProcess | None,
) -> EdgeSignals | None:
    """Where to send worker news: the supervised edge, or one systemd runs, or none."""
    if edge is not None or not config.edge.enabled:
        return edge
    return EdgeSignals(plan_edge(config, workers, readies, port))


def tell_edge(
    inner: Callable[[p.Event], None], edge: EdgeSignals | None
) -> Callable[[p.Event], None]:
    """``inner``, and a dead worker reported to the edge (which ends that worker's calls)."""
    if edge is None:
        return inner

    def hook(event: p.Event) -> None:
        inner(event)
        if isinstance(event, p.WorkerDied):
            edge.worker_down(event.worker_id)

    return hook
