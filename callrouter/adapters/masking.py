"""Masking of phone numbers: shared by the call records and the log processor."""

from __future__ import annotations

import re
from typing import Final

KEEP: Final = 3  # trailing digits left readable, enough to tell two callers apart by ear

# A run of 7+ digits, optionally with a leading +: long enough to be a phone (or NHS) number,
# short numbers such as ports, status codes and counts are left alone.
NUMBER_RUN: Final = re.compile(r"\+?\d{7,}")


def mask_number(text: str) -> str:
    """Replace every character but the last three with ``*``: 07700900123 → ********123."""
    if len(text) <= KEEP:
        return text
    return "*" * (len(text) - KEEP) + text[-KEEP:]


def mask_numbers_in(text: str) -> str:
    """Mask every run of 7+ digits inside free text."""
    return NUMBER_RUN.sub(lambda match: mask_number(match.group()), text)


def mask_all_digits(text: str) -> str:
    """Mask every digit but the last three, wherever they sit (``"07700 900123"``)."""
    digits = sum(ch.isdigit() for ch in text)
    to_mask = digits - KEEP
    out = []
    for ch in text:
        if ch.isdigit() and to_mask > 0:
            out.append("*")
            to_mask -= 1
        else:
            out.append(ch)
    return "".join(out)
