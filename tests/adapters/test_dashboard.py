"""The Grafana dashboard: every query parses (promtool) and reads only metrics we export."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .promql_names import REPO, exported_names, recorded_names, referenced_names

GRAFANA = REPO / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "callrouter.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources.yml"
DASHBOARDS = GRAFANA / "provisioning" / "dashboards.yml"

# Grafana fills these in before a query reaches Prometheus; stand-ins of the same kind.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$area": ".*",
    "$specialty": ".*",
}


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def panel_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every query target."""
    return [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def as_prometheus_sees_it(expr: str) -> str:
    # Longest first, so "$__rate_interval" is not eaten by a shorter name.
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    return expr


def promtool_parse_errors(exprs: list[str], workdir: Path) -> str:
    """Wrap each expr as a recording rule and let `promtool check rules` parse them all."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}:check", "expr": expr}
                    for n, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = workdir / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 0 and f"SUCCESS: {len(exprs)} rules found" in result.stdout:
        return ""
    return result.stdout + result.stderr


def datasource_uid() -> str:
    data = yaml.safe_load(DATASOURCES.read_text())
    (source,) = data["datasources"]
    uid: str = source["uid"]
    return uid


class TestQueries:
    """Every panel query is valid PromQL over metrics Metrics exports or rules.yml records."""

    def test_there_are_queries(self) -> None:
        assert len(panel_exprs(load_dashboard())) >= 20

    def test_every_expr_parses(self, tmp_path: Path) -> None:
        exprs = [as_prometheus_sees_it(expr) for _, expr in panel_exprs(load_dashboard())]
        for expr in exprs:
            assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
        assert promtool_parse_errors(exprs, tmp_path) == ""

    def test_the_parse_check_can_fail(self, tmp_path: Path) -> None:
        broken = ["sum(rate(callrouter_calls_offered_total[5m])", "rate(callrouter_x)"]
        errors = promtool_parse_errors(broken, tmp_path)
        assert "unclosed left parenthesis" in errors
        assert "expected type range vector" in errors

    def test_every_metric_is_known(self) -> None:
        known = exported_names() | recorded_names()
        for title, expr in panel_exprs(load_dashboard()):
            names = referenced_names(expr)
            assert names or "up{" in expr, f"{title}: reads none of our metrics"
            assert names <= known, f"{title}: unknown {names - known}"

    def test_variable_queries_use_known_metrics(self) -> None:
        known = exported_names()
        variables = load_dashboard()["templating"]["list"]
        assert {v["name"] for v in variables} == {"area", "specialty"}
        for variable in variables:
            match = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", variable["definition"])
            assert match is not None, variable["definition"]
            assert match.group(1) in known
            assert match.group(3) == variable["name"]


class TestDatasourceAndProvisioning:
    """Fixed uids: the dashboard names the provisioned datasource by uid everywhere."""

    def test_dashboard_uid_is_fixed(self) -> None:
        assert load_dashboard()["uid"] == "callrouter-overview"

    def test_every_datasource_reference_is_the_provisioned_uid(self) -> None:
        uid = datasource_uid()
        dashboard = load_dashboard()
        refs = [
            panel["datasource"]
            for panel in all_panels(dashboard["panels"])
            if "datasource" in panel
        ]
        refs += [
            t["datasource"] for p in all_panels(dashboard["panels"]) for t in p.get("targets", [])
        ]
        refs += [v["datasource"] for v in dashboard["templating"]["list"]]
        assert len(refs) > 40
        assert all(ref == {"type": "prometheus", "uid": uid} for ref in refs)

    def test_provisioning_files(self) -> None:
        sources = yaml.safe_load(DATASOURCES.read_text())
        assert sources["apiVersion"] == 1
        assert sources["datasources"][0]["type"] == "prometheus"
        assert sources["datasources"][0]["url"].startswith("http://127.0.0.1:")
        boards = yaml.safe_load(DASHBOARDS.read_text())
        assert boards["apiVersion"] == 1
        (provider,) = boards["providers"]
        assert provider["type"] == "file"
        assert provider["options"]["path"].startswith("/")

    def test_panel_ids_unique_and_on_grid(self) -> None:
        panels = list(all_panels(load_dashboard()["panels"]))
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids))
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] >= 0
            assert grid["x"] + grid["w"] <= 24


def _panel(title: str) -> dict[str, Any]:
    (panel,) = [p for p in all_panels(load_dashboard()["panels"]) if p["title"] == title]
    return panel


def _steps(panel: dict[str, Any]) -> list[Any]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


class TestHeadlines:
    """Headline stats carry the seed targets as thresholds."""

    @pytest.mark.parametrize(
        ("title", "unit", "target"),
        [
            ("First-time connection rate", "percentunit", 0.91),
            ("Mean connection time", "s", 34),
            ("Mean call length", "s", 260),
        ],
    )
    def test_stat_thresholds(self, title: str, unit: str, target: float) -> None:
        panel = _panel(title)
        assert panel["type"] == "stat"
        assert panel["fieldConfig"]["defaults"]["unit"] == unit
        assert _steps(panel) == [None, target]

    def test_ftcr_green_only_at_or_above_target(self) -> None:
        steps = _panel("First-time connection rate")["fieldConfig"]["defaults"]["thresholds"]
        assert [s["color"] for s in steps["steps"]] == ["red", "green"]

    def test_connection_time_red_above_target(self) -> None:
        steps = _panel("Mean connection time")["fieldConfig"]["defaults"]["thresholds"]
        assert [s["color"] for s in steps["steps"]] == ["green", "red"]

    @pytest.mark.parametrize(
        "title",
        [
            "Specialty chosen per hour",
            "Leg outcomes by tier (all areas, selected range)",
            "Consultants on call by specialty and tier",
            "Referral or admission avoided",
            "Referral or admission avoided by area",
            "First-time connection rate by specialty",
        ],
    )
    def test_required_panels_exist(self, title: str) -> None:
        assert _panel(title)["targets"]
