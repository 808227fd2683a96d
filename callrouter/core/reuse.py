"""Commands that recur from call to call, made once and shared.

Commands are frozen values compared by value, so handing out one shared instance is the same as
making a new equal one each time; the simulator pushes a million calls a minute through the flow,
and these few objects are made on every one of them otherwise. Caches are bounded: leg names,
reasons and prompt sets are few, but a settings reload leaves old prompt sets behind.
"""

from __future__ import annotations

from callrouter.core.commands import Answer, Bridge, Dial, Hangup, Play, Prompt, StopPlay
from callrouter.core.events import GP

ANSWER = Answer()
STOP_GP = StopPlay(GP)
_LIMIT = 4096

_HANGUPS: dict[tuple[str, str], Hangup] = {}
_BRIDGES: dict[tuple[str, str], Bridge] = {}
_PLAYS: dict[tuple[str, int], tuple[tuple[Prompt, ...], Play]] = {}
_DIALS: dict[tuple[str, str, str, str], Dial] = {}


def hangup(leg: str, reason: str) -> Hangup:
    found = _HANGUPS.get((leg, reason))
    if found is None:
        if len(_HANGUPS) > _LIMIT:
            _HANGUPS.clear()
        found = _HANGUPS[leg, reason] = Hangup(leg, reason)
    return found


def bridge(a: str, b: str) -> Bridge:
    found = _BRIDGES.get((a, b))
    if found is None:
        if len(_BRIDGES) > _LIMIT:
            _BRIDGES.clear()
        found = _BRIDGES[a, b] = Bridge(a, b)
    return found


def dial(leg: str, member_id: str, uri: str, display: str) -> Dial:
    """One per leg rung: the same leg names, members and practices recur from call to call."""
    key = (leg, member_id, uri, display)
    found = _DIALS.get(key)
    if found is None:
        if len(_DIALS) > _LIMIT:
            _DIALS.clear()
        found = _DIALS[key] = Dial(leg, member_id, uri, display)
    return found


def play_once(leg: str, prompts: tuple[Prompt, ...]) -> Play:
    """``Play(leg, prompts)`` for a prompt tuple that is itself shared (cached by identity)."""
    key = (leg, id(prompts))
    found = _PLAYS.get(key)
    if found is None or found[0] is not prompts:
        if len(_PLAYS) > _LIMIT:
            _PLAYS.clear()
        found = _PLAYS[key] = (prompts, Play(leg, prompts))
    return found[1]
