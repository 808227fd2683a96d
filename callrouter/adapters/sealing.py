"""Encryption at rest (AES-256-GCM, the ``cryptography`` package): call recordings and NHS numbers.

One key serves both. It never lives in the database or the config file itself: config.yaml names a
file (``key_file``) or an environment variable (``key_env``) that holds it, as 64 hex digits or 44
base64 characters (``callrouter keygen`` makes one). Every sealed thing carries the key's id (the
first 8 bytes of its SHA-256), so opening with the wrong key says so instead of "tampered".

**Files** (recordings) are sealed in chunks, so an hour-long WAV never has to sit in memory:

    header  = MAGIC (8) | key id (8) | nonce prefix (7)
    chunk*  = length (4, big-endian) | ciphertext+tag (length)

Chunk *i* is encrypted with nonce ``prefix | i (4 bytes) | last (1 byte)`` and the header as
associated data. The counter stops chunks being reordered or dropped, the ``last`` byte stops the
file being cut short at a chunk boundary, and the header binds the key id and prefix: one changed
byte anywhere and ``open_file`` raises ``SealError`` before writing any output.

**Fields** (an NHS number) are sealed as ``v1:<key id hex>:<base64 nonce|ciphertext+tag>`` with a
context string as associated data (``nhs_number/<call id>``), so a sealed value copied into
another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Final, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC: Final = b"CRSEAL1\0"
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 8
PREFIX_BYTES: Final = 7
CHUNK_BYTES: Final = 64 * 1024
TAG_BYTES: Final = 16
HEADER_BYTES: Final = len(MAGIC) + KEY_ID_BYTES + PREFIX_BYTES
FIELD_VERSION: Final = "v1"
_LENGTH = struct.Struct(">I")


class SealError(Exception):
    """Sealed data that cannot be opened: wrong key, tampered, truncated or not ours."""


class KeyLoadError(ValueError):
    """The key could not be loaded; the message says where from and why."""


@dataclass(frozen=True, slots=True)
class SealingKey:
    """An AES-256 key and its public id."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise KeyLoadError(f"a key is {KEY_BYTES} bytes, this one {len(self.secret)}")

    def __repr__(self) -> str:  # never print the secret, not even by accident in a traceback
        return f"<SealingKey id={self.key_id.hex()}>"

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.secret).digest()[:KEY_ID_BYTES]

    @classmethod
    def generate(cls) -> Self:
        return cls(secrets.token_bytes(KEY_BYTES))

    def text(self) -> str:
        """The form a key file holds: 64 hex digits."""
        return self.secret.hex()

    @classmethod
    def parse(cls, text: str, where: str) -> Self:
        raw = text.strip()
        try:
            if len(raw) == KEY_BYTES * 2:
                return cls(bytes.fromhex(raw))
            return cls(base64.b64decode(raw, validate=True))
        except (ValueError, binascii.Error, KeyLoadError):
            msg = f"{where}: not a key (want {KEY_BYTES} bytes as 64 hex digits or base64)"
            raise KeyLoadError(msg) from None

    @classmethod
    def load(
        cls,
        key_file: Path | None,
        key_env: str | None,
        environ: Mapping[str, str] = os.environ,
    ) -> Self:
        """From the file or the environment variable config.yaml names (exactly one of them)."""
        if key_file is not None:
            try:
                return cls.parse(key_file.read_text(encoding="ascii"), str(key_file))
            except (OSError, UnicodeDecodeError) as error:
                raise KeyLoadError(f"{key_file}: cannot read the key: {error}") from None
        if key_env is not None:
            if key_env not in environ:
                raise KeyLoadError(f"environment variable {key_env} (the key) is not set")
            return cls.parse(environ[key_env], f"${key_env}")
        raise KeyLoadError("no key configured: set key_file or key_env")


# -- fields -----------------------------------------------------------------------------------


def seal_field(key: SealingKey, value: str, context: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key.secret).encrypt(nonce, value.encode(), context.encode())
    return f"{FIELD_VERSION}:{key.key_id.hex()}:{base64.b64encode(nonce + sealed).decode()}"


def open_field(key: SealingKey, sealed: str, context: str) -> str:
    try:
        version, key_hex, body = sealed.split(":", 2)
        raw = base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error):
        raise SealError("not a sealed value") from None
    if version != FIELD_VERSION:
        raise SealError(f"unknown sealed-value version {version!r}")
    if key_hex != key.key_id.hex():
        raise SealError(f"sealed with another key (id {key_hex}, ours {key.key_id.hex()})")
    try:
        return AESGCM(key.secret).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError):
        raise SealError("sealed value was altered or belongs to another record") from None


# -- files ------------------------------------------------------------------------------------


def _nonce(prefix: bytes, index: int, *, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal_file(key: SealingKey, plain: Path, sealed: Path) -> int:
    """Encrypt ``plain`` into ``sealed`` (written beside, then renamed: never half a file).

    Returns the bytes written. The caller removes ``plain``; on any error nothing is left at
    ``sealed`` and the error (OSError for a full disk) is raised.
    """
    prefix = secrets.token_bytes(PREFIX_BYTES)
    header = MAGIC + key.key_id + prefix
    aead = AESGCM(key.secret)
    partial = sealed.with_name(sealed.name + ".partial")
    written = 0
    try:
        with plain.open("rb") as source, partial.open("wb") as out:
            out.write(header)
            written += len(header)
            chunk = source.read(CHUNK_BYTES)
            index = 0
            while True:
                following = source.read(CHUNK_BYTES)
                last = not following
                body = aead.encrypt(_nonce(prefix, index, last=last), chunk, header)
                out.write(_LENGTH.pack(len(body)) + body)
                written += _LENGTH.size + len(body)
                if last:
                    break
                chunk, index = following, index + 1
            out.flush()
            os.fsync(out.fileno())
        partial.replace(sealed)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return written


def _read_exact(source: BufferedReader, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise SealError("sealed file is truncated")
    return data


def open_file(key: SealingKey, sealed: Path, out: Path) -> int:
    """Decrypt ``sealed`` to ``out``; returns plaintext bytes. Raises SealError, leaving no
    ``out`` at all, if the key is wrong or any byte was changed, added or cut."""
    partial = out.with_name(out.name + ".partial")
    total = 0
    try:
        with sealed.open("rb") as source:
            header = source.read(HEADER_BYTES)
            if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
                raise SealError(f"{sealed}: not a sealed callrouter file")
            key_id = header[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
            if key_id != key.key_id:
                theirs, ours = key_id.hex(), key.key_id.hex()
                raise SealError(f"{sealed}: sealed with another key (id {theirs}, ours {ours})")
            prefix = header[len(MAGIC) + KEY_ID_BYTES :]
            aead = AESGCM(key.secret)
            with partial.open("wb") as target:
                index = 0
                while True:
                    size = _LENGTH.unpack(_read_exact(source, _LENGTH.size))[0]
                    if size < TAG_BYTES or size > CHUNK_BYTES + TAG_BYTES:
                        raise SealError(f"{sealed}: damaged (chunk {index} length {size})")
                    body = _read_exact(source, size)
                    last = not source.peek(1)
                    try:
                        plain = aead.decrypt(_nonce(prefix, index, last=last), body, header)
                    except InvalidTag:
                        raise SealError(f"{sealed}: altered or truncated (chunk {index})") from None
                    target.write(plain)
                    total += len(plain)
                    if last:
                        break
                    index += 1
        partial.replace(out)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return total
