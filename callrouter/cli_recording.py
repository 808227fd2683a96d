"""``callrouter keygen``, ``recording get|purge`` and ``nhs-number``: what the key seals.

``get`` decrypts one call's recording to a WAV: a wrong key or a file changed by even one byte is
a one-line error, exit 1, and no output file. ``purge`` removes recordings of calls older than
``recording.retention_days`` and marks their records ``purged``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import TextIO

from callrouter.adapters.sealing import KeyLoadError, SealError, SealingKey, open_field
from callrouter.adapters.store_sqlite import CallStore
from callrouter.cli_common import Subparsers, add_config_argument, settings_or_exit
from callrouter.recordings import RecordingArchive
from callrouter.settings.config import Config
from callrouter.sinks import nhs_context

EXIT_FAILED = 1
SECONDS_PER_DAY = 86_400


def add_recording_commands(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    keygen = subparsers.add_parser(
        "keygen", help="make the key that seals recordings and NHS numbers (security.key_file)"
    )
    add_config_argument(keygen)
    keygen.add_argument("path", nargs="?", type=Path, help="where (default: security.key_file)")
    keygen.add_argument(
        "--if-missing", action="store_true", help="do nothing if the file exists already"
    )
    keygen.set_defaults(func=run_keygen)

    recording = subparsers.add_parser("recording", help="call recordings: get one, purge old")
    actions = recording.add_subparsers(dest="recording_action", required=True)
    get = actions.add_parser("get", help="decrypt one call's recording to a WAV file")
    add_config_argument(get)
    get.add_argument("call_id")
    get.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.wav")
    get.add_argument("--force", action="store_true", help="replace OUT.wav if it exists")
    get.set_defaults(func=run_get)
    purge = actions.add_parser("purge", help="remove recordings older than the retention")
    add_config_argument(purge)
    purge.add_argument("--db", type=Path, help="override database.path")
    purge.add_argument(
        "--older-than-days", type=int, help="override recording.retention_days", metavar="DAYS"
    )
    purge.set_defaults(func=run_purge)

    nhs = subparsers.add_parser(
        "nhs-number", help="open the sealed NHS number of one call (needs the key)"
    )
    add_config_argument(nhs)
    nhs.add_argument("call_id")
    nhs.add_argument("--db", type=Path, help="override database.path")
    nhs.set_defaults(func=run_nhs_number)


def _fail(what: str, message: str, stderr: TextIO) -> int:
    print(f"callrouter {what}: {message}", file=stderr)
    return EXIT_FAILED


def run_keygen(args: argparse.Namespace) -> int:
    path: Path | None = args.path
    if path is None:
        path = settings_or_exit(args.config).config.security.key_file
        if path is None:
            return _fail("keygen", "no security.key_file in the config: name a PATH", sys.stderr)
    if path.exists():
        if args.if_missing:
            return 0
        return _fail("keygen", f"{path} exists; a new key would orphan what it sealed", sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 in one step: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(SealingKey.generate().text() + "\n")
    print(f"wrote a new key to {path}; back it up apart from the recordings", file=sys.stderr)
    return 0


def _archive(config: Config) -> RecordingArchive:
    recording = config.recording
    if recording is None:
        raise KeyLoadError("this config records nothing (no recording: section)")
    security = config.security
    key = SealingKey.load(security.key_file, security.key_env)

    async def nowhere(_event: object) -> None:  # reading needs no sink
        return None

    return RecordingArchive(recording.directory, key, nowhere)


def run_get(args: argparse.Namespace) -> int:
    config = settings_or_exit(args.config).config
    out: Path = args.output
    if out.exists() and not args.force:
        return _fail("recording get", f"{out} exists; pass --force to replace it", sys.stderr)
    try:
        size = _archive(config).open(args.call_id, out)
    except (KeyLoadError, SealError, FileNotFoundError) as error:
        return _fail("recording get", str(error), sys.stderr)
    print(f"wrote {out}: {size} bytes", file=sys.stderr)
    return 0


def run_purge(args: argparse.Namespace) -> int:
    config = settings_or_exit(args.config).config
    recording = config.recording
    if recording is None:
        return _fail("recording purge", "this config records nothing", sys.stderr)
    days = recording.retention_days if args.older_than_days is None else args.older_than_days
    db: Path = args.db or config.database.path
    if not db.exists():
        return _fail("recording purge", f"no call-record database at {db}", sys.stderr)
    removed = asyncio.run(_purge(db, time.time() - days * SECONDS_PER_DAY))
    print(f"purged {removed} recordings older than {days} days", file=sys.stdout)
    return 0


async def _purge(db: Path, before: float) -> int:
    async with await CallStore.open(db) as store:
        old = await store.recordings_before(before)
        for call_id, sealed in old:
            Path(sealed).unlink(missing_ok=True)
            await store.mark_recording_purged(call_id)
    return len(old)


def run_nhs_number(args: argparse.Namespace) -> int:
    """Print one call's NHS number, for clinical follow-up by whoever holds the key."""
    config = settings_or_exit(args.config).config
    db: Path = args.db or config.database.path
    try:
        key = SealingKey.load(config.security.key_file, config.security.key_env)
        sealed = _sealed_nhs_number(db, args.call_id)
        number = open_field(key, sealed, nhs_context(args.call_id))
    except (KeyLoadError, SealError, LookupError, sqlite3.Error) as error:
        return _fail("nhs-number", str(error), sys.stderr)
    print(number)
    return 0


def _sealed_nhs_number(db: Path, call_id: str) -> str:
    if not db.exists():
        raise LookupError(f"no call-record database at {db}")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT nhs_number FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        raise LookupError(f"no call {call_id[:80]!r} in {db}")
    if row[0] is None:
        raise LookupError(f"call {call_id} has no NHS number")
    return str(row[0])
