"""The base every settings model shares: frozen, strict about unknown fields; and the time zone
check config.yaml and the rotas share."""

from __future__ import annotations

import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A settings object: immutable once loaded; an unknown field is an error, not a typo lost."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# IANA names are letters, digits and '_+-' in '/'-separated parts; the longest is 32 characters.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,40}(/[A-Za-z0-9_+-]{1,40}){0,3}")
# Linux limits: one file or directory name, and a whole path.
NAME_MAX = 255
PATH_MAX = 4095
_ZONE_HINT = "(use an IANA name like 'Europe/London')"


def known_zone(name: str) -> str:
    """``name`` when it names a time zone; ValueError otherwise. Checked by shape before the
    zone database is asked, which would take it as a file path (a name of 300 characters is
    "File name too long", 'Europe' is a directory)."""
    shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
    if not _ZONE_NAME.fullmatch(name):
        raise ValueError(f"not a time zone name: {shown} {_ZONE_HINT}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"unknown time zone {shown} {_ZONE_HINT}") from error
    return name


def usable_path(value: Path) -> Path:
    """Refuse, at the value, what the file system would refuse later with an OSError."""
    written = str(value)
    if "\0" in written:
        raise ValueError("a path cannot hold a NUL character")
    if len(os.fsencode(written)) > PATH_MAX:
        raise ValueError(f"path longer than {PATH_MAX} bytes")
    for part in value.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            shown = f"{part[:40]!r}..." if len(part) > 40 else repr(part)
            raise ValueError(f"path part {shown} is longer than {NAME_MAX} bytes")
    return value
