"""The base every settings model shares: frozen, strict about unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A settings object: immutable once loaded; an unknown field is an error, not a typo lost."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
