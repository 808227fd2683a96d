"""Medico-legal recording end to end (issue 12), through the running engine with sipp peers.

The GP keys a wrong NHS number (re-prompted), the right one, then the menu; the consultant
accepts; they talk while the GP sends G.711 speech. Then, as a clinical safety officer would
check: the record points at a sealed recording whose decrypted WAV is as long as the talk and
holds audio; one changed byte makes ``recording get`` fail with no output; the purge removes it;
the NHS number is sealed in the record and opens only for its call; and no log line holds the
caller's number or either NHS number keyed.
"""

from __future__ import annotations

import array
import dataclasses
import math
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from callrouter.adapters.sealing import SealError, SealingKey, open_field
from callrouter.sinks import nhs_context

from . import records
from .conftest import E2E, member, needs_tools
from .running_engine import REPO
from .tree import GP_NUMBER, NUMBER, TreeSpec

pytestmark = [needs_tools, pytest.mark.sip, pytest.mark.timeout(120)]

RIGHT = "4010294701"
WRONG = "4010294702"  # the same stem with the wrong check digit


def callrouter(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callrouter", *args, "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wav_facts(path: Path) -> tuple[float, float]:
    """(seconds, RMS of the 16-bit samples)."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = array.array("h", wav.readframes(wav.getnframes()))
        seconds = wav.getnframes() / wav.getframerate()
    return seconds, math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


class TestRecordedCall:
    """One advice call, everything a clinical safety officer asks about it."""

    def test_recorded_sealed_and_never_logged(self, e2e: E2E) -> None:
        consultant = member("c-rec")
        spec = TreeSpec(members=(consultant,), record=True, nhs_number="required")
        engine = e2e.start(spec)
        accepts = e2e.peers.consultant(
            "accepts", "uas_accept.xml", port=consultant.port, ring_ms=300, key_ms=300
        )
        gp = e2e.gp("gp", "uac_nhs_retry_talk.xml", NUMBER, hunt_ms=2500, talk_ms=4000)
        assert gp.wait() == 0, gp.explain() + engine.log()
        assert accepts.wait() == 0, accepts.explain() + engine.log()
        engine.wait_idle()
        deadline = time.monotonic() + 15  # the worker reports a recording once its file is shut
        while records.only_call(engine.db)["recording_state"] is None:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.1)
        assert engine.stop() == 0, engine.log()

        call = records.only_call(engine.db)
        assert (call["outcome"], call["specialty"]) == ("connected", "cardiology"), call
        # the wrong number was refused (else it would be the one captured), the right one taken
        key = SealingKey.parse((engine.config.parent / "var" / "sealing.key").read_text(), "key")
        sealed_nhs = call["nhs_number"]
        assert RIGHT not in sealed_nhs
        assert open_field(key, sealed_nhs, nhs_context(call["call_id"])) == RIGHT
        with pytest.raises(SealError):
            open_field(key, sealed_nhs, nhs_context("another-call"))

        shown = callrouter(engine.config, "nhs-number", call["call_id"], "--db", str(engine.db))
        assert (shown.returncode, shown.stdout) == (0, RIGHT + "\n"), shown.stderr

        assert call["recording_state"] == "stored", call
        sealed = Path(call["recording_path"])
        assert sealed.exists()
        assert sealed.is_relative_to(engine.config.parent / "var" / "recordings")
        assert not list((engine.config.parent / "var" / "recordings" / "incoming").iterdir())

        out = e2e.tmp_path / "out.wav"
        got = callrouter(engine.config, "recording", "get", call["call_id"], "-o", str(out))
        assert got.returncode == 0, got.stderr
        seconds, rms = wav_facts(out)
        # the figures behind the closing note (pytest -s shows them)
        print(f"recording: talk {call['talk_seconds']:.3f}s, wav {seconds:.3f}s, rms {rms:.0f}")
        assert abs(seconds - call["talk_seconds"]) <= 0.5, (seconds, call["talk_seconds"])
        assert rms > 100  # the GP's speech, not silence

        # One changed byte: a clear error, exit 1, and no output at all.
        raw = bytearray(sealed.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        sealed.write_bytes(bytes(raw))
        tampered = e2e.tmp_path / "tampered.wav"
        bad = callrouter(engine.config, "recording", "get", call["call_id"], "-o", str(tampered))
        assert bad.returncode == 1
        assert "altered or truncated" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert not tampered.exists()

        # Retention: everything is older than 0 days; the file goes, the record says so.
        purged = callrouter(
            engine.config, "recording", "purge", "--db", str(engine.db), "--older-than-days", "0"
        )
        assert purged.returncode == 0, purged.stderr
        assert "purged 1 recordings" in purged.stdout
        assert not sealed.exists()
        after = records.only_call(engine.db)
        assert (after["recording_state"], after["recording_path"]) == ("purged", None)

        # Nothing in the engine's log identifies the caller or the patient.
        log_text = engine.log_path.read_text()
        for secret in (GP_NUMBER, RIGHT, WRONG):
            assert secret not in log_text, secret


class TestEngineKilledMidRecording:
    """kill -9 of the engine while a recorded call talks: the audio so far is sealed at the
    next start and the record says so (the call itself is closed as interrupted)."""

    def test_recording_sealed_after_restart(self, e2e: E2E) -> None:
        consultant = member("c-crash")
        engine = e2e.start(TreeSpec(members=(consultant,), record=True))
        e2e.peers.consultant(
            "accepts", "uas_accept.xml", port=consultant.port, ring_ms=300, key_ms=300
        )
        e2e.gp("gp", "uac_menu_bye.xml", NUMBER, talk_ms=20000)
        deadline = time.monotonic() + 20
        while not [c for c in records.calls(engine.db) if c["connected_at"] is not None]:
            assert time.monotonic() < deadline, engine.log()
            time.sleep(0.1)
        time.sleep(3.0)  # talking, and being recorded
        engine.kill()
        e2e.peers.kill_all()
        incoming = engine.config.parent / "var" / "recordings" / "incoming"
        assert len(list(incoming.glob("*.wav"))) == 1  # the plain file, left by the crash

        restarted = e2e.engine = dataclasses.replace(engine, process=None)
        restarted.start()  # seals what it finds before any worker starts
        call = records.only_call(restarted.db)
        assert call["end_reason"] == "interrupted"
        assert call["recording_state"] == "stored", call
        assert 2.0 < call["recording_seconds"] < 5.0, call
        assert not list(incoming.glob("*.wav"))
        out = e2e.tmp_path / "out.wav"
        got = callrouter(restarted.config, "recording", "get", call["call_id"], "-o", str(out))
        assert got.returncode == 0, got.stderr
        assert abs(wav_facts(out)[0] - call["recording_seconds"]) < 0.01
        assert restarted.stop() == 0, restarted.log()
