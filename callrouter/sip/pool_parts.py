"""The small types around ``WorkerPool`` (re-exported there), and the workers' environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class WorkerObserver(Protocol):
    """Told of worker deaths and restarts (``name`` is the configured id, e.g. ``w0``)."""

    def worker_died(self, worker: str) -> None: ...

    def worker_restarted(self, worker: str) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkerView:
    """One worker from outside: ``started`` (wanted running), ``ready`` (serving now)."""

    name: str
    port: int
    started: bool
    ready: bool
    retiring: bool
    slots: int
    held: int  # slots in use, kept for an admitted GP, or wanted by a waiting Dial


class WorkerStartError(RuntimeError):
    """A worker did not report Ready in time, or exited first."""


def child_env() -> dict[str, str]:
    """Our environment, with this package importable in the child even if not installed."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    env["PYTHONUNBUFFERED"] = "1"
    return env
