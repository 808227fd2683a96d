"""Deterministic ways to break a settings file, for the fuzz test: each takes the file's bytes and
a seeded ``random.Random`` and returns new bytes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Mutator = Callable[[bytes, random.Random], bytes]


def _line_starts(data: bytes) -> list[int]:
    return [0, *(found.end() for found in re.finditer(rb"\n(?=.)", data, re.DOTALL))]


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    """Two line starts (or the end), in order."""
    starts = [*_line_starts(data), len(data)]
    first, second = sorted(rng.sample(starts, 2)) if len(starts) > 1 else (0, len(data))
    return first, second


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    """A key whose value nests 30 to 3,000 levels deep, in flow or block style."""
    depth = rng.randint(30, 3000)
    if rng.random() < 0.5:
        opener, closer = rng.choice([(b"[", b"]"), (b"{a: ", b"}")])
        insert = b"deep: " + opener * depth + b"x" + closer * depth + b"\n"
    else:
        insert = b"".join(b" " * level + b"k%d:\n" % level for level in range(min(depth, 400)))
    at = rng.choice(_line_starts(data))
    return data[:at] + insert + data[at:]


def long_value(data: bytes, rng: random.Random) -> bytes:
    """One value (after some ``: ``) replaced by hundreds to tens of thousands of characters:
    plain, path-like, zone-like or with escaped NULs."""
    colons = [found.end() for found in re.finditer(rb": ", data)]
    at = rng.choice(colons) if colons else len(data)
    end = data.find(b"\n", at)
    end = len(data) if end < 0 else end
    size = rng.choice([256, 300, 1000, 5000, 70_000])
    value = rng.choice(
        [b"a" * size, b"d/" * (size // 2), b"Europe/" + b"L" * size, b'"\\0' + b"x" * size + b'"']
    )
    return data[:at] + value + data[end:]


def non_utf8(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    junk = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 3)))
    return data[:at] + junk + data[at:]


def control(data: bytes, rng: random.Random) -> bytes:
    """A NUL, another control character or a tab, anywhere."""
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytes([rng.choice([0, 1, 7, 8, 0x0B, 0x0C, 0x1B, 0x7F, 0x09])]) + data[at:]


def flip(data: bytes, rng: random.Random) -> bytes:
    """One to five random bits flipped."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def duplicate(data: bytes, rng: random.Random) -> bytes:
    """A run of lines copied to another line start."""
    first, second = _span(data, rng)
    at = rng.choice([*_line_starts(data), len(data)])
    return data[:at] + data[first:second] + data[at:]


def delete(data: bytes, rng: random.Random) -> bytes:
    first, second = _span(data, rng)
    return data[:first] + data[second:]


def alias_bomb(data: bytes, rng: random.Random) -> bytes:
    """ "Billion laughs": each level a list of aliases to the level below."""
    width, levels = rng.randint(5, 12), rng.randint(4, 9)
    lines = [b"l0: &l0 [" + b", ".join([b"x"] * width) + b"]"]
    lines += [
        b"l%d: &l%d [" % (n, n) + b", ".join([b"*l%d" % (n - 1)] * width) + b"]"
        for n in range(1, levels)
    ]
    return data + b"\n" + b"\n".join(lines) + b"\n"


def tab(data: bytes, rng: random.Random) -> bytes:
    """Two spaces of indentation become a tab."""
    starts = [s for s in _line_starts(data) if data[s : s + 2] == b"  "]
    if not starts:
        return b"\t" + data
    at = rng.choice(starts)
    return data[:at] + b"\t" + data[at + 2 :]


MUTATORS: tuple[Mutator, ...] = (
    deep_nesting,
    long_value,
    non_utf8,
    control,
    flip,
    truncate,
    duplicate,
    delete,
    alias_bomb,
    tab,
)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, tuple[str, ...]]:
    """One to three mutations in a row, and their names."""
    names: list[str] = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutator = rng.choice(MUTATORS)
        data = mutator(data or b"\n", rng)
        names.append(mutator.__name__)
    return data, tuple(names)
