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

import math
from collections.abc import Mapping

from callrouter.core.commands import Prompt
from callrouter.core.directory import CallerDirectory
from callrouter.core.flow_ivr import spoken
from callrouter.core.plan import HuntPlan
from callrouter.settings.dialplan import Dialplan, UnknownCallerPolicy
from callrouter.sim.draws import CHUNK, Arrivals, AwaySpells, BehaviourChunk, behaviour_chunk
from callrouter.sim.report import Tally
from callrouter.sim.scenario import Line, Scenario

BOUND = "bound"
GP_KEYS_AFTER_SECONDS = 3.0  # as the world: the specialty is chosen 3 s into the greeting
KEY_AFTER_WHISPER_SECONDS = 1.5
SPOKEN_CHARS_PER_SECOND = 14.0


def whisper_seconds(dialplan: Dialplan, practice: str | None, specialty_name: str) -> float:
    """The whisper's spoken length, made of the same prompts as the call flow's whisper."""
    p = dialplan.prompts
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
    known = CallerDirectory(dialplan).identify(scenario.callers[line.area]).known
    return known or dialplan.unknown_callers is not UnknownCallerPolicy.REJECT


def compute_bound(
    scenario: Scenario,
    arrivals: Arrivals,
    *,
    seed: int,
    patience: tuple[float, float],
    away: Mapping[str, AwaySpells],
) -> Tally:
    """The bound's tally: per call, the earliest connection any strategy could make."""
    tally = Tally()
    width = max((len(line.universe) for line in scenario.lines), default=1) or 1
    whispers: dict[int, float] = {}
    slots = [{m: i for i, m in enumerate(line.universe)} for line in scenario.lines]
    gets_in: dict[tuple[int, int], bool] = {}
    chunk: BehaviourChunk | None = None
    for index, arrived in enumerate(arrivals.times):
        if chunk is None or index - chunk.first >= CHUNK:
            chunk = behaviour_chunk(seed, index // CHUNK, width)
        tally.offered += 1
        which = arrivals.lines[index]
        line = scenario.lines[which]
        minute = (which, int(arrived // 60))
        if minute not in gets_in:
            gets_in[minute] = _reaches_menu(scenario, line, arrived)
        if not gets_in[minute]:
            continue
        chosen = arrived + GP_KEYS_AFTER_SECONDS
        spec = tally.specialty(line.specialty)
        spec.chosen += 1
        if which not in whispers:
            dialplan = scenario.dialplans[line.area]
            practice = CallerDirectory(dialplan).identify(scenario.callers[line.area])
            name = scenario.specialty_names.get(line.specialty, line.specialty)
            whispers[which] = whisper_seconds(dialplan, practice.practice_name, name)
        plan = scenario.plans(line.area, line.specialty, chosen)
        policy = plan.policy
        offset = (index - chunk.first) * width
        z = chunk.patience_z[index - chunk.first]
        window = min(math.exp(patience[0] + patience[1] * z), policy.max_wait_seconds)
        after_answer = whispers[which] + KEY_AFTER_WHISPER_SECONDS
        best = _fastest(
            scenario,
            (plan, slots[which]),
            (chunk, offset),
            arrivals.hours[index],
            (chosen, window, after_answer),
            away=away,
        )
        if best is None:
            spec.gave_up += 1
            continue
        seconds, position, member = best
        spec.connect_seconds[index] = seconds
        spec.per_member[member] = spec.per_member.get(member, 0) + 1
        spec.rings += 1 + sum(len(tier.members) for tier in plan.tiers[:position])
    return tally


def _fastest(
    scenario: Scenario,
    plan_slots: tuple[HuntPlan, Mapping[str, int]],
    draws: tuple[BehaviourChunk, int],
    hour: int,
    timing: tuple[float, float, float],
    *,
    away: Mapping[str, AwaySpells],
) -> tuple[float, int, str] | None:
    """(seconds, tier position, member) of the earliest possible connection, None if none."""
    plan, slots = plan_slots
    chunk, offset = draws
    chosen, window, after_answer = timing
    ring_seconds = plan.policy.ring_seconds
    best: tuple[float, int, str] | None = None
    for position, tier in enumerate(plan.tiers):
        for candidate in tier.members:
            member = candidate.member_id
            habit = scenario.behaviour[member]
            at = offset + slots[member]
            if chunk.answer_u[at] >= habit.answers_at(hour):
                continue
            if chunk.accept_u[at] >= habit.accept_probability:
                continue
            delay = habit.delay(chunk.delay_z[at])
            if delay > ring_seconds:
                continue
            spells = away.get(member)
            start = 0.0 if spells is None else spells.back_at(chosen) - chosen
            seconds = start + delay + after_answer
            if seconds <= window and (best is None or seconds < best[0]):
                best = (seconds, position, member)
    return best
