"""The Grafana dashboard: every query parses (promtool), reads only metrics we export, honours
the area and specialty selectors, shares its thresholds with the alerts, and - evaluated by
promtool over series that real Metrics produced - shows the true figure."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from callrouter.adapters.metrics import Metrics
from callrouter.core.domain import (
    CallEnded,
    CallOffered,
    Connected,
    DomainEvent,
    EndReason,
    LegEnded,
    LegPickedUp,
    LegRang,
    LegResult,
    LegStarted,
    SpecialtyChosen,
)

from .promql_names import REPO, RULES, exported_names, recorded_names, referenced_names
from .scripted_calls import connected_call

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
    """Headline stats carry thresholds: the alerts' lines, and the call-length seed anchor."""

    @pytest.mark.parametrize(
        ("title", "unit", "target"),
        [
            ("First-time connection rate", "percentunit", 0.9),
            ("Mean connection time", "s", 60),
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
            "Leg outcomes by tier (selected range)",
            "Consultants on call by specialty and tier",
            "Referral or admission avoided",
            "Referral or admission avoided by area",
            "First-time connection rate by specialty",
        ],
    )
    def test_required_panels_exist(self, title: str) -> None:
        assert _panel(title)["targets"]


# --- one source of thresholds ---------------------------------------------------------------


def alert_rule(name: str) -> dict[str, Any]:
    data = yaml.safe_load(RULES.read_text())
    (rule,) = [r for g in data["groups"] for r in g["rules"] if r.get("alert") == name]
    return rule


def alert_threshold(name: str, comparison: str) -> float:
    """The number an alert compares its recording rule with, e.g. ``ratio1h < 0.9``."""
    match = re.search(rf"1h {re.escape(comparison)} ([0-9.]+)\n", alert_rule(name)["expr"])
    assert match is not None, alert_rule(name)["expr"]
    return float(match.group(1))


class TestThresholdsAgreeWithAlerts:
    """Every FTCR and connection-time panel turns red where the alert fires, and the alert texts
    name the same line; rules.yml is the one place the numbers are set."""

    FTCR_PANELS = (
        "First-time connection rate",
        "First-time connection rate by area",
        "First-time connection rate by specialty",
    )
    CONNECTION_PANELS = ("Mean connection time", "Connection time: mean and p90")

    def test_ftcr(self) -> None:
        line = alert_threshold("CallrouterFtcrLow", "<")
        assert line == 0.9
        for title in self.FTCR_PANELS:
            assert _steps(_panel(title)) == [None, line], title
            assert [s["color"] for s in _thresholds(title)] == ["red", "green"]
        summary = alert_rule("CallrouterFtcrLow")["annotations"]["summary"]
        assert f"(alert below {line:.0%})" in summary
        assert "91" not in summary

    def test_connection_time(self) -> None:
        line = alert_threshold("CallrouterConnectionSlow", ">")
        assert line == 60
        for title in self.CONNECTION_PANELS:
            assert _steps(_panel(title)) == [None, line], title
            assert [s["color"] for s in _thresholds(title)] == ["green", "red"]
        summary = alert_rule("CallrouterConnectionSlow")["annotations"]["summary"]
        assert f"(alert above {line:.0f}s)" in summary
        assert "34" not in summary

    def test_every_threshold_panel_on_these_metrics_is_checked(self) -> None:
        """A new FTCR or connection-time panel with thresholds must join the lists above."""
        for panel in all_panels(load_dashboard()["panels"]):
            exprs = " ".join(t["expr"] for t in panel.get("targets", []))
            if "thresholds" not in panel.get("fieldConfig", {}).get("defaults", {}):
                continue
            if "calls_connected_total" in exprs and "specialty_chosen_total" in exprs:
                assert panel["title"] in self.FTCR_PANELS
            if "ftcr" in exprs:
                assert panel["title"] in self.FTCR_PANELS
            if "connection_seconds" in exprs:
                assert panel["title"] in self.CONNECTION_PANELS


def _thresholds(title: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _panel(title)["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return steps


# --- selectors ------------------------------------------------------------------------------

_SELECTOR = re.compile(
    r"(area(?:_specialty)?:callrouter_[a-z0-9_]+:[a-z0-9_]+|callrouter_[a-z0-9_]+)(\{[^}]*\})?"
)


def exported_labels() -> dict[str, set[str]]:
    """Sample name -> label names, from a Metrics with every family populated."""
    metrics = Metrics("test")
    metrics.declare_area("north", ["cardiology"], ["local", "ncn"])
    for event in connected_call():
        metrics.handle(event)
    metrics.set_members_on_call("north", "cardiology", "local", 1)
    metrics.set_in_service_hours("north", in_hours=True)
    metrics.set_consultants_on_call({"north": ["a"]})
    metrics.mqtt_connected(True)
    metrics.mqtt_payload_rejected("not_json")
    labels: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(set(sample.labels) - {"le"})
    return labels


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric or recording-rule name, its {matchers} text) for each selector in ``expr``."""
    return [(m.group(1), m.group(2) or "") for m in _SELECTOR.finditer(expr)]


class TestSelectors:
    """Every query narrows by area and specialty wherever its series carry those labels."""

    def test_every_selector_honours_the_variables(self) -> None:
        labels = exported_labels()
        checked = 0
        for title, expr in panel_exprs(load_dashboard()):
            for name, matchers in selectors(expr):
                has = labels[name] if name in labels else set(name.split(":")[0].split("_"))
                if "specialty" in has:
                    assert 'specialty=~"$specialty"' in matchers, f"{title}: {name}{matchers}"
                    checked += 1
                if "area" in has:
                    assert 'area=~"$area"' in matchers, f"{title}: {name}{matchers}"
        assert checked >= 25

    def test_no_per_area_recording_rule_in_panels(self) -> None:
        """area:* rules are summed over specialties already: no selector could narrow them."""
        for title, expr in panel_exprs(load_dashboard()):
            assert not re.search(r"\barea:callrouter_", expr), title

    def test_the_selector_check_can_fail(self) -> None:
        found = selectors('sum(rate(callrouter_legs_total{area=~"$area"}[5m])) / area:x:y1h')
        assert found == [("callrouter_legs_total", '{area=~"$area"}')]
        assert "specialty" in exported_labels()["callrouter_legs_total"]

    @pytest.mark.parametrize(
        "name",
        [
            "callrouter_legs_total",
            "callrouter_legs_placed_total",
            "callrouter_consultant_decisions_total",
            "callrouter_leg_ring_seconds_bucket",
        ],
    )
    def test_leg_metrics_carry_area_and_specialty(self, name: str) -> None:
        assert {"area", "specialty", "tier"} <= exported_labels()[name]


# --- the panels, evaluated ------------------------------------------------------------------


def _label_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def input_series(metrics: Metrics) -> list[dict[str, str]]:
    """Every sample as a promtool input series: counters step from 0 to their value at 20 min
    (inside any 1 h window ending at 70 min), gauges hold their value throughout."""
    out = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            value = f"{sample.value:g}"
            counted = family.type in {"counter", "histogram"}
            values = f"0x20 {value}x50" if counted else f"{value}x70"
            out.append({"series": sample.name + _label_text(sample.labels), "values": values})
    return out


def promtool_eval(
    workdir: Path,
    series: list[dict[str, str]],
    checks: list[tuple[str, list[tuple[str, float]]]],
    variables: dict[str, str] | None = None,
) -> str:
    """Evaluate each (expr, expected [(labels, value)]) at 70 min; "" when all match."""
    subs = {**GRAFANA_VARIABLES, **(variables or {})}

    def resolve(expr: str) -> str:
        for name in sorted(subs, key=len, reverse=True):
            expr = expr.replace(name, subs[name])
        return f"round({expr}, 0.001)"

    test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": resolve(expr),
                        "eval_time": "70m",
                        "exp_samples": [{"labels": lab, "value": val} for lab, val in expected],
                    }
                    for expr, expected in checks
                ],
            }
        ]
    }
    path = workdir / "panels_test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        ["promtool", "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def _exprs(title: str) -> list[str]:
    return [target["expr"] for target in _panel(title)["targets"]]


class TestConsultantsOnCallNow:
    """The headline counts people, not rota slots: an NCN consultant on call for two
    specialties in two areas is one person."""

    def world(self) -> Metrics:
        metrics = Metrics("test")
        rota = {  # (area, specialty, tier) -> member ids, as _publish_gauges sees them
            ("north", "cardiology", "local"): ["a1", "a2"],
            ("north", "cardiology", "ncn"): ["n1"],
            ("north", "dermatology", "local"): ["a1"],  # a1 covers two specialties
            ("north", "dermatology", "ncn"): ["n1"],
            ("south", "cardiology", "local"): ["b1"],
            ("south", "cardiology", "ncn"): ["n1"],
        }
        by_area: dict[str, list[str]] = {}
        for (area, specialty, tier), members in rota.items():
            metrics.set_members_on_call(area, specialty, tier, len(members))
            by_area.setdefault(area, []).extend(members)
        metrics.set_consultants_on_call(by_area)
        return metrics

    def test_people_counted_once(self, tmp_path: Path) -> None:
        everyone, per_area = _exprs("Consultants on call now")
        checks = [
            (everyone, [("{}", 4)]),  # a1 a2 n1 b1; the rota slots add up to 7
            (per_area, [('{area="north"}', 3), ('{area="south"}', 2)]),
        ]
        assert promtool_eval(tmp_path, input_series(self.world()), checks) == ""

    def test_the_old_sum_is_caught(self, tmp_path: Path) -> None:
        old = 'sum(callrouter_members_on_call{area=~"$area",specialty=~"$specialty"})'
        checks = [(old, [("{}", 4)])]
        assert "FAILED" in promtool_eval(tmp_path, input_series(self.world()), checks)

    def test_no_panel_adds_rota_slots_up(self) -> None:
        for title, expr in panel_exprs(load_dashboard()):
            if "members_on_call" in expr:
                assert not re.search(r"\b(sum|count)\b", expr), title


def _leg_call() -> list[DomainEvent]:
    """north/cardiology: L1 fails locally (no free slot), L2 rings out, L3 rings and accepts."""
    c = "c-legs"
    return [
        CallOffered(c, 0.0, "north", "07700900123", None, None),
        SpecialtyChosen(c, 5.0, "north", "cardiology", 5.0),
        LegStarted(c, 5.0, "L1", "m1", "sip:m1@127.0.0.1", "local", "rota"),
        LegEnded(c, 5.0, "L1", "m1", "local", LegResult.ERROR, 503, 0.0),
        LegStarted(c, 5.0, "L2", "m2", "sip:m2@127.0.0.1", "local", "rota"),
        LegRang(c, 6.0, "L2"),
        LegEnded(c, 26.0, "L2", "m2", "local", LegResult.NO_ANSWER, 487, 20.0),
        LegStarted(c, 26.0, "L3", "m3", "sip:m3@127.0.0.1", "ncn", "escalate"),
        LegRang(c, 27.0, "L3"),
        LegPickedUp(c, 30.0, "L3", "m3"),
        Connected(c, 33.0, "north", "cardiology", "L3", "m3", "ncn", 28.0),
        CallEnded(c, 300.0, "north", "cardiology", EndReason.COMPLETED, True, 267.0),
    ]


class TestRingsPerConnectedCall:
    """Placed legs per connection: the leg that failed locally rang nobody."""

    def metrics(self) -> Metrics:
        metrics = Metrics("test")
        metrics.declare_area("north", ["cardiology", "dermatology"], ["local", "ncn"])
        for event in _leg_call():
            metrics.handle(event)
        return metrics

    def test_two_rings_for_one_connection(self, tmp_path: Path) -> None:
        (expr,) = _exprs("Rings per connected call (selected range)")
        series = input_series(self.metrics())
        assert promtool_eval(tmp_path, series, [(expr, [("{}", 2)])]) == ""

    def test_counting_started_legs_would_say_three(self, tmp_path: Path) -> None:
        (expr,) = _exprs("Rings per connected call (selected range)")
        started = expr.replace("legs_placed_total", "legs_started_total")
        series = input_series(self.metrics())
        assert promtool_eval(tmp_path, series, [(started, [("{}", 3)])]) == ""
        assert "FAILED" in promtool_eval(tmp_path, series, [(started, [("{}", 2)])])


class TestSpecialtySelectorApplies:
    """With one specialty selected, a trend panel shows that specialty's figure."""

    def test_ftcr_by_area_follows_the_specialty(self, tmp_path: Path) -> None:
        # Per minute: cardiology 4 chosen / 3 connected, dermatology 4 / 4 (area 0.875).
        per_minute = {
            ("specialty_chosen", "cardiology"): 4,
            ("specialty_chosen", "dermatology"): 4,
            ("calls_connected", "cardiology"): 3,
            ("calls_connected", "dermatology"): 4,
        }
        series = [
            {
                "series": f'callrouter_{name}_total{{area="north",specialty="{specialty}"}}',
                "values": f"0+{n}x70",
            }
            for (name, specialty), n in per_minute.items()
        ]
        (expr,) = _exprs("First-time connection rate by area")
        north = '{area="north"}'
        only_cardiology = {"$specialty": "cardiology"}
        assert promtool_eval(tmp_path, series, [(expr, [(north, 0.75)])], only_cardiology) == ""
        assert promtool_eval(tmp_path, series, [(expr, [(north, 0.875)])]) == ""


class TestFaultPanels:
    """Operators see worker deaths, refusals, store failures, MQTT and reload state."""

    @pytest.mark.parametrize(
        ("title", "metrics"),
        [
            ("SIP worker deaths and restarts", {"callrouter_worker_deaths_total",
                                                "callrouter_worker_restarts_total"}),
            ("Calls refused by reason", {"callrouter_calls_refused_total"}),
            ("Record store write failures", {"callrouter_store_write_failures_total"}),
            ("MQTT bus", {"callrouter_mqtt_connected"}),
            ("MQTT payloads rejected", {"callrouter_mqtt_payloads_rejected_total"}),
            ("Last config reload", {"callrouter_config_last_reload_successful"}),
            ("Configuration loaded", {"callrouter_config_last_reload_success_timestamp_seconds"}),
        ],
    )  # fmt: skip
    def test_panel_reads(self, title: str, metrics: set[str]) -> None:
        used = set().union(*(referenced_names(expr) for expr in _exprs(title)))
        assert used == metrics

    def test_refusals_split_by_reason_and_status(self) -> None:
        (expr,) = _exprs("Calls refused by reason")
        assert "by (reason, status)" in expr
