"""Nothing a worker does waits for its idle poll to time out: with a poll longer than the test's
own bound, digits (RFC 4733 and SIP INFO), a prompt's end, commands and the caller's BYE still
all arrive. The production poll is 100 ms; the speed is measured in benchmarks/idle_worker.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.pool import WorkerPool
from tests.sip.conftest import Events, needs_sipp, run, sipp, worker_config

pytestmark = [pytest.mark.sip, needs_sipp, pytest.mark.timeout(60)]

NEVER_MS = 600_000  # ten minutes: far past the 30 s each test is bounded by


@pytest.fixture(scope="module")
def beep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "beep.wav"
    command = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path)]
    subprocess.run([*command, "synth", "0.3", "sine", "440"], check=True)
    return path


class TestLongPoll:
    """A worker whose poll never times out within the test still serves a call completely."""

    def test_digits_prompt_end_and_bye_arrive(self, tmp_path: Path, beep: Path) -> None:
        async def main() -> None:
            config = worker_config(poll_ms=NEVER_MS)
            assert "--poll-ms" in config.argv()
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                pool.send(p.Ping(token=7))  # a command wakes the poll
                assert (await events.expect(p.Pong)).token == 7
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_dtmf.xml", tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    pool.send(p.Play(leg=incoming.leg, files=(str(beep),)))
                    await events.expect(p.PlayDone, leg=incoming.leg)  # pjmedia's thread
                    await events.expect(p.HungUp, leg=incoming.leg)
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()
                digits = [(e.digit, e.method) for e in events.unmatched(p.Digit)]
                assert digits == [("1", "rfc4733"), ("#", "rfc4733"), ("7", "info"), ("8", "info")]

        run(main, timeout=30)

    def test_an_rfc4733_digit_alone_is_seen(self, tmp_path: Path) -> None:
        """Nothing but the digit's RTP arrives: the BYE the GP waits for is our answer to it."""

        async def main() -> None:
            config = worker_config(poll_ms=NEVER_MS)
            async with WorkerPool([config]) as pool:
                events = Events(pool)
                remote = f"127.0.0.1:{config.listen_port}"
                async with sipp("uac_digit_wait_bye.xml", tmp_path, remote=remote) as gp:
                    incoming = await events.expect(p.Incoming)
                    pool.send(p.Answer(leg=incoming.leg))
                    digit = await events.expect(p.Digit, leg=incoming.leg)
                    assert (digit.digit, digit.method) == ("1", "rfc4733")
                    pool.send(p.Hangup(leg=incoming.leg))
                    await events.expect(p.LegClosed, leg=incoming.leg)
                    assert await gp.wait() == 0, gp.errors()

        run(main, timeout=30)

    def test_the_poll_is_validated(self) -> None:
        with pytest.raises(ValueError, match="poll_ms"):
            worker_config(poll_ms=0)
