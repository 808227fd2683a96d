"""Fixtures for the end-to-end tests: a config tree, the engine as a subprocess, sipp peers.

One prompt cache serves the whole session (espeak-ng renders each prompt once). Each test gets
its own ports, tree, database and peers; every process is stopped or killed when it ends.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sip.conftest import free_port

from .peers import Peer, Peers
from .running_engine import RunningEngine, engine_ports
from .tree import Member, TreeSpec, write_tree

needs_tools = pytest.mark.skipif(
    shutil.which("sipp") is None or shutil.which("espeak-ng") is None,
    reason="needs sipp (sip-tester) and espeak-ng",
)


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompt-cache")


def member(member_id: str, tier: str = "local") -> Member:
    """A rota member on a free port of its own (its sipp consultant binds it)."""
    return Member(member_id, free_port(), tier)


@dataclass
class E2E:
    """One test's world: ``start(spec)`` brings up an engine; ``peers`` starts sipp."""

    tmp_path: Path
    prompt_cache: Path
    peers: Peers
    engine: RunningEngine | None = None

    def start(
        self,
        spec: TreeSpec,
        *,
        config: Callable[[dict[str, Any]], None] | None = None,
        db: Path | None = None,
    ) -> RunningEngine:
        """Write the tree for ``spec`` (``config`` may edit config.yaml's contents first) and
        start the engine on it, its records in ``db`` (default: the test's tmp directory)."""
        ports = engine_ports(spec.workers, edge=spec.edge)
        root = self.tmp_path / "tree"
        write_tree(root, spec, ports, self.prompt_cache)
        if config is not None:
            path = root / "config.yaml"
            contents = yaml.safe_load(path.read_text())
            config(contents)
            path.write_text(yaml.safe_dump(contents, sort_keys=False))
        self.engine = RunningEngine(
            config=root / "config.yaml",
            ports=ports,
            db=db or self.tmp_path / "records.sqlite3",
            log_path=self.tmp_path / "engine.log",
        )
        self.engine.start()
        return self.engine

    def gp(
        self, name: str, scenario: str, number: str, *, pause_ms: int = 0, **variables: float
    ) -> Peer:
        """A sipp GP calling ``number`` at this test's engine."""
        assert self.engine is not None
        return self.peers.gp(
            name,
            scenario,
            engine=self.engine.sip_uri_host,
            number=number,
            pause_ms=pause_ms,
            variables=variables,
        )


@pytest.fixture
def e2e(tmp_path: Path, prompt_cache: Path) -> Iterator[E2E]:
    world = E2E(tmp_path, prompt_cache, Peers(tmp_path))
    try:
        yield world
    finally:
        world.peers.kill_all()
        if world.engine is not None:
            world.engine.stop()
