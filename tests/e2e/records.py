"""Reading what the engine recorded: the SQLite call records and the Prometheus exposition."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def calls(db: Path) -> list[dict[str, Any]]:
    """Every call row, oldest first."""
    return _rows(db, "SELECT * FROM calls ORDER BY offered_at")


def legs(db: Path, call_id: str) -> list[dict[str, Any]]:
    """The legs of one call, in the order they were started."""
    return _rows(db, "SELECT * FROM legs WHERE call_id = ? ORDER BY started_at, leg", (call_id,))


def only_call(db: Path) -> dict[str, Any]:
    rows = calls(db)
    assert len(rows) == 1, f"expected one call record, found {len(rows)}: {rows}"
    return rows[0]


def _rows(db: Path, query: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(query, args)]
    finally:
        connection.close()


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a scrape."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(exposition: str, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample_name, sample_labels), value in samples(exposition).items()
        if sample_name == name and wanted <= sample_labels
    )
