"""Small builders for rota tests: YAML text in (typed by the schema, as the loader does), models
and London instants out. Tests never read the clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from callrouter.core.localtime import instant
from callrouter.core.plan import Candidate
from callrouter.settings.rota import RotaFile, Rotas
from callrouter.settings.yaml_marks import parse_yaml

LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")


def rota_file(text: str) -> RotaFile:
    document, problems = parse_yaml(text)
    assert document is not None, problems
    assert not problems, problems
    return RotaFile.model_validate(document.data)


def rotas(*texts: str) -> Rotas:
    return Rotas.merge([rota_file(text) for text in texts])


def london(text: str) -> datetime:
    """A London wall-clock time, e.g. ``london("2026-03-29 08:00")``."""
    return instant(datetime.fromisoformat(text), LONDON).astimezone(LONDON)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ids(candidates: tuple[Candidate, ...]) -> list[str]:
    return [candidate.member_id for candidate in candidates]


def whys(candidates: tuple[Candidate, ...]) -> list[str]:
    return [candidate.why for candidate in candidates]


MEMBERS = """
members:
  - {id: ann, name: Dr A. Ash, uri: "sip:ann@127.0.0.1:5070"}
  - {id: bob, name: Dr B. Birch, uri: "sip:bob@127.0.0.1:5070"}
  - {id: cat, name: Dr C. Cedar, uri: "sips:cat@example.org"}
  - {id: dan, name: Dr D. Damson, uri: "tel:+442079460001"}
  - {id: eve, name: Dr E. Elm, uri: "sip:eve@[::1]:5070;transport=tcp"}
"""


def team(layers: str, overrides: str = "", team_id: str = "t", kind: str = "local") -> str:
    """A rota file with MEMBERS and one team; ``layers``/``overrides`` are YAML list items
    indented by four spaces."""
    text = MEMBERS + f"""
teams:
  - id: {team_id}
    specialty: dermatology
    kind: {kind}
    name: Test team
    layers:
{layers}"""
    if overrides:
        text += f"    overrides:\n{overrides}"
    return text


DAILY = """\
    - name: days
      members: [ann, bob, cat]
      rotation: {start: "2026-01-05 08:00", turn: daily, handoff: "08:00"}
"""

WEEKLY = """\
    - name: weeks
      members: [ann, bob, cat, dan]
      rotation: {start: "2026-01-05 08:00", turn: weekly}
"""

WEEKDAY_DAYS = """\
    - name: weekday-days
      members: [ann, bob, cat]
      rotation: {start: "2026-01-05 08:00", turn: weekly, handoff: "08:00"}
      restrictions:
        - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:30"}
      bank_holidays: skip
"""
