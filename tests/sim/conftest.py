"""Small workloads written per test, so every run is quick and self-contained."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = """\
seed: 3
start: 2026-03-02
days: 5
hours: ["09:00", "17:00"]
calls_per_hour:
  dermatology: 3
  cardiology: 1.5
teams:
  dermatology: {local: 2, ncn: 2}
  cardiology: {local: 2, ncn: 1}
consultants:
  answer_probability: 0.5
  answer_delay_seconds: {median: 8, p90: 20}
  accept_probability: 0.95
  overrides:
    dermatology-local-1: {answer_probability: 0.3}
    dermatology-local-2: {answer_probability: 0.9, answer_delay_seconds: {median: 5, p90: 10}}
call_length_seconds: {median: 300, p90: 600}
gp_patience_seconds: 120
"""


@pytest.fixture
def write(tmp_path: Path):
    """Write a workload file and return its path."""

    def _write(text: str, name: str = "workload.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def tiny(write) -> Path:
    return write(TINY)
