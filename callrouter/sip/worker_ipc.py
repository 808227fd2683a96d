"""The worker's two plain-Python IPC threads: commands in, events out.

Neither thread ever touches pjsua2 (an unregistered thread touching pjlib aborts the process).
The reader decodes command lines into the inbox and wakes the pj thread; the writer drains the
outbox into the engine's pipe, so the pj thread never blocks on a slow reader.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, cast

from callrouter.sip import protocol as p


@dataclass(frozen=True, slots=True)
class PipeClosed:
    """The engine closed our stdin: hang up everything and exit."""


@dataclass(frozen=True, slots=True)
class PlayerEof:
    """A prompt player reached the end of its file (posted from a pjmedia thread)."""

    leg: str
    token: int


Inbound = p.Command | PipeClosed | PlayerEof


class Waker:
    """Makes ``libHandleEvents`` return at once by sending a blank keep-alive to our SIP port.

    pjsip drops ``\\r\\n\\r\\n`` silently; the datagram's arrival ends the poll.
    """

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
        )
        self._lock = threading.Lock()

    def wake(self) -> None:
        # an error is harmless: the next poll timeout picks the work up anyway
        with self._lock, contextlib.suppress(OSError):
            self._sock.sendto(b"\r\n\r\n", self._address)

    def close(self) -> None:
        self._sock.close()


class Inbox:
    """What the pj thread drains after each poll."""

    def __init__(self, waker: Waker | None = None) -> None:
        self._queue: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self.waker = waker

    def put(self, item: Inbound) -> None:
        self._queue.put(item)
        if self.waker is not None:
            self.waker.wake()

    def drain(self) -> list[Inbound]:
        items: list[Inbound] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items


class Outbox:
    """Events to the engine, written by a daemon thread to ``fd``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.broken = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipc-writer", daemon=True)
        self._thread.start()

    def send(self, event: p.Event) -> None:
        try:
            line = p.encode(event)
        except UnicodeEncodeError:  # text pjsua2 decoded from bytes that are not UTF-8
            line = p.encode(_readable(event))
        self._queue.put(line)

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (line := self._queue.get()) is not None:
            if self.broken.is_set():
                continue
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                self.broken.set()  # the engine is gone; the reader will see EOF too


def _readable(event: p.Event) -> p.Event:
    """``event`` with every text field made valid UTF-8: pjsua2 turns bytes that are not UTF-8
    into lone surrogates, which stand here for the bytes they came from, shown as U+FFFD."""
    changes = {
        f.name: _text(value)
        for f in dataclasses.fields(event)
        if isinstance(value := getattr(event, f.name), str)
    }
    same_kind: Any = event  # replace() cannot type fields picked at run time
    return cast("p.Event", dataclasses.replace(same_kind, **changes))


def _text(value: str) -> str:
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        raw = value.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def start_reader(fd: int, inbox: Inbox, outbox: Outbox) -> threading.Thread:
    """Read command lines from ``fd`` until EOF, then post ``PipeClosed``."""

    def run() -> None:
        with os.fdopen(fd, "rb", buffering=65536, closefd=False) as stream:
            for line in stream:
                if not line.strip():
                    continue
                try:
                    inbox.put(p.decode_command(line))
                except p.ProtocolError as exc:
                    outbox.send(p.CommandError(command="?", leg="", message=str(exc)))
        inbox.put(PipeClosed())

    thread = threading.Thread(target=run, name="ipc-reader", daemon=True)
    thread.start()
    return thread
