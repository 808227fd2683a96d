"""Busy state shared between engine nodes over the bus, so two nodes never ring one consultant.
The rules (claims, their order, the race, expiry) are callrouter.core.claims; this is the wire.

Topics, under the bus prefix (member ids as in the rotas; no names or numbers):

- ``<prefix>/busy/<node_id>/<member_id>`` — retained, QoS 1: this node's claim on the member,
  ``{"phase": "ringing" | "answered" | "talking", "at": <POSIX s>, "until": <POSIX s>}``;
  an empty retained message releases it. Claims are republished every ``ttl / 6`` seconds
  with a fresh ``until`` (so one that is never released stops counting after ``ttl``), and all
  of them after each reconnect. A retained claim in our own name that we do not hold (left by
  an earlier run of this node) is cleared when it arrives.
- ``<prefix>/node/<node_id>/status`` — read here: a node whose status says ``offline`` (its
  Last Will, or a clean stop) loses its claims at once.

``at`` and ``until`` are wall-clock seconds, so the nodes' clocks must agree to well under
``ttl`` (NTP). The tie-break needs no agreement: every node orders the same two claims alike.
Each node needs its own ``mqtt.client_id`` (it is the node id).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Final

import structlog

from callrouter.adapters.mqtt_channel import LEVEL, Publish, Reject
from callrouter.adapters.mqtt_payloads import RejectedPayload, decode_json_object
from callrouter.core.claims import Claim, ClaimBook, Phase, TooManyClaimsError

log = structlog.get_logger("callrouter.mqtt")

DEFAULT_TTL: Final = 60.0
MAX_CLAIM_BYTES: Final = 256
MAX_STATUS_BYTES: Final = 512
_PHASES: Final = {phase.name.lower(): phase for phase in Phase}


def claim_payload(claim: Claim) -> bytes:
    body = {"phase": claim.phase.name.lower(), "at": claim.at, "until": claim.until}
    return json.dumps(body).encode()


def parse_claim(node: str, member_id: str, payload: bytes) -> Claim | None:
    """A claim message as a ``Claim``; None for an empty (released) one. RejectedPayload else."""
    text, body = decode_json_object(payload, MAX_CLAIM_BYTES)
    if not text:
        return None
    if body is None or set(body) != {"phase", "at", "until"} or body["phase"] not in _PHASES:
        raise RejectedPayload("bad_shape", repr(text[:40]))
    at, until = body["at"], body["until"]
    for value in (at, until):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise RejectedPayload("bad_shape", "'at' and 'until' must be POSIX seconds")
    return Claim(node, member_id, _PHASES[body["phase"]], float(at), float(until))


def parse_status(payload: bytes) -> str | None:
    """A node status's ``state`` (``online``/``offline``), None when it is empty."""
    text, body = decode_json_object(payload, MAX_STATUS_BYTES)
    if not text:
        return None
    state = None if body is None else body.get("state")
    if state not in {"online", "offline"}:
        raise RejectedPayload("bad_shape", repr(text[:40]))
    return str(state)


class BusyShare:
    """This node's claims out, the other nodes' claims in (see the module docstring)."""

    def __init__(
        self,
        prefix: str,
        node_id: str,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        on_race_lost: Callable[[], None] | None = None,
    ) -> None:
        if not LEVEL.match(node_id):
            raise ValueError(f"node id {node_id!r}: one topic level of [A-Za-z0-9_.-]")
        self.node_id = node_id
        self._busy = f"{prefix}/busy/"
        self._node = f"{prefix}/node/"
        self._book = ClaimBook(node_id, ttl)
        self._clock = clock
        self._publish: Publish = lambda _topic, _payload, _retain: None
        self._reject: Reject = lambda _reason, _size: None
        # Called with a member id when a race is lost: end our ringing legs to them.
        self.on_yield: Callable[[str], None] | None = None
        self.yielded = 0  # races lost (legs given up to another node)
        self._on_race_lost = on_race_lost  # the metric
        self._yielding: set[str] = set()  # members given up, until our claim is released

    def __repr__(self) -> str:
        return f"<BusyShare {self._book!r}>"

    @property
    def ttl(self) -> float:
        return self._book.ttl

    @property
    def filters(self) -> tuple[str, ...]:
        return (self._busy + "+/+", self._node + "+/status")

    def topic(self, member_id: str, node_id: str | None = None) -> str:
        return f"{self._busy}{node_id or self.node_id}/{member_id}"

    def attach(self, publish: Publish, reject: Reject) -> None:
        self._publish = publish
        self._reject = reject

    def wants(self, topic: str) -> bool:
        return topic.startswith((self._busy, self._node))

    def on_connected(self) -> None:
        for claim in self._book.renew_all(self._clock()):
            self._send(claim)

    async def maintain(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 6)
            now = self._clock()
            for claim in self._book.refresh(now):
                self._send(claim)
            self._book.drop_expired(now)

    # -- what the engine calls ---------------------------------------------------------------

    def hold(self, member_id: str, phase: Phase) -> bool:
        """Claim (or strengthen our claim on) ``member_id``; True when a claim of another node
        already beats it, so the leg must be given up at once (said once per claim: later
        verdicts against it go to ``on_yield`` only if it was not given up yet)."""
        now = self._clock()
        claim = self._book.claim(member_id, phase, now)
        if claim is not None:
            self._send(claim)
        if member_id in self._yielding or not self._book.must_yield(member_id, now):
            return False
        self._lost_race(member_id)
        return True

    def release(self, member_id: str) -> None:
        self._yielding.discard(member_id)
        if self._book.release(member_id):
            self._publish(self.topic(member_id), b"", True)

    def busy_elsewhere(self, member_id: str) -> bool:
        return self._book.busy_elsewhere(member_id, self._clock())

    def claims_elsewhere(self) -> dict[str, list[str]]:
        """Member id -> the other nodes claiming them now."""
        return self._book.others(self._clock())

    def _send(self, claim: Claim) -> None:
        self._publish(self.topic(claim.member_id), claim_payload(claim), True)

    # -- messages ----------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        if topic.startswith(self._node):
            self._on_status(topic[len(self._node) :], payload)
            return
        levels = topic[len(self._busy) :].split("/")
        if len(levels) != 2 or not all(LEVEL.match(level) for level in levels):
            self._reject("bad_topic", len(payload))
            return
        node, member_id = levels
        try:
            claim = parse_claim(node, member_id, payload)
        except RejectedPayload as rejected:
            self._reject(rejected.reason, len(payload))
            return
        if node == self.node_id:
            if claim is not None and self._book.own(member_id) is None:
                self._publish(topic, b"", True)  # left by an earlier run of this node
            return
        if claim is None:
            self._book.cleared(node, member_id)
            return
        try:
            must_yield = self._book.seen(claim, self._clock())
        except TooManyClaimsError:
            self._reject("too_many_members", len(payload))
            return
        if must_yield and member_id not in self._yielding:  # once per claim of ours
            self._lost_race(member_id)
            log.warning("busy_race_lost", member_id=member_id, to_node=node, phase=claim.phase.name)
            if self.on_yield is not None:
                self.on_yield(member_id)

    def _lost_race(self, member_id: str) -> None:
        self._yielding.add(member_id)
        self.yielded += 1
        if self._on_race_lost is not None:
            self._on_race_lost()

    def _on_status(self, rest: str, payload: bytes) -> None:
        node = rest.removesuffix("/status")
        if node == self.node_id or not LEVEL.match(node):
            return
        try:
            state = parse_status(payload)
        except RejectedPayload as rejected:
            self._reject(rejected.reason, len(payload))
            return
        if state == "offline":
            dropped = self._book.node_offline(node)
            log.info("bus_node_offline", node=node, claims_dropped=dropped)
        elif state == "online":
            self._book.node_online(node)
