"""Prompt playback for the worker: one WAV player at a time per leg, files in sequence.

pj thread only, except ``EofPlayer.onEof2``, which pjmedia calls on its own thread: it just
posts a ``PlayerEof`` to the inbox. Players are capped at 32 per process, so each is destroyed
once its file ends — after a short grace period, so that the last reference is never dropped
while pjmedia may still be inside its callback.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from callrouter.sip.worker_ipc import Inbox, PlayerEof

_GRACE_SECONDS = 0.5


class EofPlayer(pj.AudioMediaPlayer):  # type: ignore[misc]  # pjsua2 ships no type hints
    """A file player that reports end-of-file as plain data."""

    def __init__(self, inbox: Inbox, leg: str, token: int) -> None:
        super().__init__()
        self._inbox = inbox
        self._leg = leg
        self._token = token

    def onEof2(self) -> None:
        with contextlib.suppress(Exception):  # nothing may escape into pjmedia
            self._inbox.put(PlayerEof(leg=self._leg, token=self._token))


@dataclass
class _Sequence:
    files: tuple[str, ...]
    loop: bool
    index: int = 0
    player: EofPlayer | None = None
    token: int = 0
    opened_this_pass: bool = False


@dataclass
class Players:
    """The sequences playing on each leg.

    ``on_error(leg, message)`` reports a file that could not be opened; it is skipped.
    """

    inbox: Inbox
    on_error: Callable[[str, str], None]
    _playing: dict[str, _Sequence] = field(default_factory=dict)
    _graveyard: list[tuple[float, EofPlayer]] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, leg: str, files: tuple[str, ...], loop: bool, sink: Any, now: float) -> bool:
        """Replace what plays on ``leg``; True if nothing could be played (done at once)."""
        self.stop(leg, sink, now)
        seq = _Sequence(files=files, loop=loop)
        self._playing[leg] = seq
        return self._open_next(leg, seq, sink, now)

    def stop(self, leg: str, sink: Any, now: float) -> None:
        """Stop ``leg``'s sequence, if any, without reporting an end."""
        seq = self._playing.pop(leg, None)
        if seq is not None:
            self._retire(seq, sink, now)

    def on_eof(self, eof: PlayerEof, sink: Any, now: float) -> bool:
        """Advance after a file ended; True when the whole sequence is done."""
        seq = self._playing.get(eof.leg)
        if seq is None or seq.player is None or seq.token != eof.token:
            return False  # a stopped or replaced player's late callback
        self._retire(seq, sink, now)
        seq.index += 1
        return self._open_next(eof.leg, seq, sink, now)

    def reconnect(self, leg: str, sink: Any) -> None:
        """Re-attach the current player after the leg's media was re-created."""
        seq = self._playing.get(leg)
        if seq is not None and seq.player is not None:
            seq.player.startTransmit(sink)

    def purge(self, now: float) -> None:
        """Destroy players retired more than the grace period ago."""
        self._graveyard = [(t, pl) for (t, pl) in self._graveyard if now - t < _GRACE_SECONDS]

    def close_all(self) -> None:
        """Drop every player (before libDestroy)."""
        for seq in self._playing.values():
            seq.player = None
        self._playing.clear()
        self._graveyard.clear()

    def _open_next(self, leg: str, seq: _Sequence, sink: Any, now: float) -> bool:
        self.purge(now)  # short files in a loop retire players faster than the 1 s tick
        while True:
            if seq.index >= len(seq.files):
                if not (seq.loop and seq.opened_this_pass):
                    del self._playing[leg]
                    return True
                seq.index = 0
                seq.opened_this_pass = False
            token = next(self._tokens)
            player = EofPlayer(self.inbox, leg, token)
            try:
                player.createPlayer(seq.files[seq.index], pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(sink)
            except pj.Error as exc:
                self._graveyard.append((now, player))
                self.on_error(leg, f"cannot play {seq.files[seq.index]!r}: {exc.info()}")
                seq.index += 1
                continue
            seq.player, seq.token, seq.opened_this_pass = player, token, True
            return False

    def _retire(self, seq: _Sequence, sink: Any, now: float) -> None:
        if seq.player is None:
            return
        if sink is not None:
            with contextlib.suppress(pj.Error):  # the leg's media may already be gone
                seq.player.stopTransmit(sink)
        self._graveyard.append((now, seq.player))
        seq.player = None
