"""One call leg as pjsua2 sees it (``LegCall``) and as the worker tracks it (``Leg``).

``LegCall`` does nothing itself: each callback is handed, under our leg id, to the table's
``guard``, which reports instead of raising whatever goes wrong (an exception escaping into
pjsua2 leaves the call half-handled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from callrouter.sip import protocol as p
from callrouter.sip.worker_sipmsg import offer_event_pt

if TYPE_CHECKING:
    from callrouter.sip.worker_legs import LegTable


class LegCall(pj.Call):  # type: ignore[misc]  # pjsua2 ships no type hints
    """One pjsua2 call, forwarding each callback to the table under our leg id."""

    def __init__(self, account: Any, table: LegTable, leg: str, call_id: int) -> None:
        super().__init__(account, call_id)
        self.leg = leg
        self._table = table

    def onCallState(self, prm: Any) -> None:
        self._table.guard(self._table.on_state, self)

    def onCallMediaState(self, prm: Any) -> None:
        self._table.guard(self._table.on_media, self)

    def onDtmfDigit(self, prm: Any) -> None:
        self._table.guard(self._table.on_dtmf, self, str(prm.digit), int(prm.method))

    def onCallSdpCreated(self, prm: Any) -> None:
        self._table.guard(_rewrite_offer, prm)

    def onCallTsxState(self, prm: Any) -> None:
        self._table.guard(self._table.on_transaction, self, prm)


def _rewrite_offer(prm: Any) -> None:
    """When we are the offerer, offer telephone-event as 101 (see ``offer_event_pt``)."""
    if not prm.remSdp.wholeSdp:
        sdp = prm.sdp  # a proxy into prm: writing through it changes what pjsua2 reads back
        sdp.wholeSdp = offer_event_pt(sdp.wholeSdp)


@dataclass
class Leg:
    """What we know about one leg beyond pjsua's own state."""

    leg_id: str
    call: LegCall
    inbound: bool
    uri: str = ""  # outbound: the Request-URI we dialled
    answer_sent: bool = False  # inbound: our 200 OK went out
    answered: bool = False  # CONFIRMED reached
    ended_by_us: bool = False  # Hangup/Reject/shutdown: no Failed/HungUp for it
    ring_status: int = 0
    audio: Any = None  # pj.AudioMedia once media is active
    audio_index: int = -1
    on_hold: bool = False
    pending_play: p.Play | None = None
    bridged_to: str | None = None
    rx_packets: int = -1
    last_rx_at: float = 0.0
    timeout_sent: bool = False
