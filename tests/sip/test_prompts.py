"""PromptCache: espeak-ng + sox make 8 kHz mono 16-bit WAVs, once per prompt."""

from __future__ import annotations

import shutil
import subprocess
import threading
import wave
from pathlib import Path

import pytest

from callrouter.sip.prompts import PromptCache, PromptError, Voice

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are needed",
)


def _shape(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


class TestTextPrompts:
    """Text prompts are spoken, converted, and cached by text and voice."""

    def test_text_becomes_8k_mono_16bit(self, tmp_path: Path) -> None:
        path = PromptCache(tmp_path).path_for("Press one for cardiology.")
        channels, width, rate, frames = _shape(path)
        assert (channels, width, rate) == (1, 2, 8000)
        assert frames > 8000 * 0.5  # at least half a second of speech

    def test_same_text_is_built_once(self, tmp_path: Path) -> None:
        cache = PromptCache(tmp_path)
        first = cache.path_for("Hello")
        mtime = first.stat().st_mtime_ns
        assert cache.path_for("Hello") == first
        assert PromptCache(tmp_path).path_for("Hello") == first  # shared across instances
        assert first.stat().st_mtime_ns == mtime
        assert cache.built == 1

    def test_voice_and_text_change_the_file(self, tmp_path: Path) -> None:
        cache = PromptCache(tmp_path)
        slow = PromptCache(tmp_path, voice=Voice(speed=120))
        assert cache.path_for("Hello") != cache.path_for("Hello there")
        assert cache.path_for("Hello") != slow.path_for("Hello")

    def test_concurrent_requests_build_once(self, tmp_path: Path) -> None:
        cache = PromptCache(tmp_path)
        paths: list[Path] = []
        threads = [
            threading.Thread(target=lambda: paths.append(cache.path_for("Please hold.")))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(paths) == 6
        assert len(set(paths)) == 1
        assert cache.built == 1
        assert [f.name for f in tmp_path.iterdir()] == [paths[0].name]  # no temp files left

    def test_prepare_builds_each_distinct_text(self, tmp_path: Path) -> None:
        cache = PromptCache(tmp_path)
        made = cache.prepare(["One", "Two", "One"])
        assert set(made) == {"One", "Two"}
        assert cache.built == 2

    def test_empty_text_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PromptError, match="empty"):
            PromptCache(tmp_path).path_for("  ")


class TestRecordedPrompts:
    """A recorded file is converted to the bridge format, or refused if it is not audio."""

    def test_stereo_44k_file_is_converted(self, tmp_path: Path) -> None:
        source = tmp_path / "greeting.wav"
        subprocess.run(
            [
                "sox",
                "-n",
                "-r",
                "44100",
                "-c",
                "2",
                "-b",
                "16",
                str(source),
                "synth",
                "0.5",
                "sine",
                "300",
            ],
            check=True,
        )
        cache = PromptCache(tmp_path / "cache")
        path = cache.path_for("greeting", file=source)
        channels, width, rate, frames = _shape(path)
        assert (channels, width, rate) == (1, 2, 8000)
        assert abs(frames - 4000) <= 80
        assert cache.path_for("other text, same file", file=source) == path

    def test_garbage_file_is_refused(self, tmp_path: Path) -> None:
        source = tmp_path / "broken.wav"
        source.write_bytes(b"this is not audio")
        with pytest.raises(PromptError, match=r"broken\.wav"):
            PromptCache(tmp_path / "cache").path_for("x", file=source)

    def test_missing_file_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(PromptError, match=r"missing\.wav"):
            PromptCache(tmp_path).path_for("x", file=tmp_path / "missing.wav")
