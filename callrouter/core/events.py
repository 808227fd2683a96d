"""Input events: what the shell tells a call flow happened.

Each is a small frozen value. ``leg`` names a leg inside one call: ``"gp"`` for the caller and
``"L1"``, ``"L2"``… for consultant legs in the order the flow dialled them.
"""

from __future__ import annotations

from dataclasses import dataclass

GP = "gp"


@dataclass(frozen=True, slots=True)
class Offered:
    """The GP's INVITE has been admitted to this flow (allow-list and number already checked)."""

    caller: str


@dataclass(frozen=True, slots=True)
class PromptDone:
    """The prompt last started on ``leg`` played to its end (not sent for a stopped prompt)."""

    leg: str


@dataclass(frozen=True, slots=True)
class Digit:
    """One DTMF digit (0-9, *, #) from ``leg``, by RFC 4733 or SIP INFO."""

    leg: str
    digit: str


@dataclass(frozen=True, slots=True)
class LegRinging:
    """A consultant leg got 180/183. Early media is not an answer."""

    leg: str


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A consultant leg got 200 OK (a person *or* a voicemail: only the accept key tells)."""

    leg: str


@dataclass(frozen=True, slots=True)
class LegFailed:
    """A consultant leg ended before answer: 486/480/404/603/5xx, transport error or timeout."""

    leg: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """``leg`` ended from the far side after answer (BYE), or the GP hung up at any time."""

    leg: str


@dataclass(frozen=True, slots=True)
class MediaTimeout:
    """No RTP from ``leg`` for the inactivity limit: the party is gone without a BYE."""

    leg: str


@dataclass(frozen=True, slots=True)
class Lost:
    """The shell lost ``leg`` with the process that held it: no signalling is possible on it.

    For the GP leg the call ends as interrupted; a consultant leg counts as a failed leg.
    """

    leg: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The deadline the flow asked for has come. Carries nothing: ``now`` says when."""


Event = (
    Offered
    | PromptDone
    | Digit
    | LegRinging
    | LegAnswered
    | LegFailed
    | HungUp
    | MediaTimeout
    | Lost
    | Tick
)
