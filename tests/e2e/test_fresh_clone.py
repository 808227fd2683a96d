"""The README's first command on a fresh clone (issue 9): ``bash scripts/run.sh`` starts the
engine on the shipped config.yaml, with no ``var/`` yet, and answers a sipp GP's call.

The clone is the repository's tracked files copied as they are now (so the test sees this
change, not the last commit); its ``.venv`` is a link to this checkout's, so set-up finds
everything installed and the test needs no network. PYTHONPATH puts the clone's own code first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.sip.conftest import free_range

from . import records
from .conftest import E2E, needs_tools
from .peers import Peer
from .running_engine import REPO, free_tcp_port
from .tree import GP_NUMBER

pytestmark = [needs_tools, pytest.mark.timeout(240)]

BARNET = "02080000001"  # the shipped Barnet advice line
START_LIMIT = 150.0  # a cold prompt cache: every shipped prompt is rendered on first start


def fresh_copy(root: Path) -> Path:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        source = REPO / name
        if source.is_file():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def wait_for_ready(process: subprocess.Popen[bytes], log: Path, health: int) -> None:
    import urllib.request  # noqa: PLC0415  # only this helper speaks HTTP

    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run.sh exited {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"not healthy in {START_LIMIT}s:\n{log.read_text()[-4000:]}")


SHIPPED_RTP = range(40000, 41000)  # config.yaml's rtp_port_min..max


def sip_ports_clear_of_rtp() -> int:
    """Three free ports in a row (edge, worker 0, worker 1) outside the shipped RTP range."""
    while True:
        base = free_range(3)
        if not set(range(base, base + 3)) & set(SHIPPED_RTP):
            return base


class TestFreshClone:
    """What a new user does first."""

    def test_run_command_starts_and_answers(self, tmp_path: Path, e2e: E2E) -> None:
        clone = fresh_copy(tmp_path / "clone")
        assert not (clone / "var").exists()
        health = free_tcp_port()
        sip = sip_ports_clear_of_rtp()  # the edge, then the shipped config's two workers
        log = tmp_path / "run.log"
        env = {**os.environ, "PYTHONPATH": str(clone), "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "scripts/run.sh", "--sip-port", str(sip), "--metrics-port",
                 str(free_tcp_port()), "--health-port", str(health)],
                cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        try:
            wait_for_ready(process, log, health)
            gp: Peer = e2e.peers.gp(
                "gp", "uac_menu_bye.xml", engine=f"127.0.0.1:{sip}", number=BARNET,
                variables={"talk_ms": 500},
            )  # fmt: skip
            assert gp.wait() == 0, gp.explain()
            assert len(gp.received("200")) >= 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            code = process.wait(timeout=30)
        assert code == 0, log.read_text()[-4000:]
        db = clone / "var" / "callrouter.sqlite3"
        assert db.exists()
        call = records.only_call(db)
        assert call["area"] == "barnet"
        assert call["caller_masked"].endswith(GP_NUMBER[-3:])
        assert GP_NUMBER not in call["caller_masked"]
        assert call["ended_at"] is not None
