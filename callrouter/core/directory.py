"""Who is calling: caller-ID lookup of registered practices and clinicians, one per line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    practice_id: str | None
    practice_name: str | None
    clinician: str | None

    @property
    def known(self) -> bool:
        return self.practice_id is not None


UNKNOWN = CallerIdentity(None, None, None)


def normalise_number(number: str) -> str:
    """A caller or called number in one comparable form: UK national (0…) digits only."""
    digits = re.sub(r"[^0-9+]", "", number)
    if digits.startswith("+44"):
        return "0" + digits[3:]
    if digits.startswith("0044"):
        return "0" + digits[4:]
    return digits.lstrip("+")


class CallerDirectory:
    """Maps a caller number (normalised on the way in) to the practice registered for it."""

    __slots__ = ("_by_number",)

    def __init__(self, by_number: Mapping[str, CallerIdentity]) -> None:
        self._by_number = {normalise_number(n): who for n, who in by_number.items()}

    def __repr__(self) -> str:
        return f"<CallerDirectory numbers={len(self._by_number)}>"

    def identify(self, caller: str) -> CallerIdentity:
        return self._by_number.get(normalise_number(caller), UNKNOWN)
