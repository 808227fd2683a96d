"""sd_notify by hand against real datagram sockets; the unit file checked by systemd-analyze."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrouter.adapters import systemd

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "callrouter.service"
EDGE_UNIT = UNIT.with_name("callrouter-edge.service")
EDGE_SECURITY_THRESHOLD = 12  # in tenths: exposure 1.2 of 10
# The exposure we reached (lower is safer); the test fails if a change to the unit raises it.
SECURITY_THRESHOLD = 11  # in tenths: exposure 1.1 of 10
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound AF_UNIX datagram socket standing in for systemd's, named in $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5.0)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


class TestNotify:
    """Each helper sends the datagram sd_notify(3) would."""

    def test_ready(self, notify_socket: socket.socket) -> None:
        assert systemd.ready()
        assert received(notify_socket) == "READY=1"

    def test_stopping_and_watchdog(self, notify_socket: socket.socket) -> None:
        assert systemd.stopping()
        assert systemd.watchdog()
        assert received(notify_socket) == "STOPPING=1"
        assert received(notify_socket) == "WATCHDOG=1"

    def test_reloading_carries_a_monotonic_timestamp(self, notify_socket: socket.socket) -> None:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert systemd.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        lines = received(notify_socket).split("\n")
        assert lines[0] == "RELOADING=1"
        match = re.fullmatch(r"MONOTONIC_USEC=(\d+)", lines[1])
        assert match is not None
        assert before <= int(match.group(1)) <= after

    def test_status_is_one_line(self, notify_socket: socket.socket) -> None:
        assert systemd.status("3 calls\nREADY=1")
        assert received(notify_socket) == "STATUS=3 calls READY=1"

    def test_abstract_socket(self, monkeypatch: pytest.MonkeyPatch) -> None:
        name = f"callrouter-test-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("\0" + name)
            sock.settimeout(5.0)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
            assert systemd.ready()
            assert received(sock) == "READY=1"

    def test_no_socket_is_a_no_op(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        assert not systemd.ready()
        assert not systemd.watchdog()

    def test_unreachable_socket_returns_false(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
        assert not systemd.ready()
        monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
        assert not systemd.ready()


class TestWatchdog:
    """WATCHDOG_USEC / WATCHDOG_PID are read as sd_watchdog_enabled(3) reads them."""

    def test_interval_for_this_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WATCHDOG_USEC", "60000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        assert systemd.watchdog_interval() == 60.0

    def test_interval_meant_for_another_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WATCHDOG_USEC", "60000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
        assert systemd.watchdog_interval() is None

    @pytest.mark.parametrize("raw", ["", "soon", "0", "-5"])
    def test_bad_or_zero_interval(self, raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WATCHDOG_USEC", raw)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        assert systemd.watchdog_interval() is None

    def test_no_watchdog(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        assert systemd.watchdog_interval() is None
        asyncio.run(asyncio.wait_for(systemd.keep_watchdog_fed(), 5.0))  # returns at once

    def test_keep_fed_pings_from_the_loop(
        self, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WATCHDOG_USEC", "20000")  # 20 ms: pings every 10 ms
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

        async def two_pings() -> list[str]:
            task = asyncio.create_task(systemd.keep_watchdog_fed())
            loop = asyncio.get_running_loop()
            try:
                return [await loop.run_in_executor(None, received, notify_socket) for _ in "ab"]
            finally:
                task.cancel()

        assert asyncio.run(asyncio.wait_for(two_pings(), 10.0)) == ["WATCHDOG=1"] * 2


REPO = Path(__file__).resolve().parents[2]
MDWE_EXEC = Path(__file__).with_name("mdwe_exec.py")

# A pjsua2 endpoint as a SIP worker runs one: SIP on loopback, null sound device, a WAV player
# mixed through the conference bridge (pjmedia's own threads), then a quick destroy.
PJSUA2_UNDER_MDWE = """
import os, sys, tempfile, wave
import pjsua2 as pj
ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.consoleLevel = 1
cfg.medConfig.clockRate = 8000
ep.libInit(cfg)
transport = pj.TransportConfig()
transport.port = 0
transport.boundAddress = "127.0.0.1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
ep.libStart()
ep.audDevManager().setNullDev()
path = os.path.join(tempfile.mkdtemp(), "tone.wav")
with wave.open(path, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(8000)
    out.writeframes(b"\\x10\\x00" * 4000)
player = pj.AudioMediaPlayer()
player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
player.startTransmit(ep.audDevManager().getPlaybackDevMedia())
for _ in range(15):
    ep.libHandleEvents(20)
del player
ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
print("pjsua2 ran")
"""


def _under_mdwe(*command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(MDWE_EXEC), *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if result.returncode == 77:
        pytest.skip(result.stderr.strip())
    return result


class TestMemoryDenyWriteExecute:
    """The unit's MemoryDenyWriteExecute=yes is safe: our stack runs with W^X enforced."""

    def test_pjsua2_endpoint_and_media(self) -> None:
        result = _under_mdwe(sys.executable, "-c", PJSUA2_UNDER_MDWE)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "pjsua2 ran"  # after libCreate's banner

    def test_settings_stack(self) -> None:
        """pydantic, PyYAML, icalendar and holidays, through `callrouter check`."""
        result = _under_mdwe(sys.executable, "-m", "callrouter", "check", "--config", "config.yaml")
        assert result.returncode == 0, result.stderr
        assert "config.yaml: ok" in result.stdout

    def test_a_write_execute_mapping_is_refused(self) -> None:
        """Without this the two tests above would prove nothing."""
        probe = (
            "import mmap\n"
            "try:\n"
            "    mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
            "except PermissionError:\n"
            "    print('refused')\n"
        )
        result = _under_mdwe(sys.executable, "-c", probe)
        assert result.stdout.strip() == "refused"


def _verifiable_copy(tmp_path: Path, unit: Path = UNIT) -> Path:
    """The unit with /opt/callrouter/bin/callrouter pointed at a binary that exists here.

    ``verify`` checks that the ExecStart (and ExecStartPre) programs exist; on a build machine
    /opt/callrouter/bin/callrouter does not, so we check a copy that runs this interpreter
    instead. Everything else in the file is checked exactly as shipped.
    """
    text = unit.read_text()
    shipped = "/opt/callrouter/bin/callrouter"
    assert shipped in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(shipped, sys.executable))
    return copy


@needs_analyze
class TestUnitFile:
    """systemd-analyze accepts the unit without a word and scores its hardening."""

    def test_verify_is_silent(self, tmp_path: Path) -> None:
        assert ANALYZE is not None
        result = subprocess.run(
            [ANALYZE, "verify", str(_verifiable_copy(tmp_path))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stderr) == (0, "")

    def test_verify_catches_an_unknown_key(self, tmp_path: Path) -> None:
        """The check above could pass vacuously; show that verify does speak up."""
        assert ANALYZE is not None
        copy = _verifiable_copy(tmp_path)
        copy.write_text(copy.read_text().replace("[Service]", "[Service]\nNoSuchKey=1", 1))
        result = subprocess.run(
            [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
        )
        assert "NoSuchKey" in result.stderr

    def test_security_score(self) -> None:
        assert ANALYZE is not None
        result = subprocess.run(
            [ANALYZE, "security", "--offline=yes", f"--threshold={SECURITY_THRESHOLD}", str(UNIT)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Overall exposure level for callrouter.service" in result.stdout

    def test_shipped_keys(self) -> None:
        text = UNIT.read_text()
        for line in (
            "Type=notify",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "DynamicUser=yes",
            "StateDirectory=callrouter",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
        ):
            assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line


KAMAILIO = Path("/usr/sbin/kamailio")


@needs_analyze
class TestEdgeUnitFile:
    """The edge's own unit: silent verify, hardening score locked in, Kamailio fits the sandbox."""

    def test_verify_is_silent(self, tmp_path: Path) -> None:
        assert ANALYZE is not None
        copy = _verifiable_copy(tmp_path, EDGE_UNIT)
        result = subprocess.run(
            [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
        )
        assert (result.returncode, result.stderr) == (0, "")

    def test_security_score(self) -> None:
        assert ANALYZE is not None
        threshold = f"--threshold={EDGE_SECURITY_THRESHOLD}"
        result = subprocess.run(
            [ANALYZE, "security", "--offline=yes", threshold, str(EDGE_UNIT)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Overall exposure level for callrouter-edge.service" in result.stdout

    def test_shipped_keys(self) -> None:
        text = EDGE_UNIT.read_text()
        for line in (
            "ExecStartPre=/opt/callrouter/bin/callrouter edge-config --config ${CALLROUTER_CONFIG}"
            " --out ${RUNTIME_DIRECTORY}",
            "Conflicts=kamailio.service",
            "Before=callrouter.service",
            "DynamicUser=yes",
            "CapabilityBoundingSet=",
            "MemoryDenyWriteExecute=yes",
        ):
            assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line

    @pytest.mark.skipif(not KAMAILIO.exists(), reason="needs Debian's kamailio")
    def test_edge_config_then_kamailio_under_mdwe(self, tmp_path: Path) -> None:
        """What ExecStartPre does, then Kamailio loading every module with W^X enforced."""
        out = tmp_path / "run"
        made = subprocess.run(
            [sys.executable, "-m", "callrouter", "edge-config", "--config", "config.yaml",
             "--out", str(out)],
            capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "kamailio -c ok" in made.stdout
        result = _under_mdwe(str(KAMAILIO), "-c", "-f", str(out / "kamailio.cfg"))
        assert result.returncode == 0, result.stderr
        assert "config file ok" in result.stdout + result.stderr
