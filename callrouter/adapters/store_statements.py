"""The SQL that records each domain event: pure functions, easy to read next to the schema.

Two kinds of record are not domain events: ``CloseInterrupted`` (start-up closing calls a crash
left open) and the audit records of ``store_audit`` (audit rows, live overrides added and
removed). They are records like the others so that, when earlier records are waiting in the
spool, they are applied in order behind them, and wait out a full disk the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.adapters.masking import mask_number
from callrouter.adapters.outcome import INTERRUPTED, call_outcome
from callrouter.adapters.store_audit import AuditNoted, CoverAdded, CoverRemoved, audit_statements
from callrouter.core.domain import (
    CallAnswered,
    CallEnded,
    CallOffered,
    Connected,
    DomainEvent,
    EndReason,
    LegEnded,
    LegPickedUp,
    LegRang,
    LegResult,
    LegStarted,
    NhsNumberCaptured,
    OutcomeRecorded,
    RecordingFinished,
    SpecialtyChosen,
)

SqlValue = str | int | float | None
Statement = tuple[str, tuple[SqlValue, ...]]


@dataclass(frozen=True, slots=True)
class CloseInterrupted:
    """Close every call (and its legs) still open: the ones a crash left behind."""

    at: float


# The audit records (``store_audit``) ride the same path: in order, and spooled on a full disk.
AuditRecord = AuditNoted | CoverAdded | CoverRemoved
Record = DomainEvent | CloseInterrupted | AuditRecord

# Results where a person (or a voicemail) answered and did not accept.
_ANSWERED_NOT_ACCEPTED = frozenset({LegResult.DECLINED, LegResult.NO_CONFIRM, LegResult.HUNG_UP})


def _accepted_flag(result: LegResult) -> int | None:
    if result is LegResult.ACCEPTED:
        return 1
    if result in _ANSWERED_NOT_ACCEPTED:
        return 0
    return None  # never answered: there was no decision to record


def statements_for(event: Record) -> list[Statement]:
    """The SQL that records ``event``: pure, so it is easy to read next to the schema."""
    match event:
        case CloseInterrupted():
            return close_interrupted_statements(event.at)
        case AuditNoted() | CoverAdded() | CoverRemoved():
            return audit_statements(event)
        case CallOffered():
            return [
                (
                    "INSERT INTO calls (call_id, area, caller_masked, practice, clinician,"
                    " offered_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        event.call_id,
                        event.area,
                        mask_number(event.caller),
                        event.practice,
                        event.clinician,
                        event.at,
                    ),
                )
            ]
        case CallAnswered():
            return [
                ("UPDATE calls SET answered_at = ? WHERE call_id = ?", (event.at, event.call_id))
            ]
        case NhsNumberCaptured():
            return [
                (
                    "UPDATE calls SET nhs_number = ? WHERE call_id = ?",
                    (event.nhs_number, event.call_id),
                )
            ]
        case SpecialtyChosen():
            return [
                (
                    "UPDATE calls SET specialty = ?, specialty_at = ?, ivr_seconds = ?"
                    " WHERE call_id = ?",
                    (event.specialty, event.at, event.ivr_seconds, event.call_id),
                )
            ]
        case LegStarted():
            return [
                (
                    "INSERT INTO legs (call_id, leg, member_id, uri, tier, why, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.call_id,
                        event.leg,
                        event.member_id,
                        event.uri,
                        event.tier,
                        event.why,
                        event.at,
                    ),
                )
            ]
        case LegRang():
            # 180 then 183 both report ringing: keep the first.
            return [
                (
                    "UPDATE legs SET ringing_at = COALESCE(ringing_at, ?)"
                    " WHERE call_id = ? AND leg = ?",
                    (event.at, event.call_id, event.leg),
                )
            ]
        case LegPickedUp():
            return [
                (
                    "UPDATE legs SET answered_at = ? WHERE call_id = ? AND leg = ?",
                    (event.at, event.call_id, event.leg),
                )
            ]
        case LegEnded():
            return [
                (
                    "UPDATE legs SET ended_at = ?, sip_status = ?, result = ?, ring_seconds = ?,"
                    " accepted = COALESCE(?, accepted) WHERE call_id = ? AND leg = ?",
                    (
                        event.at,
                        event.status,
                        event.result.value,
                        event.ring_seconds,
                        _accepted_flag(event.result),
                        event.call_id,
                        event.leg,
                    ),
                )
            ]
        case Connected():
            return [
                (
                    "UPDATE calls SET connected_at = ?, specialty = ?, member_id = ?, tier = ?,"
                    " connect_seconds = ? WHERE call_id = ?",
                    (
                        event.at,
                        event.specialty,
                        event.member_id,
                        event.tier,
                        event.connect_seconds,
                        event.call_id,
                    ),
                ),
                (
                    "UPDATE legs SET accepted = 1 WHERE call_id = ? AND leg = ?",
                    (event.call_id, event.leg),
                ),
            ]
        case OutcomeRecorded():
            return [
                (
                    "UPDATE calls SET survey_avoided_referral = ? WHERE call_id = ?",
                    (int(event.avoided_referral), event.call_id),
                )
            ]
        case CallEnded():
            outcome = call_outcome(event.reason, connected=event.connected)
            return [
                (
                    "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = ?, talk_seconds = ?,"
                    " specialty = COALESCE(?, specialty) WHERE call_id = ?",
                    (
                        event.at,
                        event.reason.value,
                        outcome,
                        event.talk_seconds if event.connected else None,
                        event.specialty,
                        event.call_id,
                    ),
                ),
                # A leg the flow never reported ended (the bridged one, usually) ends with the
                # call, so no leg stays open once its call is closed.
                (
                    "UPDATE legs SET ended_at = ?, result = COALESCE(result, CASE accepted"
                    " WHEN 1 THEN 'accepted' ELSE 'cancelled' END)"
                    " WHERE call_id = ? AND ended_at IS NULL",
                    (event.at, event.call_id),
                ),
            ]
        case RecordingFinished():
            return [
                (
                    "UPDATE calls SET recording_state = ?, recording_path = ?,"
                    " recording_seconds = ?, recording_detail = ? WHERE call_id = ?",
                    (
                        event.state.value,
                        event.path,
                        event.seconds,
                        event.detail or None,
                        event.call_id,
                    ),
                )
            ]


def close_interrupted_statements(now: float) -> list[Statement]:
    """Close calls left open at ``now``; the last statement's row count is the calls closed."""
    return [
        # Leg results stay NULL: nobody knows how those legs really ended.
        (
            "UPDATE legs SET ended_at = ? WHERE ended_at IS NULL AND call_id IN"
            " (SELECT call_id FROM calls WHERE ended_at IS NULL)",
            (now,),
        ),
        (
            "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = CASE WHEN"
            " connected_at IS NULL THEN ? ELSE 'connected' END WHERE ended_at IS NULL",
            (now, EndReason.INTERRUPTED.value, INTERRUPTED),
        ),
    ]
