"""Who is calling: caller-ID lookup of registered practices and clinicians, one per dialplan."""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.settings.dialplan import Dialplan, normalise_number


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    practice_id: str | None
    practice_name: str | None
    clinician: str | None

    @property
    def known(self) -> bool:
        return self.practice_id is not None


UNKNOWN = CallerIdentity(None, None, None)


class CallerDirectory:
    """Maps a normalised caller number to the practice (and clinician) registered for it."""

    def __init__(self, dialplan: Dialplan) -> None:
        self._by_number: dict[str, CallerIdentity] = {}
        for practice in dialplan.practices:
            for number in practice.numbers:
                self._by_number[normalise_number(number)] = CallerIdentity(
                    practice.id, practice.name, None
                )
            for clinician in practice.clinicians:
                for number in clinician.numbers:
                    self._by_number[normalise_number(number)] = CallerIdentity(
                        practice.id, practice.name, clinician.name
                    )

    def identify(self, caller: str) -> CallerIdentity:
        return self._by_number.get(normalise_number(caller), UNKNOWN)
