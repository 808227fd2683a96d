"""Busy state shared between engine nodes: the engine's presence, told to and by the other
nodes over the bus (callrouter.adapters.mqtt_busy; the rules are callrouter.core.claims).

This node claims a consultant when it starts a leg to them, strengthens the claim when they pick
up and when they accept, and releases it when its last leg to them ends. A consultant another
node claims is busy for this node's hunt. When this node loses a race for a consultant (both
rang them before hearing of each other, and the other claim wins), its legs to them that are
still ringing are given up: cancelled, and ended as ``busy`` so nobody blames the consultant.
"""

from __future__ import annotations

from collections.abc import Callable

from callrouter.adapters.mqtt_busy import BusyShare
from callrouter.core import domain as d
from callrouter.core.claims import Phase
from callrouter.engine import EnginePresence
from callrouter.settings.config import Config

GiveUpLeg = Callable[[str, str], None]  # call id, core leg name (Engine.give_up_leg)


def busy_share(config: Config, on_race_lost: Callable[[], None]) -> BusyShare | None:
    """The bus channel for busy state, when config.yaml has a bus and shares busy state."""
    mqtt = config.mqtt
    if mqtt is None or not mqtt.share_busy:
        return None
    ttl = mqtt.busy_ttl_seconds
    return BusyShare(mqtt.topic_prefix, mqtt.client_id, ttl=ttl, on_race_lost=on_race_lost)


class SharedPresence(EnginePresence):
    """Busy = a live leg through this engine, an "unavailable" mark, or another node's claim."""

    def __init__(
        self, share: BusyShare, marked_available: Callable[[str], bool] | None = None
    ) -> None:
        super().__init__(marked_available)
        self._share = share
        self._ringing: dict[str, set[tuple[str, str]]] = {}  # member -> (call id, leg)
        self.give_up_leg: GiveUpLeg | None = None
        share.on_yield = self._give_up

    def is_available(self, member_id: str) -> bool:
        return super().is_available(member_id) and not self._share.busy_elsewhere(member_id)

    def observe(self, event: d.DomainEvent) -> None:
        super().observe(event)
        share = self._share
        match event:
            case d.LegStarted(call_id=call_id, leg=leg, member_id=member_id):
                self._ringing.setdefault(member_id, set()).add((call_id, leg))
                if share.hold(member_id, Phase.RINGING):
                    self._give_up(member_id)
            case d.LegPickedUp(call_id=call_id, leg=leg, member_id=member_id):
                self._not_ringing(member_id, call_id, leg)
                share.hold(member_id, Phase.ANSWERED)
            case d.Connected(member_id=member_id):
                share.hold(member_id, Phase.TALKING)
            case d.LegEnded(call_id=call_id, leg=leg, member_id=member_id):
                self._not_ringing(member_id, call_id, leg)
                if self.live[member_id] <= 0:
                    share.release(member_id)
            case _:
                pass

    def _not_ringing(self, member_id: str, call_id: str, leg: str) -> None:
        legs = self._ringing.get(member_id)
        if legs is not None:
            legs.discard((call_id, leg))
            if not legs:
                del self._ringing[member_id]

    def _give_up(self, member_id: str) -> None:
        """Another node won ``member_id``: end our legs to them that are still only ringing."""
        if self.give_up_leg is None:
            return
        for call_id, leg in sorted(self._ringing.get(member_id, ())):
            self.give_up_leg(call_id, leg)


def presence_for(
    share: BusyShare | None, marked_available: Callable[[str], bool] | None
) -> EnginePresence:
    """The engine's presence: shared with the other nodes when there is a ``share``."""
    if share is None:
        return EnginePresence(marked_available)
    return SharedPresence(share, marked_available)


def bind_presence(presence: EnginePresence, give_up_leg: GiveUpLeg) -> None:
    """Let a shared presence end legs that lost a race (the engine exists only after it)."""
    if isinstance(presence, SharedPresence):
        presence.give_up_leg = give_up_leg
