"""Consultant legs inside one call: what each is doing and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from callrouter.core.domain import LegResult
from callrouter.core.plan import Candidate


class LegPhase(Enum):
    DIALING = "dialing"  # INVITE sent
    RINGING = "ringing"  # 180/183 seen
    WHISPER = "whisper"  # answered; whisper playing or awaiting the accept key
    ACCEPTED = "accepted"  # the winner, bridged to the GP
    CLOSING = "closing"  # we asked the shell to end it; its report is still to come
    DONE = "done"  # the shell has reported the end


LIVE = frozenset({LegPhase.DIALING, LegPhase.RINGING, LegPhase.WHISPER, LegPhase.ACCEPTED})
UNANSWERED = frozenset({LegPhase.DIALING, LegPhase.RINGING})


@dataclass(slots=True)
class Leg:
    name: str
    candidate: Candidate
    tier: str
    started_at: float
    deadline: float | None  # ring timeout, then the confirm timeout once answered
    phase: LegPhase = LegPhase.DIALING
    answered_at: float | None = None

    def ring_seconds(self, now: float) -> float:
        end = self.answered_at if self.answered_at is not None else now
        return end - self.started_at


def result_for_status(status: int) -> LegResult:
    """Map a SIP final status on an unanswered leg to a bounded result."""
    if status in (486, 600):
        return LegResult.BUSY
    if status in (404, 410, 480, 484):
        return LegResult.UNAVAILABLE
    if status in (408, 487):
        return LegResult.NO_ANSWER
    if 400 <= status < 500 or status == 603:
        return LegResult.REJECTED
    return LegResult.ERROR
