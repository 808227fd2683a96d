"""Write the example rotas shipped in ``rotas/``: one file per specialty, each holding the Barnet
and Enfield local teams, the National Consultant Network (NCN) team and their members.

The output is committed and meant to be read and edited by hand; run this again only to start
over (``python tools/gen_rotas.py rotas``). Every name is fictional and every URI is loopback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

SPECIALTIES: tuple[tuple[str, str, str], ...] = (
    # (slug, short code used in member ids, display name)
    ("cardiology", "card", "cardiology"),
    ("dermatology", "derm", "dermatology"),
    ("mental-health", "mh", "mental health"),
    ("paediatrics", "paed", "paediatrics"),
    ("gastroenterology", "gastro", "gastroenterology"),
    ("respiratory", "resp", "respiratory medicine"),
    ("diabetes-endocrinology", "diab", "diabetes and endocrinology"),
    ("neurology", "neuro", "neurology"),
    ("rheumatology", "rheum", "rheumatology"),
    ("urology", "uro", "urology"),
    ("gynaecology", "gyn", "gynaecology"),
    ("haematology", "haem", "haematology"),
    ("renal", "renal", "renal medicine"),
    ("elderly-care", "elder", "care of older people"),
    ("ent", "ent", "ear, nose and throat"),
    ("ophthalmology", "ophth", "ophthalmology"),
    ("general-surgery", "gensurg", "general surgery"),
    ("oncology", "onc", "oncology"),
)

SURNAMES = (
    "Patel", "Okafor", "Nowak", "Mensah", "Lindqvist", "Chen", "Haddad", "O'Brien", "Kowalski",
    "Adeyemi", "Fernandes", "MacLeod", "Rahman", "Novak", "Ibrahim", "Takahashi", "Murphy",
    "Achterberg", "Singh", "Walsh", "Osei", "Dimitrov", "Khan", "Moreau", "Eriksen", "Bianchi",
    "Hughes", "Nakamura", "Addo", "Kaur", "Reyes", "Petrov", "Gallagher", "Mwangi", "Sato",
    "Byrne", "Ahmed", "Costa", "Jensen", "Varga", "Owusu", "Schmidt", "Lam", "Farah", "Quinn",
    "Demir", "Abara", "Horvath", "Iyer", "Sorensen", "Mahmoud", "Kelly", "Rossi", "Nwosu",
)
INITIALS = "ABCDEFGHJKLMNPRSTVW"

START = "2026-01-05 08:00"  # a Monday: weekly turns hand off on Mondays at 08:00
WEEKDAY_DAYS = '{days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:30"}'


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str


class Names:
    """Hands out fictional names, never the same one twice."""

    def __init__(self) -> None:
        self._next = 0
        self._used: set[str] = set()

    def take(self) -> str:
        while True:
            n = self._next
            self._next += 1
            name = f"Dr {INITIALS[n % len(INITIALS)]}. {SURNAMES[(n * 7) % len(SURNAMES)]}"
            if name not in self._used:
                self._used.add(name)
                return name


def team_size(kind: str, index: int) -> int:
    if kind == "ncn":
        return 4 + index % 3  # 4-6
    return 3 + (index + (kind == "enfield")) % 2  # 3-4, the two areas out of step


def members_block(slug: str, people: list[Person]) -> list[str]:
    lines = []
    for person in people:
        lines += [
            f"  - id: {person.id}",
            f"    name: {person.name}",
            f'    uri: "sip:{person.id}@127.0.0.1:5070"',
            f"    specialties: [{slug}]",
        ]
    return lines


def weekday_layer(people: list[Person], turn: str, on_call: int | None) -> list[str]:
    lines = [
        "      - name: weekday-days",
        f"        members: [{', '.join(p.id for p in people)}]",
        f'        rotation: {{start: "{START}", turn: {turn}, handoff: "08:00"}}',
    ]
    if on_call is not None:
        lines.append(f"        on_call: {on_call}   # primary and {on_call - 1} backups")
    lines += [
        "        restrictions:",
        f"          - {WEEKDAY_DAYS}",
        "        bank_holidays: skip",
    ]
    return lines


def extras(team_id: str, people: list[Person]) -> tuple[list[str], list[str]]:
    """Layers before the weekday one, and overrides, for the teams that show those features."""
    before: list[str] = []
    overrides: list[str] = []
    if team_id == "barnet-dermatology":
        before = [
            "      # The Tuesday skin clinic's consultant is asked first (an ICS calendar).",
            "      - name: tuesday-clinic",
            "        ics: barnet-dermatology-clinic.ics",
            "        restrictions:",
            f"          - {WEEKDAY_DAYS}",
            "        bank_holidays: skip",
        ]
        overrides = [
            '      - from: "2026-03-02 08:00"',
            '        to: "2026-03-09 08:00"',
            f"        member: {people[0].id}",
            f"        replaces: {people[2].id}",
            "        reason: annual leave",
        ]
    if team_id == "enfield-cardiology":
        overrides = [
            '      - from: "2026-12-21 08:00"     # no "replaces": put first, ahead of the rota',
            '        to: "2026-12-24 18:30"',
            "        member: m-card-ncn-2",
            "        reason: winter pressures cover",
        ]
    if team_id in {"ncn-cardiology", "ncn-paediatrics", "ncn-mental-health"}:
        ids = ", ".join(p.id for p in people)
        before = [
            "      - name: bank-holidays",
            f"        members: [{ids}]",
            '        rotation: {start: "2026-01-01 09:00", turn: daily, handoff: "09:00"}',
            "        on_call: 2",
            "        restrictions:",
            '          - {days: [mon, tue, wed, thu, fri, sat, sun], from: "09:00", to: "17:00"}',
            "        bank_holidays: only",
        ]
    return before, overrides


@dataclass(frozen=True, slots=True)
class TeamSpec:
    id: str
    specialty: str
    kind: str
    name: str
    people: list[Person]
    turn: str
    on_call: int | None = None


def team_block(team: TeamSpec) -> list[str]:
    before, overrides = extras(team.id, team.people)
    lines = [
        f"  - id: {team.id}",
        f"    specialty: {team.specialty}",
        f"    kind: {team.kind}",
        f"    name: {team.name}",
        "    layers:",
        *before,
        *weekday_layer(team.people, team.turn, team.on_call),
    ]
    if overrides:
        lines += ["    overrides:", *overrides]
    return lines


def specialty_file(index: int, slug: str, code: str, title: str, names: Names) -> str:
    groups: dict[str, list[Person]] = {}
    for group in ("barnet", "enfield", "ncn"):
        size = team_size(group, index)
        groups[group] = [Person(f"m-{code}-{group}-{n}", names.take()) for n in range(1, size + 1)]
    lines = [
        f"# {title.capitalize()}: the Barnet and Enfield local teams, then the National Consultant",
        "# Network team both areas fall back to. Times are Europe/London wall-clock, quoted.",
        "# Written by tools/gen_rotas.py; edit freely. Reference: docs/rota-reference.md",
        "",
        "members:",
    ]
    for group in ("barnet", "enfield", "ncn"):
        lines += members_block(slug, groups[group])
    lines += ["", "teams:"]
    teams = (
        TeamSpec(f"barnet-{slug}", slug, "local", f"Barnet Hospital {title}", groups["barnet"],
                 "weekly"),
        TeamSpec(f"enfield-{slug}", slug, "local", f"Chase Farm Hospital {title}",
                 groups["enfield"], "daily"),
        TeamSpec(f"ncn-{slug}", slug, "ncn", f"National Consultant Network {title}",
                 groups["ncn"], "daily", on_call=3),
    )
    for team in teams:
        lines += team_block(team)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "rotas")
    out.mkdir(parents=True, exist_ok=True)
    names = Names()
    for index, (slug, code, title) in enumerate(SPECIALTIES):
        (out / f"{slug}.yaml").write_text(specialty_file(index, slug, code, title, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
