"""Domain events: the facts a call flow reports, for records, metrics, the bus and logs.

Every event names its call and carries ``at`` (POSIX seconds, the ``now`` the flow was given).
Sinks subscribe to these; the core never imports a sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the checker only: the core imports no library when it runs
    from typing_extensions import TypeIs


class EndReason(StrEnum):
    """Why a call ended: a bounded set, safe as a metric label."""

    COMPLETED = "completed"  # bridged, then one side hung up, survey done or skipped
    GP_HANGUP_IVR = "gp_hangup_ivr"  # GP left before choosing a specialty
    GP_HANGUP_HUNT = "gp_hangup_hunt"  # GP left while we hunted: counts against FTCR
    NO_INPUT = "no_input"  # menu / NHS number retries exhausted
    OUT_OF_HOURS = "out_of_hours"
    UNKNOWN_CALLER = "unknown_caller"
    NOBODY_ACCEPTED = "nobody_accepted"  # every tier and loop rung without an accept
    MAX_WAIT = "max_wait"  # the hunt's total wait ran out
    MAX_CALL_LENGTH = "max_call_length"
    MEDIA_TIMEOUT = "media_timeout"
    INTERRUPTED = "interrupted"  # the engine died (closed at restart) or the call failed
    LOST = "lost"  # the worker process holding the GP's leg died mid-call


class LegResult(StrEnum):
    """How one consultant leg ended: bounded, safe as a metric label."""

    ACCEPTED = "accepted"
    DECLINED = "declined"  # pressed 2
    NO_CONFIRM = "no_confirm"  # answered (perhaps voicemail) but no key within the confirm time
    NO_ANSWER = "no_answer"  # ring time ran out, we cancelled
    BUSY = "busy"  # 486 / 600
    REJECTED = "rejected"  # 603 / 403 and other 4xx
    UNAVAILABLE = "unavailable"  # 480 / 404 / 410
    ERROR = "error"  # 5xx, transport error
    CANCELLED = "cancelled"  # another leg won, or the GP left
    HUNG_UP = "hung_up"  # answered, then the consultant hung up before deciding


@dataclass(frozen=True, slots=True)
class CallOffered:
    call_id: str
    at: float
    area: str
    caller: str
    practice: str | None
    clinician: str | None


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class NhsNumberCaptured:
    call_id: str
    at: float
    nhs_number: str


@dataclass(frozen=True, slots=True)
class SpecialtyChosen:
    call_id: str
    at: float
    area: str
    specialty: str
    ivr_seconds: float


@dataclass(frozen=True, slots=True)
class LegStarted:
    call_id: str
    at: float
    leg: str
    member_id: str
    uri: str
    tier: str
    why: str


@dataclass(frozen=True, slots=True)
class LegRang:
    call_id: str
    at: float
    leg: str


@dataclass(frozen=True, slots=True)
class LegPickedUp:
    call_id: str
    at: float
    leg: str
    member_id: str


@dataclass(frozen=True, slots=True)
class LegEnded:
    call_id: str
    at: float
    leg: str
    member_id: str
    tier: str
    result: LegResult
    status: int
    ring_seconds: float


@dataclass(frozen=True, slots=True)
class Connected:
    call_id: str
    at: float
    area: str
    specialty: str
    leg: str
    member_id: str
    tier: str
    connect_seconds: float


@dataclass(frozen=True, slots=True)
class OutcomeRecorded:
    """The GP's answer to the post-call question: 1 avoided referral/admission, 2 did not."""

    call_id: str
    at: float
    area: str
    specialty: str
    avoided_referral: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    at: float
    area: str
    specialty: str | None
    reason: EndReason
    connected: bool
    talk_seconds: float


class RecordingState(StrEnum):
    """What became of a call's recording: bounded, safe as a metric label."""

    STORED = "stored"  # sealed in the archive, as long as the conversation
    INCOMPLETE = "incomplete"  # sealed, but shorter than the conversation (disk filled mid-call)
    FAILED = "failed"  # not started or not sealed (the reason is in ``detail``)


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """Made by the shell, not the flow: the call's recording is settled (or failed)."""

    call_id: str
    at: float
    state: RecordingState
    path: str | None  # the sealed file; None unless STORED or INCOMPLETE
    seconds: float  # audio in the file
    detail: str  # why it failed or is short; "" when stored whole


DomainEvent = (
    CallOffered
    | CallAnswered
    | NhsNumberCaptured
    | SpecialtyChosen
    | LegStarted
    | LegRang
    | LegPickedUp
    | LegEnded
    | Connected
    | OutcomeRecorded
    | CallEnded
    | RecordingFinished
)


DOMAIN_EVENT_TYPES: tuple[type, ...] = DomainEvent.__args__


def is_domain_event(effect: object) -> TypeIs[DomainEvent]:
    """True for a domain event (as opposed to a command) in a flow's effects."""
    return isinstance(effect, DOMAIN_EVENT_TYPES)
