"""The core imports only the standard library and itself: no settings models, no libraries.

Read from the source, so an import inside a function counts too. Imports under
``if TYPE_CHECKING:`` are for the type checker alone and never run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "callrouter" / "core"
MODULES = sorted(CORE.glob("*.py"))


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import that runs, skipping ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            skipped.update(id(child) for body in node.body for child in ast.walk(body))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno}: relative import"
            assert node.module is not None
            found.append((node.lineno, node.module))
    return found


def allowed(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top == "callrouter":
        return module == "callrouter.core" or module.startswith("callrouter.core.")
    return top in sys.stdlib_module_names or top == "__future__"


class TestCoreImports:
    """Every module of ``callrouter/core`` stays inside the core and the standard library."""

    def test_there_are_modules_to_scan(self) -> None:
        names = {path.stem for path in MODULES}
        assert {"callflow", "hunt", "ivr_session", "legs", "line", "timers"} <= names

    @pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
    def test_imports_only_the_core_and_the_standard_library(self, path: Path) -> None:
        bad = [f"{path.name}:{line}: {module}" for line, module in runtime_imports(path)]
        bad = [entry for entry in bad if not allowed(entry.rsplit(": ", 1)[1])]
        assert not bad, "core imports from outside: " + ", ".join(bad)

    def test_the_scan_sees_a_settings_import(self, tmp_path: Path) -> None:
        sample = tmp_path / "sample.py"
        sample.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import pydantic\n"
            "def f():\n    from callrouter.settings.dialplan import Dialplan\n",
            encoding="utf-8",
        )
        modules = [module for _, module in runtime_imports(sample)]
        assert modules == ["typing", "callrouter.settings.dialplan"]
        assert not allowed("callrouter.settings.dialplan")
        assert not allowed("pydantic")
        assert allowed("callrouter.core.legs")
