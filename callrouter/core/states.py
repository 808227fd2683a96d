"""The states of one call, shared by the flow and its IVR half."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    OFFERED = "offered"
    GREETING = "greeting"
    NHS = "nhs"
    MENU = "menu"
    HUNTING = "hunting"
    BRIDGED = "bridged"
    SURVEY = "survey"
    FAREWELL = "farewell"
    ENDED = "ended"
