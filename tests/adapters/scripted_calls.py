"""Scripted domain-event sequences for the sink tests: what a call flow would emit, in order."""

from __future__ import annotations

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
    SpecialtyChosen,
)

T0 = 1_717_236_000.0  # 2024-06-01 11:00:00 BST (10:00 UTC)


def connected_call(call_id: str = "c-connected", t0: float = T0) -> list[DomainEvent]:
    """Local consultant declines, NCN consultant accepts; 260 s talk; GP says referral avoided."""
    return [
        CallOffered(call_id, t0, "north", "07700900123", "Y00001", "Dr Example"),
        CallAnswered(call_id, t0 + 1),
        NhsNumberCaptured(call_id, t0 + 15, "9434765919"),
        SpecialtyChosen(call_id, t0 + 20, "north", "cardiology", 19.0),
        LegStarted(call_id, t0 + 20, "L1", "m-local-1", "sip:local1@127.0.0.1", "local", "rota"),
        LegRang(call_id, t0 + 21, "L1"),
        LegRang(call_id, t0 + 22, "L1"),  # a 183 after the 180: ringing_at keeps the first
        LegPickedUp(call_id, t0 + 28, "L1", "m-local-1"),
        LegEnded(call_id, t0 + 35, "L1", "m-local-1", "local", LegResult.DECLINED, 200, 7.0),
        LegStarted(call_id, t0 + 35, "L2", "m-ncn-7", "sip:ncn7@127.0.0.1", "ncn", "escalate"),
        LegRang(call_id, t0 + 36, "L2"),
        LegPickedUp(call_id, t0 + 50, "L2", "m-ncn-7"),
        Connected(call_id, t0 + 54, "north", "cardiology", "L2", "m-ncn-7", "ncn", 34.0),
        OutcomeRecorded(call_id, t0 + 320, "north", "cardiology", avoided_referral=True),
        CallEnded(call_id, t0 + 325, "north", "cardiology", EndReason.COMPLETED, True, 260.0),
    ]


def abandoned_in_hunt(call_id: str = "c-abandoned", t0: float = T0 + 600) -> list[DomainEvent]:
    """The GP hangs up while one leg rings: counts against FTCR."""
    return [
        CallOffered(call_id, t0, "north", "+441234567890", None, None),
        CallAnswered(call_id, t0 + 1),
        SpecialtyChosen(call_id, t0 + 9, "north", "dermatology", 8.0),
        LegStarted(call_id, t0 + 9, "L1", "m-local-2", "sip:local2@127.0.0.1", "local", "rota"),
        LegRang(call_id, t0 + 10, "L1"),
        LegEnded(call_id, t0 + 40, "L1", "m-local-2", "local", LegResult.CANCELLED, 487, 30.0),
        CallEnded(call_id, t0 + 40, "north", "dermatology", EndReason.GP_HANGUP_HUNT, False, 0.0),
    ]


def ivr_hangup(call_id: str = "c-ivr", t0: float = T0 + 1200) -> list[DomainEvent]:
    """The GP leaves during the menu: no specialty, no legs."""
    return [
        CallOffered(call_id, t0, "south", "01632960001", None, None),
        CallAnswered(call_id, t0 + 1),
        CallEnded(call_id, t0 + 6, "south", None, EndReason.GP_HANGUP_IVR, False, 0.0),
    ]
