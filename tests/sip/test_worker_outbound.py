"""Outbound legs: the worker dials sipp consultants; bridging an inbound and an outbound leg."""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, needs_sipp, pytest.mark.timeout(60)]


class TestDial:
    """Dial → Ringing/Answered/Failed, as the sipp UAS decides."""

    def test_answered_leg_gets_pt101_digits_and_far_hangup(self, tmp_path: Path) -> None:
        async def main() -> None:
            async with WorkerPool([worker_config()]) as pool:
                events = Events(pool)
                async with sipp("uas_answer_dtmf_bye.xml", tmp_path, pause_ms=1200) as consultant:
                    pool.send(
                        p.Dial(
                            leg="c1-L1",
                            uri=f"sip:consultant@{consultant.uri_host}",
                            caller_display="Advice Line",
                            caller_user="0300123",
                        )
                    )
                    assert pool.free_slots == 3
                    ringing = await events.expect(p.Ringing, leg="c1-L1")
                    assert ringing.status == 180
                    await events.expect(p.Answered, leg="c1-L1")
                    digit = await events.expect(p.Digit, leg="c1-L1")
                    assert (digit.digit, digit.method) == ("5", "rfc4733")
                    hung_up = await events.expect(p.HungUp, leg="c1-L1")
                    assert hung_up.status == 200
                    await events.expect(p.LegClosed, leg="c1-L1")
                    # the scenario asserts our offer had telephone-event 101 and c=127.0.0.1
                    assert await consultant.wait() == 0, consultant.errors()

        run(main)

    def test_busy_consultant_fails_with_486(self, tmp_path: Path) -> None:
        async def main() -> None:
            async with WorkerPool([worker_config()]) as pool:
                events = Events(pool)
                async with sipp("uas_busy.xml", tmp_path) as consultant:
                    pool.send(p.Dial(leg="L1", uri=f"sip:consultant@{consultant.uri_host}"))
                    failed = await events.expect(p.Failed, leg="L1")
                    assert failed.status == 486
                    await events.expect(p.LegClosed, leg="L1")
                    assert await consultant.wait() == 0, consultant.errors()

        run(main)

    def test_early_media_is_ringing_not_an_answer(self, tmp_path: Path) -> None:
        async def main() -> None:
            async with WorkerPool([worker_config()]) as pool:
                events = Events(pool)
                async with sipp("uas_early_media_busy.xml", tmp_path) as consultant:
                    pool.send(p.Dial(leg="L1", uri=f"sip:consultant@{consultant.uri_host}"))
                    ringing = await events.expect(p.Ringing, leg="L1")
                    assert ringing.status == 183
                    failed = await events.expect(p.Failed, leg="L1")
                    assert failed.status == 486
                    await events.expect(p.LegClosed, leg="L1")
                    assert await consultant.wait() == 0, consultant.errors()
                assert not events.unmatched(p.Answered)

        run(main)

    def test_hangup_while_ringing_sends_cancel(self, tmp_path: Path) -> None:
        async def main() -> None:
            async with WorkerPool([worker_config()]) as pool:
                events = Events(pool)
                async with sipp("uas_ring_cancel.xml", tmp_path) as consultant:
                    pool.send(p.Dial(leg="L1", uri=f"sip:consultant@{consultant.uri_host}"))
                    await events.expect(p.Ringing, leg="L1")
                    pool.send(p.Hangup(leg="L1"))  # the engine's ring timer ran out
                    await events.expect(p.LegClosed, leg="L1")
                    # sipp saw CANCEL, answered 200 + 487 and got the ACK
                    assert await consultant.wait() == 0, consultant.errors()
                assert not events.unmatched(p.Failed)  # we ended it: LegClosed only

        run(main)

    def test_bad_uri_fails_at_once(self) -> None:
        async def main() -> None:
            async with WorkerPool([worker_config()]) as pool:
                events = Events(pool)
                pool.send(p.Dial(leg="L1", uri="not a uri"))
                failed = await events.expect(p.Failed, leg="L1")
                assert failed.status == 500
                await events.expect(p.LegClosed, leg="L1")
                assert pool.free_slots == 4

        run(main)


async def answer_gp_and_dial(pool: WorkerPool, events: Events, consultant: str) -> p.Incoming:
    """Answer the GP's call and dial the consultant (leg L1) beside it; both answered."""
    incoming = await events.expect(p.Incoming)
    pool.send(p.Answer(leg=incoming.leg))
    pool.send(p.Dial(leg="L1", uri=f"sip:consultant@{consultant}"), near=incoming.leg)
    await events.expect(p.Answered, leg="L1")
    await events.expect(p.Answered, leg=incoming.leg)
    return incoming


class TestBridge:
    """Bridge joins a GP and a consultant; a BYE from one side ends that leg only."""

    def test_bridge_then_gp_hangs_up(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_answer_wait_bye.xml", tmp_path) as consultant,
                    sipp("uac_answer_bye.xml", tmp_path, remote=remote, pause_ms=1500) as gp,
                ):
                    incoming = await answer_gp_and_dial(pool, events, consultant.uri_host)
                    pool.send(p.Bridge(a=incoming.leg, b="L1"))
                    await events.expect(p.HungUp, leg=incoming.leg)  # the GP's BYE
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert pool.worker_of("L1") == "w0"  # the consultant is still up
                    pool.send(p.Hangup(leg="L1"))
                    await events.expect(p.LegClosed, leg="L1")
                    assert await gp.wait() == 0, gp.errors()
                    assert await consultant.wait() == 0, consultant.errors()  # got our BYE
                assert not events.unmatched(p.CommandError)

        run(main)


def wav_facts(path: Path) -> tuple[float, float]:
    """(seconds, RMS of the 16-bit samples) of a mono WAV."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / wav.getframerate()
    samples = array.array("h", frames)
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return seconds, rms


class TestRecording:
    """Bridge with ``record``: both parties into one WAV, from the bridge until a leg closes."""

    def test_bridged_conversation_is_recorded(self, tmp_path: Path) -> None:
        wav = tmp_path / "rec" / "call.wav"
        wav.parent.mkdir()

        async def main() -> tuple[p.Recorded, tuple[float, float]]:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_answer_wait_bye.xml", tmp_path) as consultant,
                    sipp("uac_audio_bye.xml", tmp_path, remote=remote, pause_ms=3000) as gp,
                ):
                    incoming = await answer_gp_and_dial(pool, events, consultant.uri_host)
                    pool.send(p.Bridge(a=incoming.leg, b="L1", record=str(wav)))
                    await events.expect(p.HungUp, leg=incoming.leg)
                    recorded = await events.expect(p.Recorded, leg=incoming.leg)
                    # finished at once, while the worker runs on: what the engine seals
                    finished_at_report = wav_facts(wav)
                    pool.send(p.Hangup(leg="L1"))
                    await events.expect(p.LegClosed, leg="L1")
                    assert await gp.wait() == 0, gp.errors()
                    assert await consultant.wait() == 0, consultant.errors()
                assert not events.unmatched(p.CommandError)
                return recorded, finished_at_report

        recorded, (seconds, rms) = run(main)
        assert recorded.error == ""
        assert recorded.path == str(wav)
        assert 2.5 < recorded.seconds < 4.5  # the GP's 3 s pause, give or take the signalling
        assert abs(seconds - recorded.seconds) < 0.5
        assert rms > 100  # the GP's G.711 speech, not silence

    def test_recorder_that_cannot_start_leaves_the_call_up(self, tmp_path: Path) -> None:
        async def main() -> p.Recorded:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_answer_wait_bye.xml", tmp_path) as consultant,
                    sipp("uac_answer_bye.xml", tmp_path, remote=remote, pause_ms=1500) as gp,
                ):
                    incoming = await answer_gp_and_dial(pool, events, consultant.uri_host)
                    nowhere = str(tmp_path / "no-such-dir" / "call.wav")
                    pool.send(p.Bridge(a=incoming.leg, b="L1", record=nowhere))
                    failed = await events.expect(p.Recorded, leg=incoming.leg)
                    # still bridged: the GP's own BYE ends it, as on any call
                    await events.expect(p.HungUp, leg=incoming.leg)
                    pool.send(p.Hangup(leg="L1"))
                    await events.expect(p.LegClosed, leg="L1")
                    assert await gp.wait() == 0, gp.errors()
                    assert await consultant.wait() == 0, consultant.errors()
                assert not events.unmatched(p.Recorded)  # one report, not a second at the end
                return failed

        failed = run(main)
        assert failed.error != ""
        assert failed.seconds == 0.0

    def test_two_conversations_at_once_each_in_its_own_file(self, tmp_path: Path) -> None:
        """A worker's four legs as two bridged calls, both recorded at once: two whole files."""

        async def main() -> list[p.Recorded]:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with (
                    sipp("uas_answer_wait_bye.xml", tmp_path, calls=2) as consultants,
                    sipp(
                        "uac_audio_bye.xml", tmp_path, remote=remote, calls=2, pause_ms=2500
                    ) as gps,
                ):
                    first = await events.expect(p.Incoming)
                    second = await events.expect(p.Incoming)
                    for n, incoming in enumerate((first, second), 1):
                        pool.send(p.Answer(leg=incoming.leg))
                        uri = f"sip:consultant@{consultants.uri_host}"
                        pool.send(p.Dial(leg=f"L{n}", uri=uri), near=incoming.leg)
                    for n, incoming in enumerate((first, second), 1):
                        await events.expect(p.Answered, leg=f"L{n}")
                        await events.expect(p.Answered, leg=incoming.leg)
                        wav = str(tmp_path / f"call-{n}.wav")
                        pool.send(p.Bridge(a=incoming.leg, b=f"L{n}", record=wav))
                    reports = [
                        await events.expect(p.Recorded, leg=incoming.leg, timeout=15)
                        for incoming in (first, second)
                    ]
                    for n in (1, 2):
                        pool.send(p.Hangup(leg=f"L{n}"))
                        await events.expect(p.LegClosed, leg=f"L{n}")
                    assert await gps.wait() == 0, gps.errors()
                    assert await consultants.wait() == 0, consultants.errors()
                assert not events.unmatched(p.CommandError)
                return reports

        reports = run(main)
        assert sorted(r.path for r in reports) == [
            str(tmp_path / "call-1.wav"),
            str(tmp_path / "call-2.wav"),
        ]
        for report in reports:
            assert report.error == ""
            seconds, rms = wav_facts(Path(report.path))
            assert abs(seconds - report.seconds) < 0.5
            assert rms > 100  # speech in each, not silence
