"""SIGHUP reload: a good tree replaces the dialplans and rotas; a bad one keeps what runs."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrouter.app import build_env, reload_settings
from callrouter.core import domain as d
from callrouter.core.learning import MemberStats
from callrouter.engine import Engine, EngineLimits, EnginePresence
from callrouter.settings.loader import Settings, load_settings
from callrouter.sip import protocol as p
from tests.engine.test_engine import FakeSip, Prompts, Recorder, settle

REPO = Path(__file__).resolve().parents[2]


def copy_tree(root: Path) -> Path:
    shutil.copy(REPO / "config.yaml", root / "config.yaml")
    shutil.copytree(REPO / "dialplans", root / "dialplans")
    shutil.copytree(REPO / "rotas", root / "rotas")
    return root / "config.yaml"


def engine_on(config: Path, sip: FakeSip | None = None, sink: Recorder | None = None) -> Engine:
    settings = load_settings(config)
    presence = EnginePresence()
    return Engine(
        sip=FakeSip() if sip is None else sip,
        dialplans=settings,
        env=build_env(settings, presence, MemberStats()),
        presence=presence,
        prompts=Prompts(),
        sink=Recorder() if sink is None else sink,
        limits=EngineLimits(max_concurrent_calls=5, trunk_allows=lambda _host: True),
    )


class Prepared:
    """Records which trees were prepared (prompts made) before the engine took them."""

    def __init__(self) -> None:
        self.trees: list[Settings] = []

    async def __call__(self, fresh: Settings) -> None:
        self.trees.append(fresh)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket standing in for systemd's, named in $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def datagrams(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except TimeoutError:
            return out


class Failing:
    """A prepare step that fails as a full disk would."""

    async def __call__(self, fresh: Settings) -> None:
        raise OSError(28, "No space left on device")


class TestReload:
    """What SIGHUP does to the running engine."""

    def test_good_tree_is_taken(self, tmp_path: Path) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        before = engine.env
        barnet = tmp_path / "dialplans" / "barnet.yaml"
        barnet.write_text(
            barnet.read_text().replace('  - "02080000011"', '  - "02080000099"'), encoding="utf-8"
        )
        prepared = Prepared()
        fresh = asyncio.run(reload_settings(engine, config, prepared))
        assert fresh is not None
        assert prepared.trees == [fresh]
        assert engine.env is not before
        assert engine.env.stats is before.stats  # what was learned of consultants is kept
        assert fresh.dialplan_for("02080000099") is not None

    def test_a_number_added_by_reload_takes_the_next_call(self, tmp_path: Path) -> None:
        """Before the reload the new number gets 404; after it, a call to it is answered and
        runs on the new tree's dialplan, in the engine that kept serving throughout."""
        config = copy_tree(tmp_path)
        sip, sink = FakeSip(), Recorder()
        engine = engine_on(config, sip, sink)
        barnet = tmp_path / "dialplans" / "barnet.yaml"
        new = "02080000099"

        def call(leg: str) -> p.Incoming:
            return p.Incoming(leg, "07700900101", "Dr Okafor", new, "127.0.0.1", 5060, leg)

        async def main() -> None:
            serving = asyncio.create_task(engine.serve())
            await sip.events.put(call("in-1"))
            await settle()
            barnet.write_text(
                barnet.read_text().replace('  - "02080000011"', f'  - "{new}"'), encoding="utf-8"
            )
            assert await reload_settings(engine, config, Prepared()) is not None
            await sip.events.put(call("in-2"))
            await settle()
            assert engine.active_calls == 1
            await sip.events.put(p.HungUp("in-2", 0))
            await settle()
            await sip.events.put(None)
            await asyncio.wait_for(serving, 5)

        asyncio.run(main())
        assert [(r.leg, r.status) for r in sip.of(p.Reject)] == [("in-1", 404)]  # type: ignore[attr-defined]
        assert sip.of(p.Answer) == [p.Answer("in-2")]
        [offered] = [ev for ev in sink.events if isinstance(ev, d.CallOffered)]
        assert (offered.area, offered.clinician) == ("barnet", "Dr Ada Okafor")
        assert isinstance(sink.events[-1], d.CallEnded)

    def test_bad_tree_keeps_the_running_config(self, tmp_path: Path) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        before = engine.env
        barnet = tmp_path / "dialplans" / "barnet.yaml"
        barnet.write_text(barnet.read_text() + "\nmystery_key: 1\n", encoding="utf-8")
        prepared = Prepared()
        assert asyncio.run(reload_settings(engine, config, prepared)) is None
        assert engine.env is before
        assert prepared.trees == []

    def test_bad_tree_tells_systemd_why(
        self, tmp_path: Path, notify_socket: socket.socket
    ) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        barnet = tmp_path / "dialplans" / "barnet.yaml"
        barnet.write_text(barnet.read_text() + "\nmystery_key: 1\n", encoding="utf-8")
        assert asyncio.run(reload_settings(engine, config, Prepared())) is None
        sent = datagrams(notify_socket)
        assert sent[0].startswith("RELOADING=1")
        assert sent[1].startswith("STATUS=reload FAILED")
        assert "running configuration kept" in sent[1]
        assert "barnet.yaml" in sent[1]
        assert "mystery_key" in sent[1]
        assert "\n" not in sent[1]  # one line, as the protocol needs
        assert sent[2:] == ["READY=1"]  # out of "reloading", still serving the old tree

    def test_good_tree_reports_running(self, tmp_path: Path, notify_socket: socket.socket) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        assert asyncio.run(reload_settings(engine, config, Prepared())) is not None
        sent = datagrams(notify_socket)
        assert sent[1].startswith("STATUS=running; configuration reloaded")
        assert sent[2:] == ["READY=1"]

    def test_failure_preparing_the_tree_keeps_the_running_config(
        self, tmp_path: Path, notify_socket: socket.socket
    ) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        before = engine.env
        assert asyncio.run(reload_settings(engine, config, Failing())) is None
        assert engine.env is before
        sent = datagrams(notify_socket)
        assert "No space left on device" in sent[1]
        assert sent[2:] == ["READY=1"]

    def test_key_and_recording_change_only_at_a_restart(
        self, tmp_path: Path, notify_socket: socket.socket
    ) -> None:
        config = copy_tree(tmp_path)
        engine = engine_on(config)
        running = load_settings(config).config
        text = config.read_text()
        config.write_text(text.replace("key_file: var/callrouter.key", "key_env: OTHER_KEY"))
        errors: list[str] = []
        fresh = asyncio.run(
            reload_settings(engine, config, Prepared(), errors.append, running=running)
        )
        assert fresh is None
        (error,) = errors
        line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("security:"))
        assert f"config.yaml:{line}:1: security: changed" in error
        assert "only at a restart" in error
        assert "STATUS=reload FAILED" in datagrams(notify_socket)[1]
        # the same tree as running reloads fine
        config.write_text(text)
        assert asyncio.run(reload_settings(engine, config, Prepared(), running=running))
