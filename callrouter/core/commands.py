"""Commands: what a call flow asks the shell to do, as data.

The shell (engine + SIP worker) carries them out in order; the simulator interprets them on its
own clock. A command never carries a library object, only plain values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prompt:
    """One piece of audio: ``text`` is spoken by TTS unless ``file`` names a recorded WAV."""

    text: str
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the GP's INVITE with 200 OK."""


@dataclass(frozen=True, slots=True)
class Play:
    """Play ``prompts`` one after another on ``leg``, replacing whatever plays there.

    With ``loop`` the sequence repeats until stopped and no PromptDone is sent.
    """

    leg: str
    prompts: tuple[Prompt, ...]
    loop: bool = False


@dataclass(frozen=True, slots=True)
class StopPlay:
    """Stop the playback on ``leg`` (barge-in, or music off before a bridge)."""

    leg: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Start outbound leg ``leg`` to ``uri`` (a consultant), showing ``caller_display``."""

    leg: str
    member_id: str
    uri: str
    caller_display: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End ``leg``: CANCEL if it is still ringing, BYE if answered, a final status if inbound.

    ``status`` is used only for an unanswered inbound leg (e.g. 480 when the flow gives up).
    """

    leg: str
    reason: str
    status: int = 0


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect the audio of two answered legs both ways."""

    a: str
    b: str


Command = Answer | Play | StopPlay | Dial | Hangup | Bridge
