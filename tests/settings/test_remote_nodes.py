"""Engine nodes across machines in config.yaml: an edge that lists workers on other hosts
(``edge.remote_workers``), a node behind an edge on another host (``edge.remote_edge``), and
the bus's busy-state sharing (``mqtt.share_busy``). Bad values are refused at ``file:line:col``."""

from __future__ import annotations

import pytest

from callrouter import worker_plan
from callrouter.edge.kamailio_cfg import dispatcher_list, render
from callrouter.edge.process import plan_edge
from callrouter.settings.config import Config
from callrouter.sip import protocol as p
from tests.settings.conftest import Tree

CATALOGUE = {"cardiology": "Cardiology"}
REMOTE = {"host": "192.0.2.20", "port": 5070, "count": 2, "max_calls": 3}


def config(sip: dict[str, object], edge: dict[str, object]) -> Config:
    return Config.model_validate({"specialties": CATALOGUE, "sip": sip, "edge": edge})


class TestEdgeWithRemoteWorkers:
    """The edge's dispatcher list names this host's workers and the other nodes'."""

    def test_dispatcher_list_and_config_name_the_remote_workers(self, tmp_path: object) -> None:
        cfg = config(
            {"listen_host": "192.0.2.10", "listen_port": 5061, "workers": 1},
            {"enabled": True, "listen_host": "192.0.2.10", "remote_workers": [REMOTE]},
        )
        workers = worker_plan.plan_workers(cfg)
        readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, 4) for w in workers]
        plan = plan_edge(cfg, workers, readies, 5060)
        lines = dispatcher_list(plan).splitlines()[1:]
        assert lines == [
            "1 sip:127.0.0.1:5061 0 0 duid=w0;maxload=2",
            "1 sip:192.0.2.20:5070 0 0 duid=r0.0;maxload=3",
            "1 sip:192.0.2.20:5071 0 0 duid=r0.1;maxload=3",
        ]
        text = render(plan)
        assert "mhomed=1" in text
        assert '($si=="192.0.2.20" && ($sp==5070 || $sp==5071))' in text  # counted as workers
        assert '($si=="127.0.0.1" && ($sp==5061))' in text

    def test_without_remote_workers_nothing_changes(self) -> None:
        cfg = config({"listen_port": 5061}, {"enabled": True})
        workers = worker_plan.plan_workers(cfg)
        readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, 4) for w in workers]
        assert "mhomed" not in render(plan_edge(cfg, workers, readies, 5060))

    def test_the_edge_also_listens_where_the_consultants_are(self) -> None:
        cfg = config(
            {"listen_host": "192.0.2.10", "listen_port": 5061},
            {"enabled": True, "listen_host": "203.0.113.5"},
        )
        workers = worker_plan.plan_workers(cfg)
        readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, 4) for w in workers]
        text = render(plan_edge(cfg, workers, readies, 5060))
        listens = [line for line in text.splitlines() if line.startswith("listen=")]
        assert listens == [
            "listen=udp:203.0.113.5:5060",  # GPs
            "listen=udp:127.0.0.1:5060",  # the workers, and their outbound proxy
            "listen=udp:192.0.2.10:5060",  # consultants (sip.listen_host)
        ]
        assert "mhomed=1" in text  # each message out of the socket that reaches its target
        worker_calls = [line for line in text.splitlines() if "route(OUTBOUND)" in line]
        assert worker_calls == ['    if ((($si=="127.0.0.1" && ($sp==5061)))) route(OUTBOUND);']

    def test_a_wildcard_sip_address_adds_no_socket(self) -> None:
        cfg = config({"listen_host": "0.0.0.0", "listen_port": 5061}, {"enabled": True})
        workers = worker_plan.plan_workers(cfg)
        readies = [p.Ready(w.worker_id, w.listen_host, w.listen_port, 4) for w in workers]
        text = render(plan_edge(cfg, workers, readies, 5060))
        assert [line for line in text.splitlines() if line.startswith("listen=")] == [
            "listen=udp:127.0.0.1:5060"
        ]

    @pytest.mark.parametrize(
        ("edge", "message"),
        [
            ({"enabled": False, "remote_workers": [REMOTE]}, "only an edge this node runs"),
            ({"enabled": True, "remote_workers": [{**REMOTE, "host": "127.0.0.5"}]}, "reach"),
            (
                {"enabled": True, "remote_workers": [{**REMOTE, "host": "0.0.0.0"}]},
                "reach",
            ),  # the wildcard refused
            ({"enabled": True, "remote_workers": [{**REMOTE, "port": 65535}]}, "past 65535"),
            ({"enabled": True, "remote_workers": [{**REMOTE, "count": 0}]}, "greater than"),
            ({"enabled": True, "remote_workers": [REMOTE, {**REMOTE, "port": 5071}]}, "listed"),
            ({"enabled": True, "remote_workers": [{**REMOTE, "max_calls": 0}]}, "greater than"),
            (
                {"enabled": True, "listen_host": "192.0.2.20", "remote_workers": [REMOTE]},
                "the edge's own address",
            ),
        ],
    )
    def test_bad_remote_workers_are_refused(self, edge: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            config({"listen_port": 5061}, edge)

    def test_refused_at_the_line_of_the_bad_key(self, tree: Tree) -> None:
        text = tree.text("config.yaml")
        tree.write(
            "config.yaml",
            text.replace(
                "  run_dir: var/edge",
                "  run_dir: var/edge\n  remote_workers:\n    - host: 192.0.2.20\n"
                "      port: 5070\n    - host: 192.0.2.20\n      port: 5070\n",
                1,
            ),
        )
        (issue,) = tree.issues()
        second = tree.text("config.yaml").splitlines().index("    - host: 192.0.2.20", 0) + 3
        assert issue.field.startswith("edge.remote_workers")
        assert issue.line == second, issue
        assert "192.0.2.20:5070 is listed already" in issue.message


class TestBehindARemoteEdge:
    """A node whose workers an edge on another host lists."""

    def test_workers_bind_the_node_address_and_take_calls_from_the_edge_only(self) -> None:
        cfg = config(
            {"listen_host": "192.0.2.20", "listen_port": 5070, "trunk_allow": ["192.0.2.0/24"]},
            {"remote_edge": "192.0.2.10"},
        )
        (planned,) = worker_plan.plan_workers(cfg)
        assert (planned.listen_host, planned.listen_port) == ("192.0.2.20", 5070)
        assert planned.outbound_proxy is None  # its own address reaches consultants
        assert worker_plan.worker_port(cfg, 6000) == 6000  # --sip-port: the first worker's
        allowed = worker_plan.engine_trunk_check(cfg)
        assert allowed("192.0.2.10")
        assert not allowed("192.0.2.11")  # in trunk_allow, but not the edge
        assert not allowed("not an address")

    @pytest.mark.parametrize(
        ("sip", "edge", "message"),
        [
            ({}, {"enabled": True, "remote_edge": "192.0.2.10"}, "not both"),
            ({"listen_host": "192.0.2.20"}, {"remote_edge": "127.0.0.1"}, "reach"),
            ({"listen_host": "127.0.0.1"}, {"remote_edge": "192.0.2.10"}, "cannot reach workers"),
        ],
    )
    def test_contradictions_are_refused(
        self, sip: dict[str, object], edge: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            config(sip, edge)


class TestBusyShareSettings:
    """``mqtt.share_busy`` is on by default; its time to live is bounded."""

    def test_defaults_and_bounds(self) -> None:
        base = {"specialties": CATALOGUE}
        cfg = Config.model_validate({**base, "mqtt": {"host": "127.0.0.1"}})
        assert cfg.mqtt is not None
        assert (cfg.mqtt.share_busy, cfg.mqtt.busy_ttl_seconds) == (True, 60.0)
        with pytest.raises(ValueError, match="greater than or equal to 5"):
            Config.model_validate({**base, "mqtt": {"host": "h", "busy_ttl_seconds": 1}})
