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
from pathlib import Path
from typing import Any

import pytest
import yaml

from callrouter.edge.kamailio_cfg import EdgePlan, EdgeWorker
from callrouter.edge.process import check_config, options_probe, write_files
from tests.adapters.mosquitto_broker import MosquittoBroker

from . import records
from .conftest import needs_tools
from .netns import Host, Network, can_make_namespaces, hosts
from .peers import Peers
from .running_engine import RunningEngine, engine_ports
from .test_edge import KAMAILIO, needs_kamailio
from .tree import NUMBER, Member, TreeSpec, write_tree

needs_root = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and iproute2")
pytestmark = [needs_tools, needs_kamailio, needs_root, pytest.mark.sip, pytest.mark.timeout(150)]


class TestGeneratedConfig:
    """An edge listing a worker on another host: Kamailio accepts the config."""

    def test_remote_workers_pass_kamailio_check(self, tmp_path: Path) -> None:
        plan = EdgePlan(
            listen_host="127.0.0.1",
            listen_port=5060,
            worker_host="127.0.0.1",
            workers=(EdgeWorker("w0", 5061, 2), EdgeWorker("r0.0", 5070, 2, "192.0.2.20")),
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
                EdgeWorker(f"r{i}.0", engine.ports.sip, 2, engine.sip_host)
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


class TestSharedBusyState:
    """A consultant talking through one node is not rung by the other."""

    def test_the_second_node_skips_the_consultant_the_first_is_talking_to(
        self, tmp_path: Path, prompt_cache: Path
    ) -> None:
        with hosts(2) as network:
            world = TwoNodes(tmp_path, prompt_cache, network)
            try:
                self._scenario(world, network)
            finally:
                world.stop()

    def _scenario(self, world: TwoNodes, network: Network) -> None:
        here = network.bridge_address
        members = (
            Member("c-first", free_udp_port(here), host=here),
            Member("c-second", free_udp_port(here), host=here),
        )
        first, second = members
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
        node_a, node_b = engines
        consultants = {
            m.id: world.peers.consultant(
                m.id, "uas_accept.xml", port=m.port, host=here, calls=2, ring_ms=200, key_ms=200
            )
            for m in members
        }
        gp_args = {"engine": f"{here}:{edge.listen_port}", "number": NUMBER, "source": here}
        talking = world.peers.gp("gp-long", "uac_edge_menu_bye.xml", **gp_args,
                                 variables={"talk_ms": 4000})  # fmt: skip
        wait_for(
            "the first call never connected",
            lambda: sum(len(connected_events(e)) for e in engines) == 1,
            engines,
        )
        (holder,) = [e for e in engines if connected_events(e)]
        other = node_b if holder is node_a else node_a
        assert connected_events(holder)[0]["member_id"] == first.id
        # The edge gives the next call to the node with no call: the other one.
        second_call = world.peers.gp("gp-short", "uac_edge_menu_bye.xml", **gp_args,
                                     variables={"talk_ms": 1000})  # fmt: skip
        assert second_call.wait(40) == 0, second_call.explain() + other.log()
        assert talking.wait(40) == 0, talking.explain() + holder.log()
        for engine in engines:
            engine.wait_idle()
        for peer in consultants.values():
            peer.kill()

        held, took = records.only_call(holder.db), records.only_call(other.db)
        assert (held["outcome"], took["outcome"]) == ("connected", "connected"), (held, took)
        rung_by_other = [leg["member_id"] for leg in records.legs(other.db, took["call_id"])]
        assert rung_by_other == [second.id], other.log()  # the first was busy on the holder
        assert len(consultants[first.id].received("INVITE")) == 1  # rung once, by the holder
        assert len(consultants[second.id].received("INVITE")) == 1
        assert [e["member_id"] for e in connected_events(other)] == [second.id]


def free_udp_port(host: str) -> int:
    import socket  # noqa: PLC0415  # only here

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
