"""``GET /healthz`` for load balancers and monitors: a few lines of HTTP/1.1 on asyncio streams.

200 with a JSON body when the engine says it is ready, 503 (same body shape) while it starts or
drains, 404 for any other path, 405 for another method on /healthz. One request per connection.
Every read is bounded in size and time, and so is the number of connections, so a slow or
hostile client can hold up neither the probe nor the calls sharing the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Final

import structlog

log = structlog.get_logger("callrouter.health")

PATH: Final = "/healthz"
MAX_HEAD_BYTES: Final = 8192  # request line and headers together
READ_TIMEOUT: Final = 5.0
WRITE_TIMEOUT: Final = 5.0
MAX_CONNECTIONS: Final = 16

Snapshot = Callable[[], Mapping[str, object]]


class HealthServer:
    """Serves the engine's ``snapshot()`` (e.g. active calls, free worker slots) on /healthz."""

    def __init__(
        self,
        snapshot: Snapshot,
        ready: Callable[[], bool] = lambda: True,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._snapshot = snapshot
        self._ready = ready
        self._read_timeout = read_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.port: int | None = None

    def __repr__(self) -> str:
        state = "SERVING" if self._server is not None else "CLOSED"
        return f"<HealthServer port={self.port} [{state}] connections={len(self._handlers)}>"

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0 picks a free one; read it back from ``.port``)."""
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEAD_BYTES)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("health_listening", host=host, port=self.port)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Abort rather than cancel: each handler then sees its stream end and finishes normally
        # (a cancelled stream callback task is logged by asyncio as an error).
        for writer in self._handlers.values():
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=WRITE_TIMEOUT)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a stream callback always runs inside a task
        self._handlers[task] = writer
        try:
            if self._slots.locked():
                return  # over the cap: hang up rather than queue
            async with self._slots:
                await self._serve_one(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or was too slow: nothing to answer
        finally:
            self._handlers.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._read_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await _respond(writer, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, {})
            return
        except asyncio.IncompleteReadError:
            return  # closed before a whole request arrived
        status, body, head_only = self._route(head)
        await _respond(writer, status, body, head_only=head_only)

    def _route(self, head: bytes) -> tuple[HTTPStatus, Mapping[str, object], bool]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return HTTPStatus.BAD_REQUEST, {"status": "bad request"}, False
        method, target, _version = parts
        if target.split("?", 1)[0] != PATH:
            return HTTPStatus.NOT_FOUND, {"status": "not found"}, method == "HEAD"
        if method not in {"GET", "HEAD"}:
            return HTTPStatus.METHOD_NOT_ALLOWED, {"status": "method not allowed"}, False
        try:
            ready = self._ready()
            body = {"status": "ok" if ready else "not ready", **self._snapshot()}
        except Exception:  # a probe must answer even if the engine's callback breaks
            log.exception("health_snapshot_failed")
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error"}, method == "HEAD"
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return status, body, method == "HEAD"


async def _respond(
    writer: asyncio.StreamWriter,
    status: HTTPStatus,
    body: Mapping[str, object],
    *,
    head_only: bool = False,
) -> None:
    payload = json.dumps(body, default=str).encode() + b"\n"
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        lines.append("Allow: GET, HEAD")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(payload)
    await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
