"""Encryption at rest: round trips, wrong keys and every kind of tampering fail loudly."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.adapters.sealing import (
    CHUNK_BYTES,
    HEADER_BYTES,
    KeyLoadError,
    SealError,
    SealingKey,
    open_field,
    open_file,
    seal_field,
    seal_file,
)
from callrouter.adapters.store_sqlite import CallStore
from callrouter.core.domain import CallOffered, NhsNumberCaptured
from callrouter.sinks import SealNhsNumbers, nhs_context

KEY = SealingKey(bytes(range(32)))
OTHER = SealingKey(bytes(range(1, 33)))


def sealed_copy(tmp_path: Path, data: bytes) -> Path:
    plain = tmp_path / "plain.wav"
    plain.write_bytes(data)
    sealed = tmp_path / "call.wav.sealed"
    seal_file(KEY, plain, sealed)
    return sealed


class TestKeys:
    """Keys come from a file or the environment, never silently wrong."""

    def test_hex_and_base64_forms(self, tmp_path: Path) -> None:
        key_file = tmp_path / "key"
        key_file.write_text(KEY.text() + "\n")
        assert SealingKey.load(key_file, None) == KEY
        as_base64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        assert SealingKey.load(None, "K", {"K": as_base64}) == KEY

    @pytest.mark.parametrize("text", ["", "abc", "00" * 31, "zz" * 32, "AAAA"])
    def test_bad_key_text(self, tmp_path: Path, text: str) -> None:
        key_file = tmp_path / "key"
        key_file.write_text(text)
        with pytest.raises(KeyLoadError, match=str(key_file)):
            SealingKey.load(key_file, None)

    def test_missing_sources(self, tmp_path: Path) -> None:
        with pytest.raises(KeyLoadError, match="cannot read"):
            SealingKey.load(tmp_path / "absent", None)
        with pytest.raises(KeyLoadError, match="CR_KEY"):
            SealingKey.load(None, "CR_KEY", {})
        with pytest.raises(KeyLoadError, match="no key configured"):
            SealingKey.load(None, None, {})

    def test_repr_hides_the_secret(self) -> None:
        assert KEY.secret.hex() not in repr(KEY)
        assert KEY.key_id.hex() in repr(KEY)


class TestFields:
    """An NHS number sealed for one call opens only with the key and for that call."""

    def test_round_trip_and_no_plaintext(self) -> None:
        sealed = seal_field(KEY, "9434765919", "nhs_number/c1")
        assert "9434765919" not in sealed
        assert open_field(KEY, sealed, "nhs_number/c1") == "9434765919"
        assert seal_field(KEY, "9434765919", "nhs_number/c1") != sealed  # fresh nonce

    def test_wrong_key_context_or_bytes(self) -> None:
        sealed = seal_field(KEY, "9434765919", "nhs_number/c1")
        with pytest.raises(SealError, match="another key"):
            open_field(OTHER, sealed, "nhs_number/c1")
        with pytest.raises(SealError, match="altered or belongs"):
            open_field(KEY, sealed, "nhs_number/c2")
        flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
        with pytest.raises(SealError):
            open_field(KEY, flipped, "nhs_number/c1")
        with pytest.raises(SealError, match="not a sealed value"):
            open_field(KEY, "9434765919", "nhs_number/c1")


class TestFiles:
    """Recordings: chunked, bound to the key, any change anywhere is caught, no output then."""

    @pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, 3 * CHUNK_BYTES + 7])
    def test_round_trip(self, tmp_path: Path, size: int) -> None:
        data = os.urandom(size)
        sealed = sealed_copy(tmp_path, data)
        if size >= 16:  # a shorter plaintext could turn up in random bytes by chance
            assert data[:64] not in sealed.read_bytes()
        out = tmp_path / "out.wav"
        assert open_file(KEY, sealed, out) == size
        assert out.read_bytes() == data

    def test_wrong_key(self, tmp_path: Path) -> None:
        sealed = sealed_copy(tmp_path, b"x" * 1000)
        out = tmp_path / "out.wav"
        with pytest.raises(SealError, match="another key"):
            open_file(OTHER, sealed, out)
        assert not out.exists()
        assert not list(tmp_path.glob("*.partial"))

    @settings(max_examples=60, deadline=None)
    @given(data=st.data())
    def test_any_single_byte_change_is_caught(self, data: st.DataObject) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            where = Path(scratch)
            sealed = sealed_copy(where, bytes(range(256)) * 600)  # three chunks
            raw = bytearray(sealed.read_bytes())
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at] ^= data.draw(st.integers(1, 255))
            sealed.write_bytes(bytes(raw))
            out = where / "out.wav"
            with pytest.raises(SealError):
                open_file(KEY, sealed, out)
            assert not out.exists()

    def test_truncation_and_extension_are_caught(self, tmp_path: Path) -> None:
        sealed = sealed_copy(tmp_path, b"y" * (2 * CHUNK_BYTES + 10))
        raw = sealed.read_bytes()
        one_chunk = HEADER_BYTES + 4 + CHUNK_BYTES + 16  # cut exactly at a chunk boundary
        for damaged in (raw[:one_chunk], raw[:-1], raw + b"\0", raw[:HEADER_BYTES], b"RIFF"):
            sealed.write_bytes(damaged)
            with pytest.raises(SealError):
                open_file(KEY, sealed, tmp_path / "out.wav")
            assert not (tmp_path / "out.wav").exists()

    def test_no_partial_file_when_sealing_fails(self, tmp_path: Path) -> None:
        with pytest.raises(OSError, match="No such file"):
            seal_file(KEY, tmp_path / "absent.wav", tmp_path / "x.sealed")
        assert list(tmp_path.iterdir()) == []


class TestRecordsHoldNoNhsNumberInClear:
    """The store behind SealNhsNumbers; and numbers an old version left in clear."""

    def test_captured_number_is_sealed_and_old_ones_are_sealed_at_start(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "calls.sqlite3"

        async def scenario() -> int:
            async with await CallStore.open(db) as store:
                # an old version's row, written straight through the store
                await store.handle(CallOffered("old", 1.0, "north", "07700900001", None, None))
                await store.handle(NhsNumberCaptured("old", 2.0, "9434765919"))
                sealed = SealNhsNumbers(store, KEY)
                await sealed.handle(CallOffered("new", 3.0, "north", "07700900002", None, None))
                await sealed.handle(NhsNumberCaptured("new", 4.0, "4010294701"))
                return await store.seal_plain_nhs_numbers(sealed.seal)

        assert asyncio.run(scenario()) == 1
        with sqlite3.connect(db) as conn:
            rows = dict(conn.execute("SELECT call_id, nhs_number FROM calls").fetchall())
        assert "9434765919" not in rows["old"]
        assert "4010294701" not in rows["new"]
        assert open_field(KEY, rows["old"], nhs_context("old")) == "9434765919"
        assert open_field(KEY, rows["new"], nhs_context("new")) == "4010294701"
