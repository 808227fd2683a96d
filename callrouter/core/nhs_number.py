"""NHS number validation: ten digits, the last a Modulus 11 check digit.

Weights 10..2 over the first nine digits; check = 11 - (sum mod 11); 11 becomes 0 and 10 means
the number is invalid (no NHS number is ever issued with it).
"""

from __future__ import annotations

NHS_NUMBER_LENGTH = 10


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine leading digits, or None when no valid number can start so."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(number: str) -> bool:
    """True for a ten-digit string whose last digit is the right Modulus 11 check digit."""
    if len(number) != NHS_NUMBER_LENGTH or not number.isdigit():
        return False
    expected = check_digit(number[:9])
    return expected is not None and expected == int(number[9])
