"""Consultant availability marks from the bus, with an optional expiry. Pure: ``now`` is given.

A mark says a member is (un)available, optionally ``until`` a POSIX instant: from then on it
no longer counts and is dropped the next time it is looked at. A member with no mark is
available (the rota decides).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mark:
    """One member's mark: available or not, until when (None: until changed), and who says so
    (as the publisher wrote it; the broker's ACLs are what make it trustworthy)."""

    available: bool
    until: float | None = None
    by: str | None = None

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until


class TooManyMarksError(OverflowError):
    """A new member's mark would take the table past its bound."""


class AvailabilityMarks:
    """The marks by member id, bounded in number."""

    def __init__(self, limit: int) -> None:
        self._marks: dict[str, Mark] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return f"<AvailabilityMarks {len(self._marks)} of {self._limit}>"

    def set(self, member_id: str, mark: Mark | None, now: float) -> bool:
        """Put (or, with None, clear) a member's mark; True if what counts changed.

        A mark that has already expired clears. Raises TooManyMarksError for a new member when
        the table is full (expired marks are dropped first to make room).
        """
        before = self.current(member_id, now)
        if mark is None or mark.expired(now):
            self._marks.pop(member_id, None)
        else:
            if member_id not in self._marks and len(self._marks) >= self._limit:
                self.drop_expired(now)
                if len(self._marks) >= self._limit:
                    raise TooManyMarksError(member_id)
            self._marks[member_id] = mark
        after = self._marks.get(member_id)
        return _effect(before) != _effect(after)

    def current(self, member_id: str, now: float) -> Mark | None:
        """The member's mark in force at ``now`` (an expired one is dropped)."""
        mark = self._marks.get(member_id)
        if mark is not None and mark.expired(now):
            del self._marks[member_id]
            return None
        return mark

    def is_available(self, member_id: str, now: float) -> bool:
        mark = self.current(member_id, now)
        return True if mark is None else mark.available

    def drop_expired(self, now: float) -> int:
        gone = [member for member, mark in self._marks.items() if mark.expired(now)]
        for member in gone:
            del self._marks[member]
        return len(gone)

    def snapshot(self, now: float) -> dict[str, bool]:
        self.drop_expired(now)
        return {member: mark.available for member, mark in self._marks.items()}


def _effect(mark: Mark | None) -> tuple[bool, float | None] | None:
    return None if mark is None else (mark.available, mark.until)
