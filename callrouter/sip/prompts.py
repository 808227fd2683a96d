"""TTS prompt cache: text (or a recorded file) → a WAV the worker can play.

Every prompt is 16-bit mono PCM at the bridge's clock rate (8 kHz), so pjmedia never resamples.
Text is spoken by ``espeak-ng`` and converted by ``sox``; a recorded file named by a dialplan is
converted by ``sox`` too and then checked. Files are named by a hash of everything that shapes
the audio (text or source content, voice, speed, pitch, rate), so a change of wording or voice
makes a new file and an unchanged prompt is never rebuilt.

Synchronous by design: call ``prepare`` once at start-up (or on reload) with every prompt text
the dialplans use, so calls never wait for TTS. ``path_for`` is thread-safe: concurrent requests
for the same prompt build it once (a per-key lock), and files appear atomically (write to a
temporary name, then rename), so two processes sharing the directory never see half a file.
From asyncio, use ``await asyncio.to_thread(cache.path_for, text)`` for a prompt not prepared.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_FORMAT_VERSION = 1  # bump when the conversion pipeline changes
_TIMEOUT_SECONDS = 60


class PromptError(RuntimeError):
    """A prompt could not be made or a recorded file is not usable audio."""


@dataclass(frozen=True, slots=True)
class Voice:
    """espeak-ng settings: voice name, words per minute, pitch 0-99."""

    name: str = "en-gb"
    speed: int = 150
    pitch: int = 50


class PromptCache:
    """Builds and remembers prompt WAVs under ``directory``."""

    def __init__(
        self,
        directory: Path | str,
        clock_rate: int = 8000,
        voice: Voice | None = None,
        espeak: str = "espeak-ng",
        sox: str = "sox",
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.clock_rate = clock_rate
        self.voice = voice or Voice()
        self._espeak = espeak
        self._sox = sox
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.built = 0  # files made by this instance (the rest came from the cache)

    def path_for(self, text: str, file: str | Path | None = None) -> Path:
        """The WAV for a prompt: ``file`` converted if given, else ``text`` spoken."""
        if file is not None:
            source = Path(file)
            try:
                digest = hashlib.sha256(source.read_bytes()).hexdigest()
            except OSError as exc:
                raise PromptError(f"recorded prompt {source}: {exc.strerror}") from exc
            key = self._key({"file": digest})
            return self._ensure(key, lambda tmp: self._convert(source, tmp))
        if not text.strip():
            raise PromptError("empty prompt text")
        key = self._key(
            {
                "text": text,
                "voice": self.voice.name,
                "speed": self.voice.speed,
                "pitch": self.voice.pitch,
            }
        )
        return self._ensure(key, lambda tmp: self._speak(text, tmp))

    def prepare(self, texts: Iterable[str]) -> dict[str, Path]:
        """Build every prompt in ``texts`` now; returns text → path."""
        return {text: self.path_for(text) for text in dict.fromkeys(texts)}

    # ------------------------------------------------------------------ internals

    def _key(self, what: dict[str, object]) -> str:
        what = {**what, "rate": self.clock_rate, "v": _FORMAT_VERSION}
        blob = json.dumps(what, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:24]

    def _ensure(self, key: str, build: Callable[[Path], None]) -> Path:
        target = self.directory / f"prompt-{key}.wav"
        if target.exists():
            return target
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if target.exists():  # another thread built it while we waited
                return target
            tmp = target.with_name(f".{target.stem}.{os.getpid()}.{threading.get_ident()}.wav")
            try:
                build(tmp)
                _check_wav(tmp, self.clock_rate)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            self.built += 1
            return target

    def _speak(self, text: str, out: Path) -> None:
        espeak = [
            self._espeak,
            "-v",
            self.voice.name,
            "-s",
            str(self.voice.speed),
            "-p",
            str(self.voice.pitch),
            "--stdout",
        ]
        sox = [self._sox, "-q", "-t", "wav", "-", *self._format_args(), str(out)]
        try:
            speak = subprocess.run(
                espeak,
                input=text.encode(),
                capture_output=True,
                timeout=_TIMEOUT_SECONDS,
                check=True,
            )
            subprocess.run(
                sox, input=speak.stdout, capture_output=True, timeout=_TIMEOUT_SECONDS, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PromptError(f"TTS failed for {text[:40]!r}: {_why(exc)}") from exc

    def _convert(self, source: Path, out: Path) -> None:
        cmd = [self._sox, "-q", str(source), *self._format_args(), str(out)]
        try:
            subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_SECONDS, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PromptError(f"cannot convert recorded prompt {source}: {_why(exc)}") from exc

    def _format_args(self) -> list[str]:
        return [
            "-r",
            str(self.clock_rate),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "wav",
        ]


def _check_wav(path: Path, clock_rate: int) -> None:
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            frames = wav.getnframes()
    except (OSError, EOFError, wave.Error) as exc:
        raise PromptError(f"not a readable WAV: {exc}") from exc
    if shape != (1, 2, clock_rate) or frames == 0:
        raise PromptError(f"unexpected WAV shape {shape}, {frames} frames")


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        return f"exit {exc.returncode}: {stderr[:200]}"
    return str(exc)
