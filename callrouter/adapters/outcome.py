"""One word for how a call went, shared by the records and the metrics so they never disagree."""

from __future__ import annotations

from typing import Final

from callrouter.core.domain import EndReason

CONNECTED: Final = "connected"
ABANDONED: Final = "abandoned"  # the GP hung up before anyone accepted
NOT_CONNECTED: Final = "not_connected"  # we ended the call without a connection
INTERRUPTED: Final = "interrupted"  # the engine or the call's worker died mid-call

OUTCOMES: Final = (CONNECTED, ABANDONED, NOT_CONNECTED, INTERRUPTED)

_GP_LEFT: Final = frozenset({EndReason.GP_HANGUP_IVR, EndReason.GP_HANGUP_HUNT})


def call_outcome(reason: EndReason, *, connected: bool) -> str:
    """Collapse an end reason into one of ``OUTCOMES`` (a bounded set, safe as a label)."""
    if connected:
        return CONNECTED
    if reason in {EndReason.INTERRUPTED, EndReason.LOST}:
        return INTERRUPTED
    if reason in _GP_LEFT:
        return ABANDONED
    return NOT_CONNECTED
