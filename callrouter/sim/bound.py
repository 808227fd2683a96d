"""The bound: the best any strategy could do with the same draws, computed offline.

Not a strategy: it reads every draw of every call and answers, per call, *could any strategy
have connected this call, and how soon at the earliest?* A call can only be connected through
a member of its hunt plan who

- answers it (their draw against their answer chance at the call's hour), within the policy's
  ring time (no strategy rings longer: the Hunter hangs a leg up at its ring time);
- is not away (an availability session) when rung: the earliest ring is at the choice, or when
  they are back, whichever is later;
- presses 1 after the whisper, whose length and the key delay are the world's own;
- does all that before the GP's drawn patience and the policy's max wait run out.

Its earliest connection is ring start + answer delay + whisper + key. Taking the fastest such
member per call, and ignoring everything that can only hold a strategy back (other calls
keeping members busy, the leg cap, the tier order, ring-outs before the right member is tried),
gives, **for every call and every strategy**: the call is connected only if the bound connects
it, and never sooner than the bound's time. So no strategy's FTCR exceeds the bound's, and a
strategy connecting K calls spends at least the K smallest bound times (tests check both, call
by call). Its rings count one leg per connected call plus a full ring for every member of the
earlier tiers when its pick is in a later tier (the tier promise, rung in full): what a
clairvoyant rule-keeping dialler would ring when nobody is busy.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from callrouter.core.commands import Prompt
from callrouter.core.hunting import WHISPER_ALLOWANCE_SECONDS
from callrouter.core.plan import HuntPlan
from callrouter.settings.compile import caller_directory
from callrouter.settings.dialplan import Dialplan, PromptSpec, UnknownCallerPolicy
from callrouter.sim.draws import CHUNK, Arrivals, AwaySpells, BehaviourChunk, behaviour_chunk
from callrouter.sim.report import Tally
from callrouter.sim.scenario import Line, Scenario
from callrouter.sim.world import (
    FREE_LEGS,
    GP_KEYS_AFTER_SECONDS,
    KEY_AFTER_WHISPER_SECONDS,
    SPOKEN_CHARS_PER_SECOND,
)

BOUND = "bound"


def whisper_seconds(dialplan: Dialplan, practice: str | None, specialty_name: str) -> float:
    """The whisper's spoken length, made of the same prompts as the call flow's whisper."""
    p = dialplan.prompts
    spoken = PromptSpec.as_prompt
    prompts = (
        spoken(p.whisper_intro),
        Prompt(practice) if practice else spoken(p.whisper_unknown_practice),
        spoken(p.whisper_about),
        Prompt(specialty_name),
        spoken(p.whisper_keys),
    )
    return sum(len(prompt.text) for prompt in prompts) / SPOKEN_CHARS_PER_SECOND


def _reaches_menu(scenario: Scenario, line: Line, now: float) -> bool:
    """Does a call on this line get past the greeting (open, caller allowed)?"""
    dialplan = scenario.dialplans[line.area]
    if not scenario.is_open(dialplan, now):
        return False
    known = caller_directory(dialplan).identify(scenario.callers[line.area]).known
    return known or dialplan.unknown_callers is not UnknownCallerPolicy.REJECT


@dataclass(frozen=True, slots=True)
class _Entry:
    """One call that reached the menu, with what the bound needs of it."""

    index: int
    which: int  # its line
    chosen: float  # when the specialty was chosen: the hunt starts
    window: float  # seconds the hunt can last: the GP's patience or the max wait
    plan: HuntPlan
    draws: tuple[BehaviourChunk, int]  # the chunk and this call's offset in it
    after_answer: float  # whisper + key
    tied_until: float  # no consultant can be on this call's legs or talk after this


def compute_bound(calls: Iterable[CallOptions], offered: int) -> Tally:
    """The bound's tally: per call (``each_call``), the earliest connection any strategy could
    make; ``offered`` is every call that arrived."""
    tally = Tally()
    tally.offered = offered
    for call in calls:
        spec = tally.specialty(call.specialty)
        spec.chosen += 1
        if not call.options:
            spec.gave_up += 1
            continue
        best = min(call.options, key=lambda option: option.seconds)  # the first of equals
        spec.connect_seconds[call.index] = best.seconds
        spec.per_member[best.member] = spec.per_member.get(best.member, 0) + 1
        spec.rings += 1 + sum(len(tier.members) for tier in call.plan.tiers[: best.position])
    return tally


@dataclass(frozen=True, slots=True)
class Option:
    """One member through whom a call could have been connected, at the earliest."""

    seconds: float  # from the choice to the key press
    position: int  # the member's tier
    member: str
    legs: int  # at least this many legs rung: the member's, after every certainly free member
    #            of the earlier tiers (the Hunter's rule 1)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """One call that reached the menu and every member who could have connected it."""

    index: int  # the call's index among the arrivals
    specialty: str
    plan: HuntPlan
    options: list[Option]


def each_call(
    scenario: Scenario,
    arrivals: Arrivals,
    *,
    seed: int,
    patience: tuple[float, float],
    call_length: tuple[float, float],
    away: Mapping[str, AwaySpells],
) -> Iterator[CallOptions]:
    """Each call that reached the menu, in arrival order, with its ``member_options``."""
    entries = _entries(scenario, arrivals, seed=seed, patience=patience, call_length=call_length)
    busy = _tied(scenario, entries)
    slots = [{m: i for i, m in enumerate(line.universe)} for line in scenario.lines]
    for entry in entries:
        options = member_options(
            scenario,
            (entry.plan, slots[entry.which]),
            entry.draws,
            arrivals.hours[entry.index],
            (entry.chosen, entry.window, entry.after_answer),
            away=away,
            free=busy.free_during(entry),
        )
        yield CallOptions(entry.index, scenario.lines[entry.which].specialty, entry.plan, options)


def _entries(
    scenario: Scenario,
    arrivals: Arrivals,
    *,
    seed: int,
    patience: tuple[float, float],
    call_length: tuple[float, float],
) -> list[_Entry]:
    width = max((len(line.universe) for line in scenario.lines), default=1) or 1
    whispers: dict[int, float] = {}
    gets_in: dict[tuple[int, int], bool] = {}
    chunk: BehaviourChunk | None = None
    out = []
    for index, arrived in enumerate(arrivals.times):
        if chunk is None or index - chunk.first >= CHUNK:
            chunk = behaviour_chunk(seed, index // CHUNK, width)
        which = arrivals.lines[index]
        line = scenario.lines[which]
        minute = (which, int(arrived // 60))
        if minute not in gets_in:
            gets_in[minute] = _reaches_menu(scenario, line, arrived)
        if not gets_in[minute]:
            continue
        if which not in whispers:
            dialplan = scenario.dialplans[line.area]
            practice = caller_directory(dialplan).identify(scenario.callers[line.area])
            name = scenario.specialty_names.get(line.specialty, line.specialty)
            whispers[which] = whisper_seconds(dialplan, practice.practice_name, name)
        chosen = arrived + GP_KEYS_AFTER_SECONDS
        plan = scenario.plans(line.area, line.specialty, chosen)
        policy = plan.policy
        at = index - chunk.first
        window = min(
            math.exp(patience[0] + patience[1] * chunk.patience_z[at]), policy.max_wait_seconds
        )
        talk = math.exp(call_length[0] + call_length[1] * chunk.length_z[at])
        # A leg answered just before the hunt ends may hear the whisper and wait for its key;
        # then the talk. A consultant cannot be held by this call past that.
        tied = chosen + window + WHISPER_ALLOWANCE_SECONDS + policy.confirm_seconds + talk + 1.0
        out.append(
            _Entry(
                index,
                which,
                chosen,
                window,
                plan,
                (chunk, at * width),
                whispers[which] + KEY_AFTER_WHISPER_SECONDS,
                tied,
            )
        )
    return out


class _Tied:
    """Per member, the spells some call could keep them busy: to tell who is certainly free."""

    def __init__(self, spells: dict[str, list[tuple[float, float, int]]]) -> None:
        self._spells = {m: sorted(found) for m, found in spells.items()}
        self._starts = {m: [s for s, _, _ in found] for m, found in self._spells.items()}
        self._longest = {
            m: max((e - s for s, e, _ in found), default=0.0) for m, found in self._spells.items()
        }

    def free_during(self, entry: _Entry) -> Callable[[str], bool]:
        def free(member: str) -> bool:
            return self.free(member, entry)

        return free

    def free(self, member: str, entry: _Entry) -> bool:
        """No other call could hold ``member`` while ``entry`` hunts: they are certainly free."""
        spells = self._spells.get(member)
        if not spells:
            return True
        begin, end = entry.chosen, entry.chosen + entry.window
        starts = self._starts[member]
        low = bisect.bisect_left(starts, begin - self._longest[member])
        high = bisect.bisect_right(starts, end)
        return not any(
            index != entry.index and spell_end >= begin for _, spell_end, index in spells[low:high]
        )


def _tied(scenario: Scenario, entries: list[_Entry]) -> _Tied:
    spells: dict[str, list[tuple[float, float, int]]] = {}
    for entry in entries:
        spell = (entry.chosen, entry.tied_until, entry.index)
        for member in scenario.lines[entry.which].universe:
            spells.setdefault(member, []).append(spell)
    return _Tied(spells)


def member_options(
    scenario: Scenario,
    plan_slots: tuple[HuntPlan, Mapping[str, int]],
    draws: tuple[BehaviourChunk, int],
    hour: int,
    timing: tuple[float, float, float],
    *,
    away: Mapping[str, AwaySpells],
    free: Callable[[str], bool],
) -> list[Option]:
    """Every member who could have connected this call, each at their earliest, in plan order.

    A member of a later tier can be rung only once every free member of the earlier tiers has
    been (the Hunter's rule 1), at most ``cap`` legs at once, each ringing its full ring time
    unless answered: with F the earlier-tier members certainly free (no other call could hold
    them), the later-tier leg needs |F| + 1 - cap of F's legs ended, so it cannot start before
    the (|F| + 1 - cap)-th shortest of their legs (answer delay if they would answer, else the
    ring time). Members who may be busy are assumed busy (skipped), which only helps.
    """
    plan, slots = plan_slots
    chunk, offset = draws
    chosen, window, after_answer = timing
    ring_seconds = plan.policy.ring_seconds
    cap = min(plan.policy.max_parallel, FREE_LEGS)
    out: list[Option] = []
    ends: list[float] = []  # leg lengths of the certainly free members of earlier tiers
    for position, tier in enumerate(plan.tiers):
        earliest = 0.0
        if len(ends) >= cap:
            earliest = sorted(ends)[len(ends) - cap]  # the (|F| + 1 - cap)-th shortest
        before = len(ends)
        for candidate in tier.members:
            member = candidate.member_id
            habit = scenario.behaviour[member]
            at = offset + slots[member]
            delay = habit.delay(chunk.delay_z[at])
            answers = chunk.answer_u[at] < habit.answers_at(hour) and delay <= ring_seconds
            if free(member):
                ends.append(delay if answers else ring_seconds)
            if not answers or chunk.accept_u[at] >= habit.accept_probability:
                continue
            spells = away.get(member)
            start = earliest if spells is None else spells.back_at(chosen + earliest) - chosen
            seconds = start + delay + after_answer
            if seconds <= window:
                out.append(Option(seconds, position, member, before + 1))
    return out
