"""``sip.workers`` (a number or ``auto``) and ``edge:``: the worker plan, and every clash of
ports refused at ``file:line:col``."""

from __future__ import annotations

import dataclasses

import pytest

from callrouter import worker_plan
from callrouter.settings.config import Config
from callrouter.sip.worker_config import parse_argv
from tests.settings.conftest import Tree

CATALOGUE = {"cardiology": "Cardiology"}
GIB = 1024**3


def config(sip: dict[str, object], edge: dict[str, object] | None = None) -> Config:
    data: dict[str, object] = {"specialties": CATALOGUE, "sip": sip}
    if edge is not None:
        data["edge"] = edge
    return Config.model_validate(data)


class TestAutoSize:
    """``auto`` is the smallest of 4 per core, a quarter of free memory, and the RTP range."""

    def test_cores_bound_it(self) -> None:
        count = worker_plan.auto_worker_count(cpus=2, available_bytes=64 * GIB, rtp_ports=1000)
        assert count == 8

    def test_memory_bounds_it(self) -> None:
        count = worker_plan.auto_worker_count(cpus=16, available_bytes=1 * GIB, rtp_ports=1000)
        assert count == 4  # a quarter of 1 GiB at 64 MiB each

    def test_rtp_range_bounds_it(self) -> None:
        count = worker_plan.auto_worker_count(cpus=16, available_bytes=64 * GIB, rtp_ports=20)
        assert count == 2

    def test_never_zero(self) -> None:
        assert worker_plan.auto_worker_count(cpus=0, available_bytes=0, rtp_ports=0) == 1

    def test_auto_in_config_resolves_on_this_machine(self) -> None:
        planned = worker_plan.plan_workers(config({"workers": "auto"}))
        assert 1 <= len(planned) <= worker_plan.MAX_WORKERS


class TestPlan:
    """Each worker: its own SIP port and a disjoint, even-aligned RTP slice of the range."""

    def test_three_workers(self) -> None:
        cfg = config(
            {"listen_port": 5070, "rtp_port_min": 40001, "rtp_port_max": 40100, "workers": 3}
        )
        planned = worker_plan.plan_workers(cfg)
        assert [w.worker_id for w in planned] == ["w0", "w1", "w2"]
        assert [w.listen_port for w in planned] == [5070, 5071, 5072]
        slices = [(w.rtp_port_min, w.rtp_port_max) for w in planned]
        assert slices == [(40002, 40033), (40034, 40065), (40066, 40097)]
        assert all(w.listen_host == "127.0.0.1" for w in planned)

    def test_port_override_moves_the_first_worker(self) -> None:
        cfg = config({"workers": 2})
        assert worker_plan.worker_port(cfg, None) == 5060
        assert worker_plan.worker_port(cfg, 6000) == 6000
        assert [w.listen_port for w in worker_plan.plan_workers(cfg, first_port=6000)] == [
            6000,
            6001,
        ]

    def test_behind_an_edge_sip_is_loopback_and_media_stays_public(self) -> None:
        cfg = config(
            {"listen_host": "192.0.2.10", "listen_port": 5061, "workers": 2},
            {"enabled": True, "listen_host": "192.0.2.10", "listen_port": 5060},
        )
        planned = worker_plan.plan_workers(cfg)
        assert [(w.listen_host, w.public_host) for w in planned] == [("127.0.0.1", "127.0.0.1")] * 2
        assert {(w.media_bind, w.media_public) for w in planned} == {("192.0.2.10", "192.0.2.10")}
        assert worker_plan.worker_port(cfg, 7000) == 7001  # --sip-port names the edge's port
        allowed = worker_plan.engine_trunk_check(cfg)
        assert allowed("127.0.0.1")  # the edge
        assert not allowed("198.51.100.7")
        for worker in planned:  # the workers' gates let the same sources start calls
            assert worker.allows("127.0.0.1")
            assert not worker.allows("198.51.100.7")

    def test_behind_an_edge_the_workers_own_calls_leave_through_it(self) -> None:
        cfg = config(
            {"listen_host": "192.0.2.10", "listen_port": 5061, "workers": 2},
            {"enabled": True, "listen_host": "192.0.2.10", "listen_port": 5060},
        )
        planned = worker_plan.plan_workers(cfg)
        assert {w.outbound_proxy for w in planned} == {"sip:127.0.0.1:5060;lr"}
        moved = worker_plan.plan_workers(cfg, first_port=7001, edge_port=7000)
        assert {w.outbound_proxy for w in moved} == {"sip:127.0.0.1:7000;lr"}  # --sip-port
        (alone,) = worker_plan.plan_workers(config({"listen_host": "192.0.2.10"}))
        assert alone.outbound_proxy is None  # no edge: straight to the consultant

    def test_an_outbound_proxy_must_be_a_sip_uri(self) -> None:
        (planned,) = worker_plan.plan_workers(config({"listen_port": 5061}, {"enabled": True}))
        with pytest.raises(ValueError, match="not a sip: URI"):
            dataclasses.replace(planned, outbound_proxy="127.0.0.1:5060")

    def test_a_planned_worker_survives_its_command_line(self) -> None:
        cfg = config(
            {"listen_host": "192.0.2.10", "listen_port": 5061, "workers": 2},
            {"enabled": True, "listen_host": "192.0.2.10", "listen_port": 5060},
        )
        for planned in worker_plan.plan_workers(cfg):
            assert parse_argv(planned.argv()) == planned  # media host and address included

    def test_without_an_edge_the_allow_list_is_the_config_one(self) -> None:
        cfg = config({"trunk_allow": ["10.0.0.0/8"]})
        allowed = worker_plan.engine_trunk_check(cfg)
        assert allowed("10.1.2.3")
        assert not allowed("127.0.0.1")
        (worker,) = worker_plan.plan_workers(cfg)
        assert worker.allow == ("10.0.0.0/8",)
        assert worker.allows("10.1.2.3")
        assert not worker.allows("127.0.0.1")


class TestClashes:
    """A plan that cannot work is refused at the key that makes it so."""

    def test_rtp_range_too_small_for_the_workers(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "workers: 2 ", "workers: 200 ")
        (issue,) = tree.issues()
        col = tree.col("config.yaml", line, "200")
        assert (issue.line, issue.col, issue.field) == (line, col, "sip.workers")
        assert "gives each of 200 workers 4 ports; a worker needs 8" in issue.message
        result = tree.check()
        assert result.returncode == 2
        assert f"config.yaml:{line}:{col}: sip.workers" in result.stderr + result.stdout

    def test_worker_ports_run_into_the_rtp_range(self, tree: Tree) -> None:
        tree.replace("config.yaml", "listen_port: 5061 ", "listen_port: 39999 ")
        line = tree.replace("config.yaml", "workers: 2 ", "workers: 3 ")
        (issue,) = tree.issues()
        assert (issue.line, issue.field) == (line, "sip.workers")
        assert "39999-40001 overlap the RTP port range" in issue.message

    def test_worker_ports_past_65535(self, tree: Tree) -> None:
        tree.replace("config.yaml", "rtp_port_min: 40000", "rtp_port_min: 20000")
        tree.replace("config.yaml", "rtp_port_max: 40999", "rtp_port_max: 20999")
        tree.replace("config.yaml", "listen_port: 5061 ", "listen_port: 65535 ")
        line = tree.replace("config.yaml", "workers: 2 ", "workers: 3 ")
        (issue,) = tree.issues()
        assert (issue.line, issue.field) == (line, "sip.workers")
        assert "run past port 65535" in issue.message

    def test_not_a_number_nor_auto(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "workers: 2 ", "workers: many ")
        issues = tree.issues()
        assert {(i.line, i.field) for i in issues} == {(line, "sip.workers")}

    def test_edge_port_is_a_worker_port(self) -> None:
        data = {
            "specialties": CATALOGUE,
            "sip": {"listen_port": 5060, "workers": 2},
            "edge": {"enabled": True, "listen_port": 5061},
        }
        with pytest.raises(
            ValueError, match=r"is a worker's SIP port too \(workers use 5060-5061\)"
        ):
            Config.model_validate(data)

    def test_edge_workers_must_be_loopback(self) -> None:
        data = {"specialties": CATALOGUE, "edge": {"enabled": True, "worker_host": "192.0.2.1"}}
        with pytest.raises(ValueError, match="not a loopback address"):
            Config.model_validate(data)


class TestOnDemand:
    """``sip.max_workers``: every worker there may be is planned (ports and RTP slices), the
    first ``workers`` start; a cap that cannot work is refused at its own key."""

    def test_the_plan_covers_the_most(self) -> None:
        cfg = config(
            {"listen_port": 5070, "rtp_port_min": 40000, "rtp_port_max": 40099, "max_workers": 4},
            edge={"enabled": True, "listen_port": 5069},
        )
        planned = worker_plan.plan_workers(cfg)
        assert [w.listen_port for w in planned] == [5070, 5071, 5072, 5073]
        assert (planned[3].rtp_port_min, planned[3].rtp_port_max) == (40072, 40095)
        assert worker_plan.worker_count(cfg.sip) == 1
        assert worker_plan.grows(cfg.sip)

    def test_the_shipped_config_keeps_a_spare_up_to_eight(self, tree: Tree) -> None:
        cfg = tree.load().config
        assert (worker_plan.worker_count(cfg.sip), worker_plan.max_worker_count(cfg.sip)) == (2, 8)
        assert [w.listen_port for w in worker_plan.plan_workers(cfg)] == list(range(5061, 5069))

    def test_below_workers(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "max_workers: 8 ", "max_workers: 1 ")
        (issue,) = tree.issues()
        col = tree.col("config.yaml", line, "1")
        assert (issue.line, issue.col, issue.field) == (line, col, "sip.max_workers")
        assert "is below workers (2)" in issue.message

    def test_rtp_range_too_small_for_the_most(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "max_workers: 8 ", "max_workers: 200 ")
        (issue,) = tree.issues()
        assert (issue.line, issue.field) == (line, "sip.max_workers")
        assert "gives each of 200 workers 4 ports" in issue.message

    def test_growth_needs_the_edge(self) -> None:
        with pytest.raises(ValueError, match="needs the edge"):
            config({"workers": 1, "max_workers": 2})

    def test_spare_idle_seconds_is_bounded(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "spare_idle_seconds: 300", "spare_idle_seconds: 1")
        (issue,) = tree.issues()
        assert (issue.line, issue.field) == (line, "sip.spare_idle_seconds")
