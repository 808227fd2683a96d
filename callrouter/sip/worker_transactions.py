"""What a leg's SIP transactions tell the worker beyond pjsua's call states: a plain
``application/dtmf`` INFO, which pjsua leaves alone (it handles only dtmf-relay), to answer and
turn into a digit; and the responses to a leg's INVITE, from which the leg's teardown is written
for the pool to send should this process die (``worker_teardown``). On the pj thread, called
through ``LegTable.on_transaction``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from callrouter.sip import protocol as p
from callrouter.sip.worker_call import LegCall
from callrouter.sip.worker_native import respond_in_dialog
from callrouter.sip.worker_sipmsg import body, dtmf_from_info, header
from callrouter.sip.worker_teardown import teardown

if TYPE_CHECKING:
    from callrouter.sip.worker_legs import LegTable


def on_transaction(table: LegTable, call: LegCall, prm: Any) -> None:
    """A transaction of ``call`` changed state: an INVITE response notes the teardown; a plain
    ``application/dtmf`` INFO (pjsua handles only dtmf-relay) is answered here."""
    event = prm.e
    if event.type != pj.PJSIP_EVENT_TSX_STATE:
        return
    tsx_state = event.body.tsxState
    tsx = tsx_state.tsx
    if tsx.method == "INVITE":
        _note_teardown(table, call, tsx_state)
        return
    if (
        tsx.role != pj.PJSIP_ROLE_UAS
        or tsx.method != "INFO"
        or tsx.state != pj.PJSIP_TSX_STATE_TRYING
        or tsx_state.type != pj.PJSIP_EVENT_RX_MSG
    ):
        return
    rdata = tsx_state.src.rdata
    message = str(rdata.wholeMsg)
    content_type = (header(message, "Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/dtmf":
        return
    digit = dtmf_from_info(content_type, body(message))
    respond_in_dialog(rdata, 200 if digit is not None else 400)
    if digit is not None and call.leg in table.legs:
        table.emit(p.Digit(leg=call.leg, digit=digit, method="info"))


def _note_teardown(table: LegTable, call: LegCall, tsx_state: Any) -> None:
    """A response of a leg's INVITE (received when we called, sent when we answered): tell
    the pool how to end the leg should this process die (``worker_teardown``)."""
    leg = table.legs.get(call.leg)
    if leg is None:
        return
    if leg.inbound and tsx_state.type == pj.PJSIP_EVENT_TX_MSG:
        message = str(tsx_state.src.tdata.wholeMsg)
    elif not leg.inbound and tsx_state.type == pj.PJSIP_EVENT_RX_MSG:
        message = str(tsx_state.src.rdata.wholeMsg)
    else:
        return
    host = table.config.public_host
    via = (
        f"[{host}]:{table.config.listen_port}"
        if ":" in host
        else f"{host}:{table.config.listen_port}"
    )
    contact = str(call.getInfo().remoteContact) if leg.inbound else ""
    found = teardown(
        leg.leg_id,
        message,
        inbound=leg.inbound,
        remote_contact=contact,
        via=via,
        request_uri=leg.uri,
        proxy=table.config.outbound_proxy or "",
    )
    if found is not None:
        table.emit(found)
