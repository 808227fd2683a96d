"""Two engine nodes on two "hosts" (network namespaces) behind one Kamailio edge, sharing busy
state over a real mosquitto: a consultant talking through one node is not rung by the other.

Each node runs ``callrouter run`` with ``edge.remote_edge`` (its worker listens on its own
address and takes calls from the edge only); the edge, its dispatcher list naming both nodes'
workers by address, runs on the test's side of the bridge with the broker, the sipp GPs and the
sipp consultants. No packet leaves the bridge."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from callrouter.edge.kamailio_cfg import EdgePlan, EdgeWorker
from callrouter.edge.process import check_config, options_probe, write_files
from tests.adapters.mosquitto_broker import MosquittoBroker

from . import records
from .conftest import needs_tools
from .netns import Host, Network, can_make_namespaces, hosts
from .peers import Peer, Peers
from .running_engine import RunningEngine, engine_ports
from .test_edge import KAMAILIO, needs_kamailio
from .tree import MQTT_PREFIX, NUMBER, Member, TreeSpec, write_tree

needs_root = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2")
pytestmark = [needs_tools, needs_kamailio, needs_root, pytest.mark.sip, pytest.mark.timeout(150)]


class TestGeneratedConfig:
    """An edge listing a worker on another host: Kamailio accepts the config."""

    def test_remote_workers_pass_kamailio_check(self, tmp_path: Path) -> None:
        plan = EdgePlan(
            listen_host="127.0.0.1",
            listen_port=5060,
            worker_host="127.0.0.1",
            workers=(EdgeWorker("w0", 5061, 2), EdgeWorker("r0.0", 5070, 2, host="192.0.2.20")),
            trunk_allow=("127.0.0.0/8",),
            run_dir=tmp_path,
        )
        write_files(plan)
        asyncio.run(check_config(KAMAILIO, plan))  # raises with Kamailio's words if refused
        assert "sip:192.0.2.20:5070" in plan.dispatcher_file.read_text()


def connected_events(engine: RunningEngine) -> list[dict[str, Any]]:
    return [e for e in engine.log_events() if e.get("event") == "Connected"]


def wait_for(
    what: str, condition: Any, engines: list[RunningEngine], limit: float = 20
) -> None:  # a predicate
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what + "\n" + "\n".join(e.log() for e in engines))
        time.sleep(0.1)


class TwoNodes:
    """Node A (edge) and node B in their namespaces, one broker and the peers on the bridge."""

    def __init__(self, tmp_path: Path, prompt_cache: Path, network: Network) -> None:
        self.tmp = tmp_path
        self.prompt_cache = prompt_cache
        self.network = network
        self.broker = MosquittoBroker(self._dir("broker"), host=network.bridge_address)
        self.peers = Peers(tmp_path)
        self.engines: list[RunningEngine] = []
        self.kamailio: subprocess.Popen[bytes] | None = None

    def _dir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        return path

    def engine(
        self,
        name: str,
        host: Host,
        members: tuple[Member, ...],
        edit: Any,  # a callback
    ) -> RunningEngine:
        spec = TreeSpec(
            members=members,
            trunk_allow=(self.network.subnet,),
            mqtt_port=self.broker.port,
        )
        ports = engine_ports(1)
        root = self._dir(f"tree-{name}")
        write_tree(root / "t", spec, ports, self.prompt_cache)
        path = root / "t" / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["sip"]["listen_host"] = host.address
        config["mqtt"]["host"] = self.network.bridge_address
        config["mqtt"]["client_id"] = f"node-{name}"
        edit(config, ports)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        engine = RunningEngine(
            config=path,
            ports=ports,
            db=root / "records.sqlite3",
            log_path=root / "engine.log",
            netns=host.netns,
            sip_host=host.address,
        )
        self.engines.append(engine)
        return engine

    def edge(self, engines: list[RunningEngine], network: Network) -> EdgePlan:
        """The edge on the test's side of the bridge, listing each node's worker by address
        (as ``edge.remote_workers`` would), run as ``callrouter edge-config`` leaves it."""
        plan = EdgePlan(
            listen_host=network.bridge_address,
            listen_port=free_udp_port(network.bridge_address),
            worker_host="127.0.0.1",
            workers=tuple(
                EdgeWorker(f"r{i}.0", engine.ports.sip, 2, host=engine.sip_host)
                for i, engine in enumerate(engines)
            ),
            trunk_allow=(network.subnet,),
            run_dir=self._dir("edge"),
        )
        write_files(plan)
        asyncio.run(check_config(KAMAILIO, plan))
        log = (plan.run_dir / "kamailio.log").open("wb")
        with log:
            self.kamailio = subprocess.Popen(
                [str(KAMAILIO), "-DD", "-E", "-f", str(plan.config_file), "-P",
                 str(plan.pid_file), "-Y", str(plan.run_dir), "-m", "64", "-M", "8"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "LC_ALL": "C"},
            )  # fmt: skip
        wait_for(
            "the edge never answered OPTIONS",
            lambda: options_probe(plan.listen_host, plan.listen_port),
            self.engines,
        )
        return plan

    def stop(self) -> None:
        if self.kamailio is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.kamailio.pid, signal.SIGKILL)
            self.kamailio.wait(10)
        self.peers.kill_all()
        for engine in self.engines:
            engine.stop()
        self.broker.stop()


@dataclass
class Running:
    """Both nodes up behind the edge, and the two consultants (first and second on the rota)."""

    world: TwoNodes
    engines: list[RunningEngine]
    consultants: dict[str, Peer]
    gp_args: dict[str, str]
    first: Member
    second: Member

    def gp(self, name: str, talk_ms: int) -> Peer:
        return self.world.peers.gp(name, "uac_edge_menu_bye.xml", **self.gp_args,
                                   variables={"talk_ms": talk_ms})  # fmt: skip

    def finish(self) -> None:
        for engine in self.engines:
            engine.wait_idle()
        for peer in self.consultants.values():
            peer.kill()

    def retained_claims(self, within: float = 5.0) -> list[str]:
        """Busy claims still retained on the broker ``within`` seconds after the calls ended
        (the last release may still be on its way when the engine says it is idle)."""
        deadline = time.monotonic() + within
        while True:
            found = asyncio.run(_retained(self.world.broker, f"{MQTT_PREFIX}/busy/#"))
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


async def _retained(broker: MosquittoBroker, topic_filter: str) -> list[str]:
    found: list[str] = []
    watcher = f"e2e-watcher-{time.monotonic_ns()}"
    async with aiomqtt.Client(broker.host, broker.port, identifier=watcher) as client:
        await client.subscribe(topic_filter, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):  # retained messages come at once on subscribing
                async for message in client.messages:
                    if message.retain and message.payload:
                        found.append(f"{message.topic.value} {message.payload!r}")
    return found


@contextlib.contextmanager
def two_nodes(tmp_path: Path, prompt_cache: Path) -> Iterator[Running]:
    with hosts(2) as network:
        world = TwoNodes(tmp_path, prompt_cache, network)
        try:
            here = network.bridge_address
            members = (
                Member("c-first", free_udp_port(here), host=here),
                Member("c-second", free_udp_port(here), host=here),
            )
            world.broker.start()

            def behind_the_edge(config: dict[str, Any], _ports: Any) -> None:  # Ports
                config["edge"] = {"remote_edge": here}

            engines = [
                world.engine(n, h, members, behind_the_edge)
                for n, h in zip("ab", network.hosts, strict=True)
            ]
            for engine in engines:
                engine.start()
            edge = world.edge(engines, network)
            consultants = {
                m.id: world.peers.consultant(
                    m.id, "uas_accept.xml", port=m.port, host=here, calls=2, ring_ms=300,
                    key_ms=200,
                )
                for m in members
            }  # fmt: skip
            gp_args = {"engine": f"{here}:{edge.listen_port}", "number": NUMBER, "source": here}
            yield Running(world, engines, consultants, gp_args, *members)
        finally:
            world.stop()


class TestSharedBusyState:
    """A consultant talking through one node is not rung by the other."""

    def test_the_second_node_skips_the_consultant_the_first_is_talking_to(
        self, tmp_path: Path, prompt_cache: Path
    ) -> None:
        with two_nodes(tmp_path, prompt_cache) as run:
            engines, first, second = run.engines, run.first, run.second
            talking = run.gp("gp-long", talk_ms=4000)
            wait_for(
                "the first call never connected",
                lambda: sum(len(connected_events(e)) for e in engines) == 1,
                engines,
            )
            (holder,) = [e for e in engines if connected_events(e)]
            (other,) = [e for e in engines if e is not holder]
            assert connected_events(holder)[0]["member_id"] == first.id
            # The edge gives the next call to the node with no call: the other one.
            second_call = run.gp("gp-short", talk_ms=1000)
            assert second_call.wait(40) == 0, second_call.explain() + other.log()
            assert talking.wait(40) == 0, talking.explain() + holder.log()
            run.finish()

            held, took = records.only_call(holder.db), records.only_call(other.db)
            assert (held["outcome"], took["outcome"]) == ("connected", "connected"), (held, took)
            rung_by_other = [leg["member_id"] for leg in records.legs(other.db, took["call_id"])]
            assert rung_by_other == [second.id], other.log()  # the first was busy on the holder
            assert len(run.consultants[first.id].received("INVITE")) == 1  # by the holder only
            assert len(run.consultants[second.id].received("INVITE")) == 1
            assert [e["member_id"] for e in connected_events(other)] == [second.id]
            left = run.retained_claims()
            assert left == [], left  # every claim released when its call ended


class TestRace:
    """Two GPs at once, one on each node: both hunts want the first consultant in the same
    instant. Whatever the timing, the first consultant answers one call only, a leg given up to
    the other node ends as busy (never blamed on the consultant), and both GPs connect."""

    def test_two_nodes_hunting_at_once_never_both_reach_one_consultant(
        self, tmp_path: Path, prompt_cache: Path
    ) -> None:
        with two_nodes(tmp_path, prompt_cache) as run:
            engines, first, second = run.engines, run.first, run.second
            gps = [run.gp(f"gp-{i}", talk_ms=1500) for i in range(2)]
            for gp in gps:
                assert gp.wait(40) == 0, gp.explain() + "".join(e.log() for e in engines)
            run.finish()

            rows = [records.only_call(e.db) for e in engines]  # one call on each node
            assert [r["outcome"] for r in rows] == ["connected", "connected"], rows
            connected = sorted(e["member_id"] for n in engines for e in connected_events(n))
            assert connected == [first.id, second.id]
            legs = [leg for n, r in zip(engines, rows, strict=True)
                    for leg in records.legs(n.db, r["call_id"])]  # fmt: skip
            to_first = [leg for leg in legs if leg["member_id"] == first.id]
            assert [leg["result"] for leg in to_first].count("accepted") == 1, legs
            assert {leg["result"] for leg in to_first} <= {"accepted", "busy"}, legs
            # an ACK follows each 200 to an INVITE: the first consultant answered one call
            assert len(run.consultants[first.id].received("ACK")) == 1, "answered twice"
            left = run.retained_claims()
            assert left == [], f"{left}\n" + "".join(e.log(20000) for e in engines)


def free_udp_port(host: str) -> int:
    import socket  # noqa: PLC0415  # only here

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
