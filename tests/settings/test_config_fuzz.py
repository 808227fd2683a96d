"""3,000 mutated settings files, made deterministically from the shipped tree: none may end in
anything but a clean load or ``ConfigError``s that each carry file:line:col.

The tree is copied once (to tmpfs when there is one); each case mutates one file (deep nesting,
long values, bytes that are not UTF-8, control characters, bit flips, truncations, duplicated or
deleted lines, alias bombs, tabs), runs the loader in-process and puts the file back. A mutated
file first goes through the loader's own per-file step (``read_model``: read, parse, validate);
when it is sound on its own, or it is config.yaml (whose errors change how the rest of the tree
is read), the whole tree is loaded with ``load_settings`` as ``callrouter check`` does,
cross-file checks and calendars included.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from callrouter.settings.config import Config
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError, ConfigIssue
from callrouter.settings.ics import IcsError, read_calendar
from callrouter.settings.loader import load_settings
from callrouter.settings.rota import RotaFile
from callrouter.settings.source import read_model
from tests.settings.conftest import REPO
from tests.settings.mutations import MUTATORS, mutate

SEED = 20_261_204
CASES = 3000


def model_of(path: Path) -> type[BaseModel]:
    if path.name == "config.yaml":
        return Config
    return Dialplan if path.parent.name == "dialplans" else RotaFile


def outcome(root: Path, path: Path) -> tuple[str, tuple[ConfigIssue, ...]]:
    """("loaded", ()) or ("refused", its issues); any other exception propagates."""
    context: dict[str, Any] = {"base_dir": root.resolve()}
    _, issues = read_model(path, model_of(path), context)
    errors = tuple(issue for issue in issues if issue.severity == "error")
    if errors and path.name != "config.yaml":
        return "refused", errors
    try:
        load_settings(root / "config.yaml")
    except ConfigError as error:
        return "refused", error.issues
    return "loaded", ()


@pytest.fixture
def ram_tree(tmp_path: Path) -> Iterator[Path]:
    """A copy of the shipped tree, on tmpfs when there is one: 6,000 small writes should not wait
    on a disk other tests keep busy."""
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="callrouter-fuzz-", dir=shm if shm.is_dir() else tmp_path))
    try:
        shutil.copy(REPO / "config.yaml", root / "config.yaml")
        shutil.copytree(REPO / "dialplans", root / "dialplans")
        shutil.copytree(REPO / "rotas", root / "rotas")
        yield root
    finally:
        shutil.rmtree(root)


def test_mutated_files_give_positions_never_a_traceback(ram_tree: Path) -> None:
    root = ram_tree
    files = [
        root / "config.yaml",
        *sorted((root / "dialplans").glob("*.yaml")),
        *sorted((root / "rotas").glob("*.yaml")),
    ]
    originals = {path: path.read_bytes() for path in files}
    rng = random.Random(SEED)
    results: Counter[str] = Counter()
    refused_by: Counter[str] = Counter()
    escaped: list[str] = []
    unplaced: list[str] = []
    for case in range(CASES):
        path = rng.choice(files)
        data, names = mutate(originals[path], rng)
        path.write_bytes(data)
        label = f"case {case}: {path.relative_to(root)} {'+'.join(names)}"
        try:
            result, issues = outcome(root, path)
        # Anything but ConfigError escaping the loader is the bug this test looks for.
        except Exception as error:
            escaped.append(f"{label}: {type(error).__name__}: {error}"[:300])
            continue
        finally:
            path.write_bytes(originals[path])
        results[result] += 1
        if result == "refused":
            refused_by[names[0]] += 1
            assert issues, label  # refused with nothing said would be a bug too
        unplaced += [
            f"{label}: {issue}"[:300]
            for issue in issues
            if issue.line is None or issue.col is None or issue.path not in originals
        ]
    assert escaped == [], "\n".join(escaped[:10])
    assert unplaced == [], "\n".join(unplaced[:10])
    assert results["refused"] + results["loaded"] == CASES
    # The mutations do break files (every kind of them), and some still load.
    assert results["refused"] > CASES * 9 // 10
    assert results["loaded"] > 0
    assert set(refused_by) == {mutator.__name__ for mutator in MUTATORS}


ICS_CASES = 500
# Property values a calendar may be given by mistake: impossible dates, bad rules, bad zones.
ICS_VALUES = (
    b"",
    b"x",
    b"20261301T250000",
    b"99999999T999999Z",
    b"FREQ=DAILY;COUNT=-1",
    b"FREQ=YEARLY;BYMONTH=13",
    b"FREQ=MINUTELY;INTERVAL=0",
    b"FREQ=SECONDLY",
    b"P-1D",
)


def test_mutated_calendars_give_a_calendar_error_never_a_traceback(tmp_path: Path) -> None:
    """The ICS layer's calendar, mutated the same ways plus a property value swapped for a bad
    one, read as the loader reads it: an ``IcsError`` (which the loader places at the rota's
    ``ics:`` line) or shifts, nothing else."""
    original = (REPO / "rotas" / "barnet-dermatology-clinic.ics").read_bytes()
    path = tmp_path / "calendar.ics"
    zone = ZoneInfo("Europe/London")
    until = datetime(2028, 12, 1, tzinfo=zone)
    rng = random.Random(SEED)
    results: Counter[str] = Counter()
    escaped: list[str] = []
    for case in range(ICS_CASES):
        data, names = mutate(original, rng)
        if rng.random() < 0.3:
            lines = data.split(b"\n")
            at = rng.randrange(len(lines))
            lines[at] = lines[at].split(b":")[0] + b":" + rng.choice(ICS_VALUES)
            data, names = b"\n".join(lines), (*names, "value")
        path.write_bytes(data)
        try:
            read_calendar(path, zone, until)
        except IcsError:
            results["refused"] += 1
        # Anything but IcsError escaping the reader is the bug this test looks for.
        except Exception as error:
            escaped.append(f"case {case} {'+'.join(names)}: {type(error).__name__}: {error}"[:300])
        else:
            results["read"] += 1
    assert escaped == [], "\n".join(escaped[:10])
    assert results["refused"] > ICS_CASES // 2
    assert results["read"] > 0
