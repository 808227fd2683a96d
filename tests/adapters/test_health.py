"""/healthz over real loopback sockets: statuses, bodies and the bounds on what clients send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from callrouter.adapters.health import MAX_HEAD_BYTES, HealthServer

WAIT = 10.0


class Engine:
    """Stands in for the engine's two callbacks."""

    def __init__(self) -> None:
        self.ready = True
        self.active_calls = 2

    def snapshot(self) -> dict[str, object]:
        return {"active_calls": self.active_calls, "worker_slots_free": 6}


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole response (the server closes after one)."""
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, body


async def read_or_reset(reader: asyncio.StreamReader) -> bytes:
    """What a hung-up-on client reads: nothing, or a reset if its request was left unread."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def serving(
    engine: Engine, scenario: Callable[[HealthServer, int], Awaitable[None]], **options: float
) -> HealthServer:
    async def main() -> HealthServer:
        server = HealthServer(engine.snapshot, ready=lambda: engine.ready, **options)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        try:
            assert server.port is not None
            await scenario(server, server.port)
        finally:
            await server.close()
        return server

    return asyncio.run(main())


class TestHealthz:
    """The probe's answers: 200 ready, 503 not ready, JSON with the engine's figures."""

    def test_ready(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            status, headers, body = await exchange(port, get("/healthz"))
            assert status == 200
            assert headers["Content-Type"] == "application/json"
            assert int(headers["Content-Length"]) == len(body)
            assert json.loads(body) == {"status": "ok", "active_calls": 2, "worker_slots_free": 6}

        serving(Engine(), scenario)

    def test_not_ready_is_503_with_the_same_figures(self) -> None:
        engine = Engine()

        async def scenario(_server: HealthServer, port: int) -> None:
            engine.ready = False
            status, _headers, body = await exchange(port, get("/healthz?probe=lb"))
            assert status == 503
            assert json.loads(body)["status"] == "not ready"
            assert json.loads(body)["active_calls"] == 2

        serving(engine, scenario)

    def test_head_has_no_body(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            status, headers, body = await exchange(port, get("/healthz", "HEAD"))
            assert (status, body) == (200, b"")
            assert int(headers["Content-Length"]) > 0

        serving(Engine(), scenario)

    def test_broken_snapshot_is_503_not_a_crash(self) -> None:
        def broken() -> dict[str, object]:
            raise RuntimeError("engine half-built")

        async def main() -> None:
            server = HealthServer(broken)
            await server.start("127.0.0.1", 0)
            try:
                assert server.port is not None
                status, _h, body = await exchange(server.port, get("/healthz"))
                assert (status, json.loads(body)) == (503, {"status": "error"})
            finally:
                await server.close()

        asyncio.run(main())


class TestOtherRequests:
    """Anything but GET/HEAD /healthz gets a short refusal."""

    def test_other_paths_404(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            for path in ("/", "/metrics", "/healthz/x", "/HEALTHZ"):
                status, _h, _b = await exchange(port, get(path))
                assert status == 404, path

        serving(Engine(), scenario)

    def test_other_methods_405(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            status, headers, _b = await exchange(port, get("/healthz", "POST"))
            assert status == 405
            assert headers["Allow"] == "GET, HEAD"

        serving(Engine(), scenario)

    def test_garbage_is_400(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            status, _h, _b = await exchange(port, b"HELLO\r\n\r\n")
            assert status == 400

        serving(Engine(), scenario)


class TestBounds:
    """Oversized, slow and excess connections cannot tie the server up."""

    def test_oversized_head_431(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            big = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"
            status, _h, _b = await exchange(port, big)
            assert status == 431

        serving(Engine(), scenario)

    def test_silent_client_is_dropped_and_others_still_served(self) -> None:
        async def scenario(_server: HealthServer, port: int) -> None:
            async with asyncio.timeout(WAIT):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /healthz HTTP/1.1\r\n")  # never finishes its headers
                status, _h, _b = await exchange(port, get("/healthz"))
                assert status == 200
                assert await reader.read() == b""  # hung up on after the read timeout
                writer.close()

        serving(Engine(), scenario, read_timeout=0.2)

    def test_connections_over_the_cap_are_hung_up(self) -> None:
        async def scenario(server: HealthServer, port: int) -> None:
            async with asyncio.timeout(WAIT):
                idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
                while "connections=2" not in repr(server):
                    await asyncio.sleep(0.01)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(get("/healthz"))
                assert await read_or_reset(reader) == b""
                writer.close()
                for _reader, idle_writer in idle:
                    idle_writer.close()

        serving(Engine(), scenario, max_connections=2)

    def test_close_ends_open_connections(self) -> None:
        async def main() -> HealthServer:
            server = HealthServer(Engine().snapshot)
            await server.start("127.0.0.1", 0)
            assert server.port is not None
            async with asyncio.timeout(WAIT):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                while "connections=1" not in repr(server):
                    await asyncio.sleep(0.01)
                await server.close()
                assert await read_or_reset(reader) == b""
                writer.close()
            return server

        assert "[CLOSED] connections=0" in repr(asyncio.run(main()))
