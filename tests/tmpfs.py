"""A small tmpfs of a test's own (we run as root): a real filesystem that fills up."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """Mount a ``size`` tmpfs (``"64k"``, ``"2m"``) at ``mount`` (made if needed); unmounted
    at the end whatever happened, lazily if something still holds it open."""
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
        check=True,
        timeout=10,
    )
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False, timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True, timeout=10)


def resize_tmpfs(mount: Path, size: str) -> None:
    """Give a mounted tmpfs more (or less) room: space returning, as an operator frees it."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True, timeout=10)
