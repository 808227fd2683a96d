"""`callrouter run` that cannot start says why in one line and exits 1; nothing is left running."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class TestStartFailure:
    """A taken SIP port is reported plainly, not as a traceback."""

    def test_taken_sip_port(self, tmp_path: Path) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            result = subprocess.run(
                [
                    sys.executable, "-m", "callrouter", "run",
                    "--config", str(REPO / "config.yaml"),
                    "--sip-port", str(port),
                    "--metrics-port", "0",
                    "--db", str(tmp_path / "calls.sqlite3"),
                ],
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
        assert result.returncode == 1
        assert "callrouter run: cannot start:" in result.stderr
        assert "Address already in use" in result.stderr
        assert "Traceback" not in result.stderr
