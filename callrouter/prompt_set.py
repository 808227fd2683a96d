"""Every prompt the dialplans can play, so the audio is made once at start-up, not mid-call.

The whisper is assembled from pieces (intro, practice name, "about", specialty name, keys), so
practice and specialty names are prompts of their own and the set stays finite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import structlog

from callrouter.core.commands import Prompt
from callrouter.settings.compile import menu_prompts
from callrouter.settings.dialplan import Dialplan, Menu, PromptSpec
from callrouter.settings.loader import Settings
from callrouter.sip.prompts import PromptCache

log = structlog.get_logger("callrouter.prompts")


def _menus(menu: Menu) -> Iterable[Menu]:
    yield menu
    for option in menu.options:
        if option.submenu is not None:
            yield from _menus(option.submenu)


def dialplan_prompts(dialplan: Dialplan, specialty_names: dict[str, str]) -> list[Prompt]:
    found: list[Prompt] = []
    for _name, spec in dialplan.prompts:
        if isinstance(spec, PromptSpec):
            found.append(spec.as_prompt())
    for menu in _menus(dialplan.menu):
        found.extend(menu_prompts(menu, specialty_names))
    found.extend(Prompt(practice.name) for practice in dialplan.practices)
    found.extend(Prompt(specialty_names.get(s, s)) for s in dialplan.specialties)
    return found


def prompts_of(settings: Settings) -> list[Prompt]:
    """All prompts of all dialplans, without repeats, in a stable order."""
    names = dict(settings.config.specialties)
    seen: dict[Prompt, None] = {}
    for area in sorted(settings.dialplans):
        for prompt in dialplan_prompts(settings.dialplans[area], names):
            seen.setdefault(prompt, None)
    notice = recording_notice(settings)
    if notice is not None:
        seen.setdefault(notice, None)
    return list(seen)


def recording_notice(settings: Settings) -> Prompt | None:
    """What both parties hear before they talk when calls are recorded; None when not."""
    recording = settings.config.recording
    if recording is None or not recording.enabled:
        return None
    return Prompt(recording.notice)


class PreparedPrompts:
    """Prompt → WAV path from the cache; made ahead by ``prepare``. A prompt that was not made
    ahead (a bug) is made on the spot, logged, and kept."""

    def __init__(self, directory: Path) -> None:
        self._cache = PromptCache(directory)
        self._paths: dict[Prompt, str] = {}

    async def prepare(self, prompts: Iterable[Prompt]) -> int:
        wanted = list(prompts)
        paths = await asyncio.to_thread(self._make_all, wanted)
        self._paths.update(paths)
        return len(paths)

    def _make_all(self, prompts: list[Prompt]) -> dict[Prompt, str]:
        return {prompt: str(self._cache.path_for(prompt.text, prompt.file)) for prompt in prompts}

    def path_for(self, prompt: Prompt) -> str:
        path = self._paths.get(prompt)
        if path is None:
            log.warning("prompt_not_prepared", text=prompt.text)
            path = str(self._cache.path_for(prompt.text, prompt.file))
            self._paths[prompt] = path
        return path
