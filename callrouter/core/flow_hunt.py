"""The HUNTING half of the call flow: dial whom the Hunter says, whisper, accept or move on.

A mixin so the call flow's table (callflow.py) can name these handlers. Legs are started here and
each is closed exactly once through ``FlowBase._close_leg``.
"""

from __future__ import annotations

from callrouter.core import domain as d
from callrouter.core.commands import Hangup, Play, Prompt, StopPlay
from callrouter.core.events import (
    GP,
    Digit,
    HungUp,
    LegAnswered,
    LegFailed,
    LegRinging,
    MediaTimeout,
    PromptDone,
)
from callrouter.core.flow_base import (
    BRIDGED,
    ENDED_PHASES,
    HUNTING,
    LEG_ACCEPTED,
    LEG_CLOSING,
    LEG_WHISPER,
    LIVE_PHASES,
    RESULT_CANCELLED,
    WHISPER_ALLOWANCE_SECONDS,
    FlowBase,
    IllegalEvent,
    spoken,
)
from callrouter.core.hunt import Ring
from callrouter.core.legs import UNANSWERED, Leg, LegPhase, result_for_status
from callrouter.core.reuse import STOP_GP, bridge, dial, hangup, play_once

_UNANSWERED = tuple(UNANSWERED)
_DECLINED, _NO_ANSWER = d.LegResult.DECLINED, d.LegResult.NO_ANSWER  # see flow_base
_LEG_NAMES = tuple(f"L{n}" for n in range(1, 33))  # "L1", "L2"…, made once
_WHISPERS: dict[tuple[int, str, str, Prompt | None], tuple[object, tuple[Prompt, ...]]] = {}


class HuntMixin(FlowBase):
    """Dialling, consultant leg reports, the whisper and the accept key."""

    def _dial(self, rings: list[Ring], now: float) -> None:
        out = self._out
        legs = self.legs
        display = self.caller.practice_name or "GP advice line"
        for ring in rings:
            count = len(legs)
            name = _LEG_NAMES[count] if count < len(_LEG_NAMES) else f"L{count + 1}"
            candidate = ring.candidate
            legs[name] = Leg(name, candidate, ring.tier, now, now + ring.ring_seconds)
            out.append(dial(name, candidate.member_id, candidate.uri, display))
            out.append(
                d.LegStarted(
                    self.call_id,
                    now,
                    name,
                    candidate.member_id,
                    candidate.uri,
                    ring.tier,
                    candidate.why,
                )
            )

    def _leg_lost(self, leg: Leg, result: d.LegResult, status: int, now: float) -> None:
        """A leg of the hunt failed: close it, ring whoever is next, or give up."""
        self._close_leg(leg, result, status, now)
        if self._state is HUNTING and self._hunter is not None:
            declined = result is _DECLINED
            rang_out = result is _NO_ANSWER
            member = leg.candidate.member_id
            self._dial(self._hunter.leg_done(member, declined, now, rang_out=rang_out), now)
            self._maybe_give_up(now)

    def _maybe_give_up(self, now: float) -> None:
        if self._state is HUNTING and self._hunter is not None and self._hunter.exhausted():
            self._give_up(d.EndReason.NOBODY_ACCEPTED, now)

    def _give_up(self, reason: d.EndReason, now: float) -> None:
        """End the hunt: cancel every leg, apologise to the GP, then hang up."""
        self._stop_hunt(RESULT_CANCELLED, now)
        self.emit(STOP_GP)
        self.farewell(spoken(self.dialplan.prompts.nobody), reason, now)

    def _on_ringing(self, event: LegRinging, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.DIALING:
            leg.phase = LegPhase.RINGING
            self._out.append(d.LegRang(self.call_id, now, leg.name))

    def _on_leg_answered(self, event: LegAnswered, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.phase is LEG_CLOSING:
            self.emit(hangup(leg.name, "answered after cancel"))  # 200 crossed our CANCEL
            return
        if leg.phase not in _UNANSWERED or self._state is not HUNTING:
            raise IllegalEvent(f"LegAnswered for {leg.name} in phase {leg.phase.value}")
        leg.phase = LEG_WHISPER
        leg.answered_at = now
        self._out.append(d.LegPickedUp(self.call_id, now, leg.name, leg.candidate.member_id))
        if self._hunter is not None:
            self._hunter.leg_answered(leg.candidate.member_id)
        policy = self._policy()
        if not policy.require_accept:
            self._accept(leg, now)
            return
        leg.deadline = now + WHISPER_ALLOWANCE_SECONDS + policy.confirm_seconds
        self._out.append(play_once(leg.name, self._whisper()))

    def _whisper(self) -> tuple[Prompt, ...]:
        """What the consultant hears; the same few tuples recur, so they are made once."""
        assert self.specialty is not None
        p = self.dialplan.prompts
        practice = self.caller.practice_name or ""
        notice = self.env.recording_notice
        key = (id(p), practice, self.specialty, notice)
        found = _WHISPERS.get(key)
        if found is not None and found[0] is p:
            return found[1]
        name = self.env.specialty_names.get(self.specialty, self.specialty)
        whisper = (
            spoken(p.whisper_intro),
            Prompt(practice) if practice else spoken(p.whisper_unknown_practice),
            spoken(p.whisper_about),
            Prompt(name),
            *(() if notice is None else (notice,)),
            spoken(p.whisper_keys),
        )
        if len(_WHISPERS) > 4096:
            _WHISPERS.clear()
        _WHISPERS[key] = (p, whisper)
        return whisper

    def _on_leg_failed(self, event: LegFailed, now: float) -> None:
        self._leg_over(self.legs[event.leg], result_for_status(event.status), event.status, now)

    def _on_hung_up(self, event: HungUp, now: float) -> None:
        if event.leg == GP:
            self._gp_left(now)
            return
        self._leg_over(self.legs[event.leg], d.LegResult.ERROR, 0, now)

    def _leg_over(self, leg: Leg, if_unanswered: d.LegResult, status: int, now: float) -> None:
        """The far side ended ``leg``: a report of one we ended, the winner leaving, or a loss."""
        phase, leg.phase = leg.phase, LegPhase.DONE
        if phase in ENDED_PHASES:
            return  # the report of a leg we already ended
        if phase is LegPhase.ACCEPTED:
            self._consultant_left(leg, now)
            return
        result = d.LegResult.HUNG_UP if phase is LegPhase.WHISPER else if_unanswered
        self._leg_lost(leg, result, status, now)

    def _on_media_timeout(self, event: MediaTimeout, now: float) -> None:
        if event.leg == GP:
            self._gp_gone = True
            self.emit(Hangup(GP, "media timeout"))
            self._finish(d.EndReason.MEDIA_TIMEOUT, now)
            return
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.ACCEPTED:
            self.emit(Hangup(leg.name, "media timeout"))
            leg.phase = LegPhase.CLOSING
            self._consultant_left(leg, now)
        elif leg.phase in LIVE_PHASES:
            self._leg_lost(leg, d.LegResult.ERROR, 0, now)

    def _on_digit_hunting(self, event: Digit, now: float) -> None:
        if event.leg == GP:
            return  # the GP is on hold: keys do nothing
        leg = self.legs[event.leg]
        if leg.phase is not LEG_WHISPER:
            return  # keys during ringing or the conversation are not ours
        if event.digit == "1":
            self._accept(leg, now)
        elif event.digit == "2":
            self._leg_lost(leg, d.LegResult.DECLINED, 0, now)
        else:
            self.emit(Play(leg.name, (spoken(self.dialplan.prompts.whisper_keys),)))

    def _on_prompt_done_hunting(self, event: PromptDone, now: float) -> None:
        if event.leg == GP:
            if self.gp_playing:
                self.gp_playing = False
                self.play_gp(spoken(self.dialplan.prompts.hold), loop=True)
            return
        leg = self.legs[event.leg]
        if leg.phase is LegPhase.WHISPER:
            leg.deadline = now + self._policy().confirm_seconds

    def _accept(self, leg: Leg, now: float) -> None:
        assert self.chosen_at is not None
        assert self.specialty is not None
        leg.phase = LEG_ACCEPTED
        leg.deadline = None
        self.winner = leg
        self._stop_hunt(RESULT_CANCELLED, now)
        self.state = BRIDGED
        self.connected_at = now
        out = self._out
        out.append(STOP_GP)
        self.gp_playing = False
        if self._policy().require_accept:
            out.append(StopPlay(leg.name))  # the whisper may still be playing: 1 barges in
        out.append(bridge(GP, leg.name))
        out.append(
            d.Connected(
                self.call_id,
                now,
                self.area,
                self.specialty,
                leg.name,
                leg.candidate.member_id,
                leg.tier,
                now - self.chosen_at,
            )
        )
        self._call_deadline = now + self.env.max_call_seconds
