"""The recordings archive with real files, a real key and a real full disk (a tiny tmpfs)."""

from __future__ import annotations

import array
import asyncio
import math
import os
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrouter.adapters.sealing import SealError, SealingKey
from callrouter.core import domain as d
from callrouter.recordings import RecordingArchive, repair_wav_header, wav_seconds
from callrouter.sip import protocol as p
from tests.tmpfs import mounted_tmpfs, resize_tmpfs

KEY = SealingKey(bytes(range(32)))
NOW = 1_780_000_000.0  # 2026-05-28


def write_tone(path: Path, seconds: float) -> None:
    count = int(seconds * 8000)
    tone = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(count))
    frames = array.array("h", tone)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(frames.tobytes())


class Published:
    def __init__(self) -> None:
        self.events: list[d.RecordingFinished] = []

    async def __call__(self, event: d.DomainEvent) -> None:
        assert isinstance(event, d.RecordingFinished)
        self.events.append(event)


def archive_in(directory: Path) -> tuple[RecordingArchive, Published]:
    published = Published()
    archive = RecordingArchive(directory, KEY, published, clock=lambda: NOW)
    archive.prepare()
    return archive, published


def finish(archive: RecordingArchive, recorded: p.Recorded) -> None:
    async def run() -> None:
        archive.finished(recorded)
        await archive.drain()

    asyncio.run(run())


class TestSealing:
    """A finished recording is sealed, the plain file goes, the record learns where."""

    def test_stored_whole(self, tmp_path: Path) -> None:
        archive, published = archive_in(tmp_path / "rec")
        plain = Path(archive.plain_path("call-1"))
        write_tone(plain, 3.0)
        finish(archive, p.Recorded(leg="w0-in-1", path=str(plain), seconds=3.1))
        assert not plain.exists()
        (event,) = published.events
        assert event.state is d.RecordingState.STORED
        assert event.path == str(tmp_path / "rec" / "2026" / "05" / "call-1.wav.sealed")
        assert event.seconds == pytest.approx(3.0)
        out = tmp_path / "out.wav"
        assert archive.open("call-1", out) > 0
        assert wav_seconds(out) == pytest.approx(3.0)
        assert oct(os.stat(tmp_path / "rec").st_mode & 0o777) == "0o700"

    def test_short_audio_is_flagged_incomplete(self, tmp_path: Path) -> None:
        archive, published = archive_in(tmp_path / "rec")
        plain = Path(archive.plain_path("call-2"))
        write_tone(plain, 1.0)
        finish(archive, p.Recorded(leg="L", path=str(plain), seconds=30.0))
        (event,) = published.events
        assert event.state is d.RecordingState.INCOMPLETE
        assert "1.0s of 30.0s" in event.detail

    def test_recorder_that_never_started(self, tmp_path: Path) -> None:
        archive, published = archive_in(tmp_path / "rec")
        path = archive.plain_path("call-3")
        finish(archive, p.Recorded(leg="L", path=path, seconds=0.0, error="No space left"))
        (event,) = published.events
        assert (event.state, event.path, event.detail) == (
            d.RecordingState.FAILED,
            None,
            "No space left",
        )

    def test_wrong_key_cannot_open(self, tmp_path: Path) -> None:
        archive, _ = archive_in(tmp_path / "rec")
        plain = Path(archive.plain_path("call-4"))
        write_tone(plain, 0.5)
        finish(archive, p.Recorded(leg="L", path=str(plain), seconds=0.5))
        other = RecordingArchive(tmp_path / "rec", SealingKey(bytes(32)), Published())
        with pytest.raises(SealError, match="another key"):
            other.open("call-4", tmp_path / "out.wav")
        assert not (tmp_path / "out.wav").exists()
        with pytest.raises(FileNotFoundError, match="no recording for call nope"):
            archive.open("nope", tmp_path / "out.wav")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", "256k") as mount:
        yield mount


class TestFullDisk:
    """No room to seal: the plain file is kept, the record says failed, the sweep seals it later."""

    def test_sealed_once_space_returns(self, tiny_disk: Path) -> None:
        archive, published = archive_in(tiny_disk)
        plain = Path(archive.plain_path("call-5"))
        write_tone(plain, 10.0)  # 160 KB: no room for a sealed copy beside it
        finish(archive, p.Recorded(leg="L", path=str(plain), seconds=10.2))
        (failed,) = published.events
        assert failed.state is d.RecordingState.FAILED
        assert "No space left on device" in failed.detail
        assert plain.exists()
        assert not list(tiny_disk.rglob("*.partial"))  # no half-sealed file left behind
        resize_tmpfs(tiny_disk, "2m")
        assert asyncio.run(archive.sweep(min_age=0.0)) == 1
        stored = published.events[-1]
        assert stored.state is d.RecordingState.STORED  # whole: 10.0 s of a 10.2 s bridge
        assert not plain.exists()
        assert stored.path is not None
        assert Path(stored.path).exists()
        assert asyncio.run(archive.sweep(min_age=0.0)) == 0

    def test_short_file_sealed_later_is_still_flagged(self, tiny_disk: Path) -> None:
        archive, published = archive_in(tiny_disk)
        plain = Path(archive.plain_path("call-6"))
        write_tone(plain, 10.0)
        finish(archive, p.Recorded(leg="L", path=str(plain), seconds=30.0))  # cut short
        assert published.events[-1].state is d.RecordingState.FAILED
        resize_tmpfs(tiny_disk, "2m")
        asyncio.run(archive.sweep(min_age=0.0))
        assert published.events[-1].state is d.RecordingState.INCOMPLETE
        assert "10.0s of 30.0s" in published.events[-1].detail


class TestCrashedWorker:
    """A worker killed mid-call leaves a WAV whose header says it is empty."""

    def test_audio_is_saved_and_sealed(self, tmp_path: Path) -> None:
        archive, published = archive_in(tmp_path / "rec")
        plain = Path(archive.plain_path("call-7"))
        write_tone(plain, 2.5)
        raw = bytearray(plain.read_bytes())
        raw[4:8] = raw[40:44] = bytes(4)  # what pjmedia leaves until it closes the file
        plain.write_bytes(bytes(raw))
        assert wav_seconds(plain) == 0.0
        assert repair_wav_header(plain)
        assert wav_seconds(plain) == pytest.approx(2.5)
        assert not repair_wav_header(plain)  # whole now: left alone
        plain.write_bytes(bytes(raw))
        assert asyncio.run(archive.sweep(min_age=0.0)) == 1
        (event,) = published.events
        assert event.state is d.RecordingState.STORED
        assert event.seconds == pytest.approx(2.5)

    def test_other_files_are_left_alone(self, tmp_path: Path) -> None:
        odd = tmp_path / "odd.wav"
        odd.write_bytes(b"RIFF\0\0\0\0WAVEjunk")
        assert not repair_wav_header(odd)
        assert odd.read_bytes() == b"RIFF\0\0\0\0WAVEjunk"
        assert not repair_wav_header(tmp_path / "absent.wav")
