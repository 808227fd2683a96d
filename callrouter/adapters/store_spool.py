"""The spool: records the database could not take yet, kept in order in a file of their own.

What "durable when the disk is full" honestly means here
---------------------------------------------------------
A record is durable once it is in a file and ``fdatasync`` has returned. When the disk holding
the database is full, a file on that same disk can only take the record if its blocks were
taken *before* the disk filled. So the spool file is preallocated (``posix_fallocate``,
``reserve_bytes``, 32 MiB by default: a record takes ~200 bytes, so more than the 100,000
records ``max_events`` allows) when the store opens, while there is room; later appends write
into blocks that are already ours and need no free space (ext4 keeps a reserve of its own for
the extent bookkeeping such writes can need). Its default place is next to the
database (the state directory: the same durability as the records, so it survives a power cut,
unlike /run); ``directory`` can put it on another filesystem instead, and then appends beyond
the reservation keep working as long as *that* filesystem has room.

If even the spool cannot take a record (reservation used up and no room left), the record is
still kept in memory, in order, and written to the database when it can be; it is only lost if
the process dies before then, and that is logged as an error and counted as dropped at shutdown.
Past ``max_events`` records waiting, new records are dropped: counted and logged, never silently.

File format
-----------
One record per line: ``<crc32 hex> <json>\\n``; the JSON holds the spool's epoch (a random id
given when an empty spool takes its first record), a sequence number, the record type and its
fields. The caller's number is masked before it is spooled, as the database stores it. The data
ends at the first NUL byte: the rest of the file is the zeroed reservation. A torn or damaged
line ends the data too (its checksum fails, or its epoch or sequence number does not follow
on). Once every record has reached the database the used part is zeroed again, so the
reservation is kept.

Replay writes each record in the same transaction as the high-water mark ``(epoch, seq)`` in the
``spool_marks`` table; replay after a crash skips what the mark says is written, so nothing is
written twice and nothing is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import json
import os
import typing
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import structlog

from callrouter.adapters.masking import mask_number
from callrouter.adapters.store_statements import AuditRecord, CloseInterrupted, Record
from callrouter.core.domain import CallOffered, DomainEvent

log = structlog.get_logger("callrouter.records")

MIB: Final = 1024 * 1024
DIRECTORY_MODE: Final = 0o750
FILE_MODE: Final = 0o600  # it holds NHS numbers, as the database does
_CHUNK: Final = MIB

_RECORD_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (*typing.get_args(DomainEvent), CloseInterrupted, *typing.get_args(AuditRecord))
}


@dataclass(frozen=True, slots=True)
class SpoolOptions:
    """Where the spool lives and how much it may hold; see the module docstring for why."""

    directory: Path | None = None  # None: next to the database file
    max_events: int = 100_000
    reserve_bytes: int = 32 * MIB
    retry_min_seconds: float = 0.5
    retry_max_seconds: float = 15.0
    close_flush_seconds: float = 5.0  # at shutdown, write what is waiting for at most this long

    def path_for(self, database: Path) -> Path:
        directory = database.parent if self.directory is None else self.directory
        return directory / f"{database.name}.spool"


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    epoch: str
    seq: int
    record: Record


class SpoolFormatError(ValueError):
    """A spool line that is not one we wrote whole."""


class SpoolInUseError(RuntimeError):
    """Another process holds the spool (and so, presumably, writes the same database)."""


def ensure_directory(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0750 (less any umask bits)."""
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIRECTORY_MODE)


# -- one line per record ------------------------------------------------------------------------


def encode(entry: SpoolEntry) -> bytes:
    record = entry.record
    if isinstance(record, CallOffered):  # stored masked, so spooled masked (masking is idempotent)
        record = dataclasses.replace(record, caller=mask_number(record.caller))
    body = json.dumps(
        {
            "epoch": entry.epoch,
            "seq": entry.seq,
            "type": type(record).__name__,
            "fields": dataclasses.asdict(record),
        },
        separators=(",", ":"),
    ).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> SpoolEntry:
    """One line without its newline; raises ``SpoolFormatError`` if it is not whole and ours."""
    crc, _, body = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(body):
            msg = "checksum does not match"
            raise SpoolFormatError(msg)
        data = json.loads(body)
        cls = _RECORD_TYPES[data["type"]]
        hints = typing.get_type_hints(cls)
        fields = data["fields"]
        kwargs = {}
        for field in dataclasses.fields(cls):
            value, hint = fields[field.name], hints[field.name]
            is_enum = isinstance(hint, type) and issubclass(hint, enum.Enum)
            kwargs[field.name] = hint(value) if is_enum else value
        return SpoolEntry(str(data["epoch"]), int(data["seq"]), cls(**kwargs))
    except (ValueError, KeyError, TypeError) as exc:
        raise SpoolFormatError(str(exc)) from exc


def parse(data: bytes) -> tuple[list[SpoolEntry], int]:
    """The whole records at the start of ``data`` and the offset just after the last one."""
    entries: list[SpoolEntry] = []
    end = 0
    head = data.split(b"\0", 1)[0]
    while (newline := head.find(b"\n", end)) != -1:
        try:
            entry = decode(head[end:newline])
        except SpoolFormatError as exc:
            log.error("spool_damaged_line", offset=end, error=str(exc), kept=len(entries))
            break
        # One epoch, rising numbers (gaps are records written before they could be spooled).
        if entries and (entry.epoch != entries[-1].epoch or entry.seq <= entries[-1].seq):
            log.error("spool_out_of_sequence", offset=end, kept=len(entries))
            break
        entries.append(entry)
        end = newline + 1
    return entries, end


# -- the file -----------------------------------------------------------------------------------


class SpoolFile:
    """An open, locked, preallocated spool file. Blocking calls: run them off the event loop."""

    def __init__(self, path: Path, fd: int, end: int, last: SpoolEntry | None) -> None:
        self.path = path
        self._fd = fd
        self._end = end
        self._epoch = None if last is None else last.epoch
        self._next_seq = 0 if last is None else last.seq + 1

    @classmethod
    def open(cls, path: Path, reserve_bytes: int) -> tuple[Self, list[SpoolEntry]]:
        """Lock the spool at ``path`` (creating it), reserve its space, return what it holds."""
        ensure_directory(path.parent)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                msg = f"spool {path} is in use by another process writing the same records"
                raise SpoolInUseError(msg) from None
            data = _read_all(fd)
            entries, end = parse(data)
            if (garbage_end := len(data.rstrip(b"\0"))) > end:  # a torn last write: clear it
                _zero(fd, end, garbage_end)
                os.fdatasync(fd)
            try:
                if reserve_bytes > len(data):
                    os.posix_fallocate(fd, 0, reserve_bytes)
            except OSError as exc:
                log.error(
                    "spool_reserve_failed", path=str(path), bytes=reserve_bytes, error=str(exc)
                )
            if created:
                _fsync_directory(path.parent)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, end, entries[-1] if entries else None), entries

    def __repr__(self) -> str:
        return f"<SpoolFile {str(self.path)!r} used={self._end}>"

    @property
    def used_bytes(self) -> int:
        return self._end

    def entry(self, record: Record) -> SpoolEntry:
        """Number the next record (a new epoch if the spool is empty)."""
        if self._epoch is None:
            self._epoch = uuid.uuid4().hex
        entry = SpoolEntry(self._epoch, self._next_seq, record)
        self._next_seq += 1
        return entry

    def append(self, data: bytes) -> None:
        """Write ``data`` after the last record and sync it; on OSError none of it counts."""
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], self._end + written)
            os.fdatasync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):  # overwriting our own blocks needs no free space
                _zero(self._fd, self._end, self._end + written)
            raise
        self._end += written

    def reset(self) -> None:
        """Every record has reached the database: zero the used part, keep the reservation."""
        _zero(self._fd, 0, self._end)
        os.fdatasync(self._fd)
        self._end = 0
        self._epoch = None
        self._next_seq = 0

    def close(self) -> None:
        os.close(self._fd)  # releases the lock


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _zero(fd: int, start: int, end: int) -> None:
    while start < end:
        start += os.pwrite(fd, bytes(min(_CHUNK, end - start)), start)


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
