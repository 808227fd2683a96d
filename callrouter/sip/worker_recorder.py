"""Call recording in the worker: one WAV recorder per bridged pair, fed by both legs.

pj thread only. The conference bridge mixes both parties into the recorder's port, so the file
holds the whole conversation at the bridge's clock rate (8 kHz, 16-bit mono). Recording starts
with the bridge and stops when either leg closes: dropping the recorder (its last reference)
closes the file and writes the WAV header's lengths. The worker only writes the plain file;
the engine seals (encrypts) it and removes the plain one.

pjmedia removes a port from the conference bridge on its clock thread, a frame or so after the
recorder is dropped, and only then closes the file and fills in the WAV header. So ``Recorded``
is sent from ``poll`` once the header says the file is whole (or, should the disk be full and
the header never be written, after ``FINISH_SECONDS``; the engine then finds it short).

A recorder that cannot be created (no space, no directory) is reported at once and the call
goes on unrecorded: recording must never cost a clinician the call.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Final

import pjsua2 as pj

from callrouter.sip import protocol as p

FINISH_SECONDS: Final = 3.0  # the most we wait for pjmedia to close a recording's file
_WAV_HEADER_BYTES: Final = 44


def wav_is_closed(path: str) -> bool:
    """True once pjmedia has closed the file: the RIFF length in the header matches the file."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as wav:
            head = wav.read(8)
    except OSError:
        return False
    riff_length = int.from_bytes(head[4:8], "little") if len(head) == 8 else -1
    return size >= _WAV_HEADER_BYTES and head[:4] == b"RIFF" and riff_length == size - 8


@dataclass(frozen=True, slots=True)
class _Closing:
    report: p.Recorded
    give_up_at: float


@dataclass
class _Recording:
    path: str
    recorder: Any  # pj.AudioMediaRecorder; None once closed
    legs: tuple[str, str]
    started_at: float
    fed_by: set[str] = field(default_factory=set)  # legs whose audio reaches the recorder


class Recorders:
    """The recordings in progress, keyed by each of their two legs."""

    def __init__(self) -> None:
        self._by_leg: dict[str, _Recording] = {}
        self._closing: list[_Closing] = []

    def __len__(self) -> int:
        return len({id(r) for r in self._by_leg.values()})

    def start(self, a: str, b: str, path: str, now: float) -> p.Recorded | None:
        """Begin recording legs ``a`` and ``b``; a ``Recorded`` with the error if it cannot."""
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as error:
            return p.Recorded(leg=a, path=path, seconds=0.0, error=error.info())
        recording = _Recording(path=path, recorder=recorder, legs=(a, b), started_at=now)
        self._by_leg[a] = recording
        self._by_leg[b] = recording
        return None

    def feed(self, leg_id: str, audio: Any) -> None:
        """Connect ``leg_id``'s audio to its recorder (at bridge, or when its media comes up)."""
        recording = self._by_leg.get(leg_id)
        if recording is None or audio is None or recording.recorder is None:
            return
        audio.startTransmit(recording.recorder)
        recording.fed_by.add(leg_id)

    def stop(self, leg_id: str, audio_of: dict[str, Any], now: float) -> None:
        """Close the recording ``leg_id`` is part of; ``audio_of`` maps leg → its audio media.
        Its ``Recorded`` comes from ``poll`` once the file is closed."""
        recording = self._by_leg.pop(leg_id, None)
        if recording is None:
            return
        for other in recording.legs:
            self._by_leg.pop(other, None)
        for fed in recording.fed_by:
            audio = audio_of.get(fed)
            if audio is not None:
                with contextlib.suppress(pj.Error):  # that leg's media may be gone already
                    audio.stopTransmit(recording.recorder)
        recording.recorder = None  # the last reference: pjmedia closes the file soon after
        seconds = max(now - recording.started_at, 0.0)
        report = p.Recorded(leg=recording.legs[0], path=recording.path, seconds=seconds)
        self._closing.append(_Closing(report, now + FINISH_SECONDS))

    def poll(self, now: float) -> list[p.Recorded]:
        """The recordings whose files are closed now (or that waited long enough)."""
        done = [c for c in self._closing if now >= c.give_up_at or wav_is_closed(c.report.path)]
        if done:
            self._closing = [c for c in self._closing if c not in done]
        return [c.report for c in done]

    def close_all(self) -> None:
        """Drop every recorder (before libDestroy): each file is finished as it stands, and
        the engine's next start seals what it finds."""
        for recording in self._by_leg.values():
            recording.recorder = None
        self._by_leg.clear()
        self._closing.clear()
