"""Inbound legs: a sipp GP calls a real worker process driven through the pool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from callrouter.sip.prompts import PromptCache
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, needs_sipp, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A short spoken prompt (espeak-ng via PromptCache) and a 0.3 s tone made by sox."""
    directory = tmp_path_factory.mktemp("audio")
    beep = directory / "beep.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            str(beep),
            "synth",
            "0.3",
            "sine",
            "440",
        ],
        check=True,
    )
    return PromptCache(directory / "cache").path_for("Hello."), beep


class TestAnswer:
    """Incoming → Answer → the GP's sipp gets 200 OK; playback, media timeout, BYE."""

    def test_incoming_answer_play_timeout_bye(
        self, tmp_path: Path, prompts: tuple[Path, Path]
    ) -> None:
        async def main() -> None:
            config = worker_config(media_timeout=1.0)
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp(
                    "uac_answer_bye.xml",
                    tmp_path,
                    remote=remote,
                    service="0800123456",
                    pause_ms=3000,
                ) as gp:
                    incoming = await events.expect(p.Incoming)
                    assert incoming.to_user == "0800123456"
                    assert incoming.from_user == "01234567890"
                    assert incoming.from_display == "Dr Test"
                    assert (incoming.source_host, incoming.source_port) == ("127.0.0.1", gp.port)
                    assert incoming.sip_call_id
                    assert incoming.leg == "w0-in-1"
                    assert pool.free_slots == 3
                    pool.send(p.Answer(leg=incoming.leg))
                    # sent before the media is up: the worker holds it until then
                    pool.send(p.Play(leg=incoming.leg, files=tuple(map(str, prompts))))
                    await events.expect(p.Answered, leg=incoming.leg)
                    await events.expect(p.PlayDone, leg=incoming.leg)
                    await events.expect(p.MediaTimeout, leg=incoming.leg)  # sipp sends no RTP
                    hung_up = await events.expect(p.HungUp, leg=incoming.leg)
                    assert hung_up.status == 200
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()
                    assert pool.free_slots == 4

        run(main)


class TestReject:
    """Reject answers the INVITE with the engine's status; sipp's scenario checks it."""

    @pytest.mark.parametrize(
        ("status", "retry_after", "scenario"),
        [
            (403, None, "uac_expect_403.xml"),
            (404, None, "uac_expect_404.xml"),
            (503, 30, "uac_expect_503.xml"),
        ],
    )
    def test_reject_status_reaches_the_caller(
        self, tmp_path: Path, status: int, retry_after: int | None, scenario: str
    ) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp(scenario, tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Reject(leg=incoming.leg, status=status, retry_after=retry_after))
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()
                # ended by the engine: no Failed/HungUp for it
                assert not events.unmatched(p.Failed)
                assert not events.unmatched(p.HungUp)

        run(main)

    def test_reject_of_answered_leg_is_a_command_error(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_answer_bye.xml", tmp_path, remote=remote, pause_ms=300) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    pool.send(p.Reject(leg=incoming.leg, status=403))
                    error = await events.expect(p.CommandError, leg=incoming.leg)
                    assert error.command == "Reject"
                    await events.expect(p.HungUp, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()

        run(main)


class TestUnansweredInbound:
    """An inbound leg the engine never answers: its Hangup status, or the GP's CANCEL."""

    def test_hangup_of_unanswered_leg_sends_its_status(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_expect_486.xml", tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Hangup(leg=incoming.leg, status=486))
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()

        run(main)

    def test_cancel_from_the_caller_is_failed_487(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_cancel.xml", tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    failed = await events.expect(p.Failed, leg=incoming.leg)
                    assert failed.status == 487
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()
                    pool.send(p.Answer(leg=incoming.leg))  # too late: the leg is gone
                    error = await events.expect(p.CommandError, leg=incoming.leg)
                    assert "no worker holds" in error.message

        run(main)


class TestDigits:
    """DTMF from the GP arrives as Digit events, by RFC 4733 and by SIP INFO."""

    def test_rfc4733_and_info_digits(self, tmp_path: Path) -> None:
        async def main() -> None:
            config = worker_config()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_dtmf.xml", tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    await events.expect(p.HungUp, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()
                digits = [(e.digit, e.method) for e in events.unmatched(p.Digit)]
                assert digits == [
                    ("1", "rfc4733"),
                    ("#", "rfc4733"),
                    ("7", "info"),
                    ("8", "info"),
                ]

        run(main)
