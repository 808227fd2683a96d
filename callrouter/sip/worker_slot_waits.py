"""Dials the worker has no pjsua call slot for yet (or no room in its new-call budget, see
``worker_screen.InviteBudget``). pjsua frees a closed call's slot a moment
after it reports DISCONNECTED, and a refused INVITE's once its answer is sent: a Dial that comes
in that moment waits here, is tried again after each poll, and fails with 503 only once it has
waited ``patience`` seconds. Each waiting Dial counts as a taken slot, as the pool counts it."""

from __future__ import annotations

from collections.abc import Callable

from callrouter.sip import protocol as p

PATIENCE_SECONDS = 2.0


class SlotWaits:
    def __init__(self, clock: Callable[[], float], patience: float = PATIENCE_SECONDS) -> None:
        self._clock = clock
        self._patience = patience
        self._waiting: dict[str, tuple[p.Dial, float]] = {}  # leg -> Dial, give up at

    def __len__(self) -> int:
        return len(self._waiting)

    def wait(self, dial: p.Dial, give_up_at: float | None) -> bool:
        """Keep ``dial`` for another try; False once it has waited long enough (fail it)."""
        now = self._clock()
        until = now + self._patience if give_up_at is None else give_up_at
        if now >= until:
            return False
        self._waiting[dial.leg] = (dial, until)
        return True

    def drop(self, leg: str) -> bool:
        """Hung up while it waited: it never goes out."""
        return self._waiting.pop(leg, None) is not None

    def take(self) -> list[tuple[p.Dial, float]]:
        """Every waiting Dial, with when to give up on it, to be tried again now."""
        waiting = list(self._waiting.values())
        self._waiting.clear()
        return waiting
