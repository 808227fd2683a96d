"""Named timers of one call: each name holds at most one absolute instant."""

from __future__ import annotations


class Timers:
    """``set`` arms (or moves) a timer, ``clear`` disarms it, ``due`` takes it when its time has
    come, ``soonest`` is the earliest armed instant. ``repr`` lists them in firing order."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def __repr__(self) -> str:
        armed = " ".join(f"{name}@{at:g}" for name, at in sorted(self._at.items(), key=_when))
        return f"<Timers {armed}>"

    def set(self, name: str, at: float) -> None:
        self._at[name] = at

    def clear(self, *names: str) -> None:
        for name in names:
            self._at.pop(name, None)

    def clear_all(self) -> None:
        self._at.clear()

    def at(self, name: str) -> float | None:
        return self._at.get(name)

    def due(self, name: str, now: float) -> bool:
        """True (and the timer disarmed) when ``name`` is armed for ``now`` or earlier."""
        at = self._at.get(name)
        if at is None or at > now:
            return False
        del self._at[name]
        return True

    def soonest(self) -> float | None:
        return min(self._at.values(), default=None)


def _when(item: tuple[str, float]) -> float:
    return item[1]
