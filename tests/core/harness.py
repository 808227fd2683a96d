"""A hand-driven call flow: a small dialplan, fake presence and plans, and a clock we advance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callrouter.core import commands as c
from callrouter.core import domain as d
from callrouter.core.callflow import CallFlow, Effect, FlowEnv
from callrouter.core.events import Event, Tick
from callrouter.core.learning import MemberStats
from callrouter.core.plan import Candidate, HuntPlan, Tier
from callrouter.core.strategies import strategy_named
from callrouter.settings.compile import compile_line, hunt_policy
from callrouter.settings.dialplan import Dialplan

T0 = 1_780_000_000.0  # a fixed instant: tests never read the clock

GP_NUMBER = "02081110001"


def dialplan(**overrides: Any) -> Dialplan:
    raw: dict[str, Any] = {
        "area": "barnet",
        "name": "Barnet GP advice",
        "numbers": ["02080000001"],
        "prompts": {"greeting": "Welcome to the Barnet advice line."},
        "practices": [{"id": "cherry-tree", "name": "Cherry Tree Surgery", "numbers": [GP_NUMBER]}],
        "menu": {
            "prompt": "Choose a specialty.",
            "options": [
                {"digits": "1", "specialty": "cardiology"},
                {"digits": "2", "specialty": "dermatology"},
                {
                    "digits": "9",
                    "submenu": {
                        "options": [
                            {"digits": "1", "specialty": "renal"},
                            {"digits": "22", "specialty": "ent"},
                        ]
                    },
                },
            ],
        },
        "hunt_defaults": {"strategy": "linear", "ring_seconds": 18, "loops": 1},
        "specialties": {
            "cardiology": {"tiers": ["barnet-cardiology", "ncn-cardiology"]},
            "dermatology": {"tiers": ["barnet-dermatology"], "strategy": "ringall"},
            "renal": {"tiers": ["barnet-renal"], "require_accept": False},
            "ent": {"tiers": ["barnet-ent"]},
        },
    }
    raw.update(overrides)
    return Dialplan.model_validate(raw)


def member(mid: str) -> Candidate:
    return Candidate(mid, mid.upper(), f"sip:{mid}@127.0.0.1", "layer test (primary)")


@dataclass
class FakePlans:
    """Plans by specialty: local tier then NCN tier, as a rota would give them."""

    tiers: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    dialplan: Dialplan | None = None

    def plan(self, area: str, specialty: str, now: float) -> HuntPlan:
        assert self.dialplan is not None
        policy = hunt_policy(self.dialplan.specialties[specialty])
        default = [("local", ["a1", "a2"]), ("ncn", ["n1"])]
        tiers = tuple(
            Tier(name, f"{name}-{specialty}", tuple(member(m) for m in members))
            for name, members in self.tiers.get(specialty, default)
        )
        return HuntPlan(area, specialty, policy, tiers)


@dataclass
class FakePresence:
    busy: set[str] = field(default_factory=set)

    def is_available(self, member_id: str) -> bool:
        return member_id not in self.busy


class Harness:
    """Drives one CallFlow; ``now`` moves only when a test says so."""

    def __init__(self, plan: Dialplan | None = None, *, is_open: bool = True) -> None:
        self.dialplan = plan or dialplan()
        self.plans = FakePlans(dialplan=self.dialplan)
        self.presence = FakePresence()
        self.stats = MemberStats()
        self.now = T0
        names = {"cardiology": "Cardiology", "dermatology": "Dermatology"}
        self.line = compile_line(self.dialplan, names)
        self.env = FlowEnv(
            lines={self.dialplan.area: self.line},
            plans=self.plans,
            presence=self.presence,
            stats=self.stats,
            strategy_for=lambda policy: strategy_named(policy.strategy.value),
            is_open=lambda _plan, _now: is_open,
            free_legs=lambda: 3,
            max_call_seconds=3600.0,
        )
        self.flow = CallFlow("c1", self.line, self.env, self.now)
        self.log: list[Effect] = []

    def send(self, event: Event, after: float = 0.0) -> list[Effect]:
        self.now += after
        out = self.flow.handle(event, self.now)
        self.log.extend(out)
        return out

    def advance_to_deadline(self) -> list[Effect]:
        """Jump to the flow's next deadline and tick."""
        deadline = self.flow.next_deadline()
        assert deadline is not None, "the flow asked for no deadline"
        assert deadline >= self.now
        self.now = deadline
        out = self.flow.handle(Tick(), self.now)
        self.log.extend(out)
        return out

    def commands(self, out: list[Effect]) -> list[c.Command]:
        return [e for e in out if not isinstance(e, d.DomainEvent.__args__)]  # type: ignore[attr-defined]

    def events(self, out: list[Effect]) -> list[d.DomainEvent]:
        return [e for e in out if isinstance(e, d.DomainEvent.__args__)]  # type: ignore[attr-defined]

    def of(self, kind: type, out: list[Effect] | None = None) -> list[Any]:
        return [e for e in (self.log if out is None else out) if isinstance(e, kind)]
