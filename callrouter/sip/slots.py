"""One worker's call slots, counted exactly. Pure bookkeeping for the pool (no I/O).

- A leg holds a slot from the moment the pool hands it to the worker (its ``Incoming``, or the
  ``Dial`` routed there) until the worker says pjsua is done with it (``LegClosed``): a
  cancelled INVITE keeps its pjsua call slot until the far end answers the CANCEL (or Timer B,
  32 s), so dropping a leg frees nothing by itself.
- Every admitted GP leg holds a **reservation**: one slot kept for its first consultant leg, so
  an admitted GP can always ring someone. While the GP's call has no consultant leg, its
  reservation counts as taken for everyone else.
- A ``Dial`` of a call whose worker is full for now (its own cancelled legs are still closing)
  **waits** here, and goes out as soon as a slot it may take frees (longest waiting first). It
  is never failed for want of a slot: that would read as a consultant's failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from callrouter.sip import protocol as p


class Placed(Enum):
    SENT = auto()  # the slot is taken: send the Dial to the worker
    WAITING = auto()  # held until a slot frees
    NO_SLOT = auto()  # nothing to wait for: fail it


@dataclass
class SlotBook:
    capacity: int = 0  # the worker's slots; 0 until it is ready
    legs: set[str] = field(default_factory=set)  # legs holding a slot
    owner: dict[str, str] = field(default_factory=dict)  # outbound leg -> its GP's leg
    reserved: set[str] = field(default_factory=set)  # GP legs holding a reservation
    waiting: dict[str, p.Dial] = field(default_factory=dict)  # in arrival order

    def __contains__(self, leg: str) -> bool:
        return leg in self.legs or leg in self.waiting

    def _unused_reservations(self, beside: str | None) -> int:
        holding = {gp for leg, gp in self.owner.items() if leg in self.legs}
        return len(self.reserved - holding - {beside} if beside else self.reserved - holding)

    def free_for(self, gp_leg: str | None = None) -> int:
        """Slots a dial of ``gp_leg``'s call (or anyone's, for None) may take now."""
        free = self.capacity - len(self.legs) - self._unused_reservations(gp_leg)
        return max(free, 0)

    @property
    def free(self) -> int:
        return self.free_for(None)

    @property
    def held(self) -> int:
        """Slots taken, kept for an admitted GP, or wanted by a waiting Dial (0: truly idle)."""
        return len(self.legs) + self._unused_reservations(None) + len(self.waiting)

    def reserve(self, gp_leg: str) -> bool:
        """Keep a slot for the first consultant leg of ``gp_leg``'s call, if there is one."""
        if gp_leg not in self.legs:
            return False
        if gp_leg in self.reserved:
            return True
        if self.free_for(gp_leg) < 1:
            return False
        self.reserved.add(gp_leg)
        return True

    def place(self, dial: p.Dial, gp_leg: str | None) -> Placed:
        if gp_leg is not None:
            self.owner[dial.leg] = gp_leg
        if self.free_for(gp_leg) > 0:
            self.legs.add(dial.leg)
            return Placed.SENT
        if gp_leg is not None and (gp_leg in self.reserved or self._has_legs(gp_leg)):
            self.waiting[dial.leg] = dial  # a slot will free: this call's, or one before it
            return Placed.WAITING
        self.owner.pop(dial.leg, None)
        return Placed.NO_SLOT

    def _has_legs(self, gp_leg: str) -> bool:
        return any(self.owner.get(leg) == gp_leg for leg in self.legs)

    def drop_waiting(self, leg: str) -> bool:
        """A waiting Dial was hung up before it went out."""
        if self.waiting.pop(leg, None) is None:
            return False
        self.owner.pop(leg, None)
        return True

    def closed(self, leg: str) -> list[p.Dial]:
        """pjsua is done with ``leg``: its slot is free. Returns the waiting Dials to send now."""
        self.legs.discard(leg)
        self.owner.pop(leg, None)
        self.reserved.discard(leg)
        ready: list[p.Dial] = []
        for waiting_leg, dial in list(self.waiting.items()):
            gp_leg = self.owner.get(waiting_leg)
            if self.free_for(gp_leg) < 1:
                continue  # its slot is not free yet; one waiting longer goes first
            del self.waiting[waiting_leg]
            self.legs.add(waiting_leg)
            ready.append(dial)
        return ready

    def clear(self) -> list[str]:
        """The worker is gone: every leg it held or was to hold."""
        lost = [*sorted(self.legs), *self.waiting]
        self.legs, self.owner, self.reserved, self.waiting = set(), {}, set(), {}
        self.capacity = 0  # until its successor is ready
        return lost
