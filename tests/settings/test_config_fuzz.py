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
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from callrouter.settings.config import Config
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError, ConfigIssue
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
