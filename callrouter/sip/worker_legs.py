"""The worker's call legs: pjsua2 callbacks in, protocol events out, commands carried out.

Everything here runs on the pj thread. Every pjsua2 callback goes through ``LegTable.guard`` so
an exception is reported as a ``Log`` event instead of leaving a call half-handled. The table
holds the only references to ``LegCall`` objects and drops one when pjsua reports it
DISCONNECTED (pjsua reuses call slots, so legs are keyed by our own ids).
"""

from __future__ import annotations

import contextlib
import itertools
import traceback
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from callrouter.sip import protocol as p
from callrouter.sip.worker_call import Leg, LegCall
from callrouter.sip.worker_config import WorkerConfig
from callrouter.sip.worker_endpoint import Stack
from callrouter.sip.worker_ipc import Inbox, Outbox, PlayerEof
from callrouter.sip.worker_media import Players
from callrouter.sip.worker_recorder import Recorders
from callrouter.sip.worker_screen import InviteBudget
from callrouter.sip.worker_sipmsg import (
    header,
    name_addr,
    quote_display,
    request_uri_user,
    split_host_port,
)
from callrouter.sip.worker_slot_waits import SlotWaits
from callrouter.sip.worker_transactions import on_transaction

_SHUTDOWN_STATUS = 503  # unanswered inbound legs when the worker stops


class LegTable:
    """All legs of this worker, and the commands that act on them."""

    def __init__(
        self,
        config: WorkerConfig,
        stack: Stack,
        inbox: Inbox,
        outbox: Outbox,
        clock: Callable[[], float],
        *,
        budget: InviteBudget | None = None,
    ) -> None:
        self.config = config
        self.budget = InviteBudget() if budget is None else budget  # the gate's, shared
        self.stack = stack
        self.outbox = outbox
        self.clock = clock
        self.legs: dict[str, Leg] = {}
        self.slot_waits = SlotWaits(clock)  # Dials waiting for a pjsua call slot being freed
        self._inbound_numbers = itertools.count(1)
        self.players = Players(inbox=inbox, on_error=self._play_error)
        self.recorders = Recorders()
        stack.account.on_incoming = lambda prm: self.guard(self.on_incoming, prm)
        stack.endpoint.on_refused = lambda prm: self.guard(self.on_refused, prm)

    # ------------------------------------------------------------------ plumbing

    @property
    def free(self) -> int:
        return max(self.stack.slots - len(self.legs) - len(self.slot_waits), 0)

    def emit(self, event: p.Event) -> None:
        self.outbox.send(event)

    def guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run a callback; report, never raise, whatever goes wrong inside it."""
        try:
            fn(*args)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.emit(p.Log(level=1, message=f"callback {fn.__name__} failed: {detail}"))

    # ------------------------------------------------------------------ commands

    def handle(self, item: p.Command | PlayerEof) -> None:
        """Carry out one command from the engine (or a player's end-of-file)."""
        try:
            self._dispatch(item)
        except _CommandFailed as exc:
            self.emit(p.CommandError(command=type(item).__name__, leg=exc.leg, message=exc.text))
        except pj.Error as exc:
            leg = str(getattr(item, "leg", getattr(item, "a", "")))
            self.emit(p.CommandError(command=type(item).__name__, leg=leg, message=exc.info()))

    def _dispatch(self, item: p.Command | PlayerEof) -> None:
        match item:
            case PlayerEof():
                leg = self.legs.get(item.leg)
                if leg is not None and self.players.on_eof(item, leg.audio, self.clock()):
                    self.emit(p.PlayDone(leg=item.leg))
            case p.Answer(leg=leg_id):
                self._answer(self._inbound_unanswered(leg_id))
            case p.Reject():
                self._reject(item, self._inbound_unanswered(item.leg))
            case p.Play(leg=leg_id):
                self._play(self._leg(leg_id), item)
            case p.StopPlay(leg=leg_id):
                leg = self._leg(leg_id)
                leg.pending_play = None
                self.players.stop(leg_id, leg.audio, self.clock())
            case p.Dial():
                self._dial(item)
            case p.Hangup(leg=leg_id) if self.slot_waits.drop(leg_id):
                self.emit(p.LegClosed(leg=leg_id))  # never went out
            case p.Hangup(leg=leg_id, status=status):
                self._hangup(self._leg(leg_id), status)
            case p.Bridge(a=a, b=b, record=record):
                self._bridge(self._leg(a), self._leg(b), record)
            case p.Ping(token=token):
                self.emit(p.Pong(token=token))
            case p.Shutdown():
                pass  # handled by the main loop

    def _leg(self, leg_id: str) -> Leg:
        leg = self.legs.get(leg_id)
        if leg is None:
            raise _CommandFailed(leg_id, "no such leg (never existed or already closed)")
        return leg

    def _inbound_unanswered(self, leg_id: str) -> Leg:
        leg = self._leg(leg_id)
        if not leg.inbound or leg.answer_sent or leg.ended_by_us:
            raise _CommandFailed(leg_id, "not an unanswered inbound leg")
        return leg

    def _answer(self, leg: Leg) -> None:
        op = pj.CallOpParam()
        op.statusCode = 200
        leg.call.answer(op)
        leg.answer_sent = True

    def _reject(self, cmd: p.Reject, leg: Leg) -> None:
        if not 300 <= cmd.status < 700:
            raise _CommandFailed(cmd.leg, f"reject status {cmd.status} is not 3xx-6xx")
        op = pj.CallOpParam()
        op.statusCode = cmd.status
        if cmd.reason:
            op.reason = cmd.reason
        if cmd.retry_after is not None:
            retry = pj.SipHeader()
            retry.hName = "Retry-After"
            retry.hValue = str(cmd.retry_after)
            headers = pj.SipHeaderVector()
            headers.append(retry)
            op.txOption.headers = headers
        leg.ended_by_us = True
        leg.call.hangup(op)

    def _play(self, leg: Leg, cmd: p.Play) -> None:
        if leg.audio is None:
            leg.pending_play = cmd  # started when the media comes up
            return
        leg.pending_play = None
        if self.players.start(leg.leg_id, cmd.files, cmd.loop, leg.audio, self.clock()):
            self.emit(p.PlayDone(leg=leg.leg_id))

    def _dial(self, cmd: p.Dial, give_up_at: float | None = None) -> None:
        if cmd.leg in self.legs:
            raise _CommandFailed(cmd.leg, "leg id already in use")
        # No slot, or its media sockets would exhaust the ioqueue (the budget): wait for room.
        short = "no free call slot" if self.free == 0 else None
        if short is None and not self.budget.take(self.clock()):
            short = "too many new calls"
        if short is not None:
            if not self.slot_waits.wait(cmd, give_up_at):
                self._fail_at_once(cmd.leg, 503, short)
            return
        call = LegCall(self.stack.account, self, cmd.leg, pj.PJSUA_INVALID_ID)
        leg = Leg(leg_id=cmd.leg, call=call, inbound=False, uri=cmd.uri)
        self.legs[cmd.leg] = leg  # before makeCall: its callbacks may fire inside it
        op = pj.CallOpParam(True)
        op.txOption.localUri = self._from_uri(cmd)
        try:
            call.makeCall(cmd.uri, op)
        except pj.Error as exc:
            if self.legs.pop(cmd.leg, None) is None:
                return  # a callback inside makeCall already ended the leg and reported it
            too_many = "too many" in exc.info().lower()  # PJ_ETOOMANY: a slot is being freed
            if not (too_many and self.slot_waits.wait(cmd, give_up_at)):
                self._fail_at_once(cmd.leg, 503 if too_many else 500, exc.info())
            return
        self.emit(p.Slots(free=self.free))

    def _from_uri(self, cmd: p.Dial) -> str:
        host = self.config.public_host
        host = f"[{host}]" if ":" in host else host
        user = cmd.caller_user or self.config.user
        uri = f"<sip:{user}@{host}:{self.config.listen_port}>"
        return f"{quote_display(cmd.caller_display)} {uri}" if cmd.caller_display else uri

    def _fail_at_once(self, leg_id: str, status: int, reason: str) -> None:
        self.emit(p.Failed(leg=leg_id, status=status, reason=reason))
        self.emit(p.LegClosed(leg=leg_id))

    def _hangup(self, leg: Leg, status: int) -> None:
        op = pj.CallOpParam()
        if leg.inbound and not leg.answer_sent:
            op.statusCode = status or 480
        leg.ended_by_us = True
        leg.call.hangup(op)

    def _bridge(self, a: Leg, b: Leg, record: str) -> None:
        if a is b:
            raise _CommandFailed(a.leg_id, "cannot bridge a leg to itself")
        for leg, peer in ((a, b), (b, a)):
            if leg.bridged_to not in (None, peer.leg_id):
                raise _CommandFailed(leg.leg_id, f"already bridged to {leg.bridged_to}")
        a.bridged_to, b.bridged_to = b.leg_id, a.leg_id
        if record:
            failed = self.recorders.start(a.leg_id, b.leg_id, record, self.clock())
            if failed is not None:
                self.emit(failed)  # the call goes on, unrecorded
        self._connect_bridge(a)  # or, if media is not up yet, when it comes up

    def _connect_bridge(self, leg: Leg) -> None:
        peer = self.legs.get(leg.bridged_to or "")
        if peer is not None and leg.audio is not None and peer.audio is not None:
            leg.audio.startTransmit(peer.audio)
            peer.audio.startTransmit(leg.audio)
            self.recorders.feed(leg.leg_id, leg.audio)
            self.recorders.feed(peer.leg_id, peer.audio)

    def _play_error(self, leg: str, message: str) -> None:
        self.emit(p.CommandError(command="Play", leg=leg, message=message))

    # ------------------------------------------------------------------ pjsua2 callbacks

    def on_incoming(self, prm: Any) -> None:
        """180 and ``Incoming`` (403 outside the allow-list where the gate is off); anything
        failing once the call is ours ends it with 500, so no bad message holds a slot."""
        leg_id = f"{self.config.worker_id}-in-{next(self._inbound_numbers)}"
        call = LegCall(self.stack.account, self, leg_id, prm.callId)
        self.legs[leg_id] = leg = Leg(leg_id=leg_id, call=call, inbound=True)
        try:
            self._offer(leg, str(prm.rdata.wholeMsg), str(prm.rdata.srcAddress))
        except Exception:
            with contextlib.suppress(pj.Error):  # already on its way out
                self._hangup(leg, 500)  # unanswered inbound: that status, quietly
            raise

    def _offer(self, leg: Leg, message: str, source: str) -> None:
        source_host, source_port = split_host_port(source)
        display, user = name_addr(header(message, "From") or "")
        if not self.config.allows(source_host):
            self._hangup(leg, 403)
            self.emit(p.Refused(403, user, request_uri_user(message), source_host))
            return
        ringing = pj.CallOpParam()
        ringing.statusCode = 180
        leg.call.answer(ringing)
        self.emit(
            p.Incoming(
                leg=leg.leg_id,
                from_user=user,
                from_display=display,
                to_user=request_uri_user(message),
                source_host=source_host,
                source_port=source_port,
                sip_call_id=header(message, "Call-ID") or "",
            )
        )
        self.emit(p.Slots(free=self.free))

    def on_refused(self, prm: Any) -> None:
        message = str(prm.rdata.wholeMsg) if prm.rdata is not None else ""
        self.emit(
            p.Refused(
                status=int(prm.statusCode),
                from_user=name_addr(header(message, "From") or "")[1],
                to_user=request_uri_user(message),
                source_host=split_host_port(str(prm.rdata.srcAddress))[0] if message else "",
            )
        )

    def on_state(self, call: LegCall) -> None:
        leg = self.legs.get(call.leg)
        if leg is None:
            return
        info = call.getInfo()
        state = info.state
        if state == pj.PJSIP_INV_STATE_EARLY and not leg.inbound:
            status = int(info.lastStatusCode)
            if 180 <= status < 200 and status != leg.ring_status:
                leg.ring_status = status
                self.emit(p.Ringing(leg=leg.leg_id, status=status))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and not leg.answered:
            leg.answered = True
            leg.last_rx_at = self.clock()
            self.emit(p.Answered(leg=leg.leg_id))
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._closed(leg, int(info.lastStatusCode), str(info.lastReason))

    def _closed(self, leg: Leg, status: int, reason: str) -> None:
        self.players.stop(leg.leg_id, leg.audio, self.clock())
        audio_of = {leg_id: other.audio for leg_id, other in self.legs.items()}
        self.recorders.stop(leg.leg_id, audio_of, self.clock())
        peer = self.legs.get(leg.bridged_to or "")
        if peer is not None:
            peer.bridged_to = None
        if not leg.ended_by_us:
            if leg.answered:
                self.emit(p.HungUp(leg=leg.leg_id, status=status))
            else:
                self.emit(p.Failed(leg=leg.leg_id, status=status or 500, reason=reason))
        del self.legs[leg.leg_id]  # the table held the only reference to the Call
        self.emit(p.LegClosed(leg=leg.leg_id))
        self.emit(p.Slots(free=self.free))

    def on_media(self, call: LegCall) -> None:
        leg = self.legs.get(call.leg)
        if leg is None:
            return
        info = call.getInfo()  # keep it alive: SWIG proxies of its members point into it
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.audioConfSlot < 0:
                continue
            if media.status not in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                continue
            leg.audio = call.getAudioMedia(media.index)
            leg.audio_index = media.index
            leg.on_hold = media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            if leg.pending_play is not None:
                self._play(leg, leg.pending_play)
            else:
                self.players.reconnect(leg.leg_id, leg.audio)
            self._connect_bridge(leg)
            return

    def on_dtmf(self, call: LegCall, digit: str, method: int) -> None:
        if call.leg in self.legs:
            how: p.DtmfMethod = "info" if method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            self.emit(p.Digit(leg=call.leg, digit=digit, method=how))

    def on_transaction(self, call: LegCall, prm: Any) -> None:
        on_transaction(self, call, prm)

    # ------------------------------------------------------------------ housekeeping

    def retry_dials(self) -> None:
        """After each poll: the Dials waiting for a call slot, tried again."""
        for cmd, until in self.slot_waits.take():
            self._dial(cmd, until)

    def tick(self, now: float) -> None:
        """Once a second: media timeouts, destroying retired players, closed recordings."""
        self.players.purge(now)
        for recorded in self.recorders.poll(now):
            self.emit(recorded)
        if self.config.media_timeout > 0:
            for leg in list(self.legs.values()):
                self._check_media(leg, now)

    def _check_media(self, leg: Leg, now: float) -> None:
        if not leg.answered or leg.audio_index < 0 or leg.ended_by_us:
            return
        try:
            stat = leg.call.getStreamStat(leg.audio_index)
        except pj.Error:
            return
        rtcp = stat.rtcp  # one name per level: a member proxy dangles once its parent is freed
        received = rtcp.rxStat
        packets = int(received.pkt)
        if packets != leg.rx_packets or leg.on_hold:
            leg.rx_packets, leg.last_rx_at, leg.timeout_sent = packets, now, False
        elif not leg.timeout_sent and now - leg.last_rx_at >= self.config.media_timeout:
            leg.timeout_sent = True
            self.emit(p.MediaTimeout(leg=leg.leg_id))

    def hangup_all(self) -> None:
        """End every leg (worker shutdown): CANCEL, BYE, or 503 for unanswered inbound."""
        for leg in list(self.legs.values()):
            if leg.ended_by_us:
                continue
            with contextlib.suppress(pj.Error):  # already on its way out
                self._hangup(leg, _SHUTDOWN_STATUS)

    def drop_all(self) -> None:
        """Forget every leg and player (the last step before libDestroy)."""
        self.players.close_all()
        self.recorders.close_all()
        for leg in self.legs.values():
            leg.audio = None
        self.legs.clear()


class _CommandFailed(Exception):
    def __init__(self, leg: str, text: str) -> None:
        super().__init__(text)
        self.leg = leg
        self.text = text
