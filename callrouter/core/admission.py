"""Whether to take an inbound call, and the SIP status when not. Pure; checked in this order:

1. a source not on the trunk allow-list gets 403 and nothing else happens (toll fraud);
2. a number no dialplan serves gets 404;
3. a shutting-down engine, a full house (max concurrent calls) or a worker without a free slot
   beside the caller's own leg gets 503 (the engine adds Retry-After).
"""

from __future__ import annotations

from enum import Enum


class Admission(Enum):
    ACCEPT = (200, "accepted")
    FORBIDDEN = (403, "source not allowed")
    UNKNOWN_NUMBER = (404, "no dialplan serves this number")
    DRAINING = (503, "shutting down")
    FULL = (503, "at max concurrent calls")
    NO_SLOT = (503, "no free call slot")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


def admit(
    *,
    source_allowed: bool,
    number_known: bool,
    accepting: bool,
    active_calls: int,
    max_calls: int,
    free_slots_beside_caller: int,
) -> Admission:
    if not source_allowed:
        return Admission.FORBIDDEN
    if not number_known:
        return Admission.UNKNOWN_NUMBER
    if not accepting:
        return Admission.DRAINING
    if active_calls >= max_calls:
        return Admission.FULL
    if free_slots_beside_caller < 1:
        return Admission.NO_SLOT
    return Admission.ACCEPT
