"""The recordings archive: plain WAVs from the SIP workers in, sealed files out.

Layout under ``recording.directory``::

    incoming/<call_id>.wav            written by a worker while the call is bridged (mode 0600)
    <yyyy>/<mm>/<call_id>.wav.sealed  AES-GCM (adapters.sealing), what the call record points at

A finished recording is sealed on a thread (never on the event loop) and its plain file removed;
the result goes to the sinks as ``RecordingFinished``. A plain file that could not be sealed
(disk full, key unreadable) stays in ``incoming/`` and is sealed by ``sweep()``, which runs at
start-up (files a crash left) and then periodically: a recording is never dropped, and the
record says ``failed`` until it is sealed. Nothing here ever fails a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog

from callrouter.adapters.sealing import SealingKey, open_file, seal_file
from callrouter.core import domain as d
from callrouter.sip import protocol as p

log = structlog.get_logger("callrouter.recordings")

INCOMING: Final = "incoming"
SEALED_SUFFIX: Final = ".wav.sealed"
SHORT_BY_SECONDS: Final = 1.0  # audio this much shorter than the bridge = incomplete
SWEEP_SECONDS: Final = 60.0
_PCM_HEADER_BYTES: Final = 44

_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

Publish = Callable[[d.DomainEvent], Awaitable[None]]


def repair_wav_header(path: Path) -> bool:
    """Make the lengths in a worker's WAV header match the file; True if they had to change.

    pjmedia writes them only when it closes the file: a worker killed mid-call leaves zeros,
    and the audio before them would read as nothing. Its header is the canonical 44 bytes
    (RIFF, fmt, then data at 36); a file of any other shape is left alone.
    """
    try:
        with path.open("r+b") as wav:
            head = wav.read(_PCM_HEADER_BYTES)
            size = wav.seek(0, os.SEEK_END)
            if len(head) < _PCM_HEADER_BYTES or head[:4] != b"RIFF" or head[36:40] != b"data":
                return False
            riff = (size - 8).to_bytes(4, "little")
            data = (size - _PCM_HEADER_BYTES).to_bytes(4, "little")
            if head[4:8] == riff and head[40:44] == data:
                return False
            wav.seek(4)
            wav.write(riff)
            wav.seek(40)
            wav.write(data)
    except OSError:
        return False
    return True


def wav_seconds(path: Path) -> float:
    """Audio length of a WAV; 0.0 for a file too damaged to read."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return 0.0


class RecordingArchive:
    """Names the files workers write, seals finished ones, finds and opens sealed ones."""

    def __init__(
        self,
        directory: Path,
        key: SealingKey,
        publish: Publish,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.incoming = directory / INCOMING
        self._key = key
        self._publish = publish
        self._clock = clock
        self._sealing: set[asyncio.Task[None]] = set()
        # How long each bridge was, for files that wait in incoming/ to be sealed: so a file
        # the full disk cut short is still flagged incomplete when the sweep seals it.
        self._bridged: dict[str, float] = {}

    def prepare(self) -> None:
        """Create the directories (owner only: recordings are clinical records)."""
        self.incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        os.chmod(self.incoming, 0o700)

    def plain_path(self, call_id: str) -> str:
        """Where the worker writes this call's recording."""
        return str(self.incoming / f"{call_id}.wav")

    def sealed_path(self, call_id: str, at: float) -> Path:
        month = datetime.fromtimestamp(at, tz=UTC)
        return self.directory / f"{month:%Y}" / f"{month:%m}" / f"{call_id}{SEALED_SUFFIX}"

    def find(self, call_id: str) -> Path | None:
        """The sealed file of ``call_id``, wherever its month put it."""
        if not _CALL_ID.fullmatch(call_id):  # typed by a person: never a path or a pattern
            raise FileNotFoundError(f"not a call id: {call_id[:80]!r}")
        matches = sorted(self.directory.glob(f"*/*/{call_id}{SEALED_SUFFIX}"))
        return matches[0] if matches else None

    def open(self, call_id: str, out: Path) -> int:
        """Decrypt ``call_id``'s recording to ``out``; SealError/FileNotFoundError as they come."""
        found = self.find(call_id)
        if found is None:
            raise FileNotFoundError(f"no recording for call {call_id} under {self.directory}")
        return open_file(self._key, found, out)

    # -- the engine's side ----------------------------------------------------------------------

    def finished(self, recorded: p.Recorded) -> None:
        """A worker's report: seal in the background (or record why there is nothing)."""
        call_id = Path(recorded.path).name.removesuffix(".wav")
        if recorded.error:
            log.error("recording_not_started", call_id=call_id, error=recorded.error)
            event = d.RecordingFinished(
                call_id, self._clock(), d.RecordingState.FAILED, None, 0.0, recorded.error
            )
            self._spawn(self._publish(event))
            return
        self._spawn(self._seal(call_id, Path(recorded.path), recorded.seconds))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.ensure_future(run())
        self._sealing.add(task)
        task.add_done_callback(self._sealing.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for recordings being sealed (shutdown), at most ``timeout`` seconds."""
        if self._sealing:
            await asyncio.wait(set(self._sealing), timeout=timeout)

    async def _seal(self, call_id: str, plain: Path, bridged_seconds: float | None) -> None:
        now = self._clock()
        audio = wav_seconds(plain)
        target = self.sealed_path(call_id, now)
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            await asyncio.to_thread(seal_file, self._key, plain, target)
        except OSError as error:
            log.error("recording_not_sealed", call_id=call_id, error=str(error))
            if bridged_seconds is not None:
                self._bridged[call_id] = bridged_seconds
            event = d.RecordingFinished(
                call_id, now, d.RecordingState.FAILED, None, audio, f"not sealed yet: {error}"
            )
            await self._publish(event)
            return
        with contextlib.suppress(FileNotFoundError):
            plain.unlink()
        short = bridged_seconds is not None and audio < bridged_seconds - SHORT_BY_SECONDS
        state = d.RecordingState.INCOMPLETE if short else d.RecordingState.STORED
        detail = f"{audio:.1f}s of {bridged_seconds:.1f}s recorded" if short else ""
        if short:
            log.warning("recording_incomplete", call_id=call_id, detail=detail)
        await self._publish(d.RecordingFinished(call_id, now, state, str(target), audio, detail))

    async def sweep(self, min_age: float = SWEEP_SECONDS) -> int:
        """Seal plain files left in ``incoming/`` (a crash, or an earlier failure) that are at
        least ``min_age`` seconds old; returns how many it tried. At start-up no worker writes,
        so ``min_age=0``; later, a file a live call is writing is always fresher than that."""
        tried = 0
        for plain in sorted(self.incoming.glob("*.wav")):
            if time.time() - plain.stat().st_mtime < min_age:
                continue
            tried += 1
            call_id = plain.name.removesuffix(".wav")
            if repair_wav_header(plain):  # its worker died before closing it
                log.warning("recording_header_repaired", call_id=call_id)
            await self._seal(call_id, plain, self._bridged.pop(call_id, None))
        return tried

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:  # the next minute tries again; the sweeper must not die
                log.exception("recording_sweep_failed")


async def open_archive(
    directory: Path, key: SealingKey, publish: Publish
) -> RecordingArchive:
    """The archive, ready: directories made, and what a previous run left in ``incoming/``
    sealed before any worker starts writing there."""
    archive = RecordingArchive(directory, key, publish)
    archive.prepare()
    left = await archive.sweep(min_age=0.0)
    log.info("recordings_ready", directory=str(directory), sealed_leftovers=left)
    return archive
