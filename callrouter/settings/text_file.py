"""Read one settings file (YAML or ICS) as text, or say exactly why not and where.

Only a regular file is read (a directory, FIFO or device is refused before it can block or
stream forever), at most ``MAX_FILE_BYTES``; the bytes must be UTF-8 (a leading byte order mark
is dropped) with no control characters. A problem inside the text comes with the 1-based
line:col of its first bad byte or character; a problem with the file as a whole is placed at
1:1, except a missing file, which has no position at all.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# The largest shipped file is a few kilobytes; a year of calendar is well under a megabyte.
MAX_FILE_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# What YAML allows in a stream (YAML 1.1 §5.1, as PyYAML and libyaml check it), less a byte
# order mark after the start; ICS is held to the same rule.
_NOT_ALLOWED = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class TextFileError(Exception):
    """Why a file cannot be used as text; ``line``/``col`` are 1-based, None for a missing file."""

    def __init__(self, message: str, line: int | None = 1, col: int | None = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return self.message if self.line is None else f"{self.line}:{self.col}: {self.message}"


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The file's text; ``TextFileError`` when it is missing, not a readable regular file, larger
    than ``limit`` bytes, not UTF-8 or holds a control character."""
    data = _read_bytes(path, limit)
    data = data.removeprefix(_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8")
        line, col = position_at(before, len(before))
        bad = data[error.start]
        reason = "is cut short" if error.reason == "unexpected end of data" else "is not valid"
        message = f"not UTF-8: byte 0x{bad:02x} {reason} UTF-8 (save the file as UTF-8)"
        raise TextFileError(message, line, col) from None
    found = _NOT_ALLOWED.search(text)
    if found is not None:
        line, col = position_at(text, found.start())
        code = ord(found.group())
        what = f"the character U+{code:04X}"
        if code == 0:
            what = "a NUL byte"
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            what = f"the control character U+{code:04X}"
        elif code == 0xFEFF:
            what = "a byte order mark (U+FEFF) after the start of the file"
        raise TextFileError(f"{what} is not allowed in a settings file", line, col)
    return text


def position_at(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of character ``offset`` in ``text``, counting line breaks as YAML
    does (``\\r\\n`` is one)."""
    breaks = list(_LINE_BREAK.finditer(text, 0, offset))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - start + 1


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        # Non-blocking, so a FIFO named as a settings file is refused, not waited on.
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TextFileError("file not found", None, None) from None
    except OSError as error:
        raise TextFileError(f"cannot read: {error.strerror or error}") from None
    except ValueError:  # a NUL in the path itself
        raise TextFileError("cannot read: the path holds a NUL character") from None
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise TextFileError("is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise TextFileError("is not a regular file (a device, pipe or socket?)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(handle, _CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise TextFileError(f"cannot read: {error.strerror or error}") from None
    finally:
        os.close(handle)
    return _too_large(b"".join(chunks), limit)


def _too_large(data: bytes, limit: int) -> bytes:
    """Raise for a file over ``limit`` bytes, at the line:col where the limit is crossed."""
    head = data[:limit].removeprefix(_BOM).decode("utf-8", errors="replace")
    line, col = position_at(head, len(head))
    message = f"larger than {limit:,} bytes: too big for a settings file"
    raise TextFileError(message, line, col)
