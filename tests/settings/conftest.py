"""A copy of the shipped configuration tree per test, edited in place, and `callrouter check`
run on it as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from callrouter.settings.errors import ConfigError, ConfigIssue
from callrouter.settings.loader import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m callrouter ARGS`` with this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "callrouter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Tree:
    """A writable copy of config.yaml, dialplans/ and rotas/."""

    root: Path

    def text(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def line_of(self, relative: str, needle: str) -> int:
        """1-based line of the only line containing ``needle``."""
        hits = [n for n, line in enumerate(self.text(relative).splitlines(), 1) if needle in line]
        assert len(hits) == 1, f"{needle!r} is on lines {hits} of {relative}"
        return hits[0]

    def col(self, relative: str, line: int, needle: str) -> int:
        """1-based column of ``needle`` on 1-based ``line``."""
        text = self.text(relative).splitlines()[line - 1]
        assert needle in text, (needle, text)
        return text.index(needle) + 1

    def replace(self, relative: str, old: str, new: str) -> int:
        """Replace the one occurrence of ``old``; return the 1-based line where it started."""
        text = self.text(relative)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {relative}"
        line = text[: text.index(old)].count("\n") + 1
        (self.root / relative).write_text(text.replace(old, new), encoding="utf-8")
        return line

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.write_text(text, encoding="utf-8")
        return path

    def check(self) -> subprocess.CompletedProcess[str]:
        return run_cli("check", "--config", "config.yaml", cwd=self.root)

    def load(self) -> Settings:
        return load_settings(self.root / "config.yaml")

    def issues(self) -> tuple[ConfigIssue, ...]:
        """The issues of a tree that must fail to load."""
        with pytest.raises(ConfigError) as caught:
            self.load()
        return caught.value.issues


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "service"
    root.mkdir()
    shutil.copy(REPO / "config.yaml", root / "config.yaml")
    shutil.copytree(REPO / "dialplans", root / "dialplans")
    shutil.copytree(REPO / "rotas", root / "rotas")
    return Tree(root)
