"""Recording and alert rules: promtool checks them, its unit tests pass, and they can fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from callrouter.adapters.metrics import AVOIDED

from .promql_names import REPO, RULES, exported_names, recorded_names, referenced_names

PROMETHEUS_DIR = RULES.parent
def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


class TestPromtool:
    """The shipped files pass promtool's checks and unit tests."""

    def test_check_rules(self) -> None:
        result = promtool("check", "rules", "rules.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 25 rules found" in result.stdout

    def test_unit_tests_pass(self) -> None:
        result = promtool("test", "rules", "rules_test.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_example_scrape_config(self) -> None:
        result = promtool("check", "config", "prometheus.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        (job,) = config["scrape_configs"]
        assert job["job_name"] == "callrouter"  # the CallrouterDown alert selects this job
        for target in job["static_configs"][0]["targets"]:
            assert target.startswith("127.0.0.1:")


class TestUnitTestsBite:
    """Break a rule in a copy: the same unit tests must then fail."""

    @pytest.mark.parametrize(
        ("original", "broken"),
        [
            ("ratio1h < 0.9", "ratio1h < 0.7"),
            ("connection_seconds:mean1h > 60", "connection_seconds:mean1h > 80"),
            ("callrouter_in_service == 1", "callrouter_in_service == 0"),
            ("for: 2m", "for: 10m"),
            ("histogram_quantile(0.9,", "histogram_quantile(0.5,"),
            ('{answer="avoided_referral"}', '{answer="referral_needed"}'),
            ("sum by (area) (rate(callrouter_survey_answers_total[1h]))",
             'sum by (area) (rate(callrouter_survey_answers_total{specialty="cardiology"}[1h]))'),
            ("rate(callrouter_legs_placed_total[1h])", "rate(callrouter_legs_started_total[1h])"),
            ("deaths_total - callrouter_worker_restarts_total > 0", "deaths_total > 0"),
            ("restarts_total[15m]) > 0", "restarts_total[15m]) > 1"),
            ("[15m]) >= 3", "[15m]) >= 4"),
            ("store_write_failures_total[10m])", "store_write_failures_total[1m])"),
            ('reason=~"full|no_slot"', 'reason=~"full|no_slot|draining"'),
            ("slots_free == 0\n        for: 5m", "slots_free == 0\n        for: 2m"),
            ("mqtt_connected == 0\n        for: 1m", "mqtt_connected == 0\n        for: 3m"),
            ("reload_successful == 0", "reload_successful == 1"),
            ("callrouter_store_spooled_events > 0", "callrouter_store_spooled_events > 10"),
            ("spool_dropped_total[10m]) > 0", "spool_dropped_total[10m]) > 1"),
        ],
    )  # fmt: skip
    def test_mutant_fails(self, tmp_path: Path, original: str, broken: str) -> None:
        text = RULES.read_text()
        assert original in text
        (tmp_path / "rules.yml").write_text(text.replace(original, broken))
        shutil.copy(PROMETHEUS_DIR / "rules_test.yml", tmp_path / "rules_test.yml")
        result = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
        assert result.returncode != 0
        assert "FAILED" in result.stdout + result.stderr


class TestNames:
    """Rules only read metrics that Metrics exports, with label values it uses."""

    def test_every_metric_in_rules_is_exported(self) -> None:
        data = yaml.safe_load(RULES.read_text())
        known = exported_names() | recorded_names()
        for group in data["groups"]:
            for rule in group["rules"]:
                unknown = referenced_names(rule["expr"]) - known
                assert not unknown, f"{rule.get('record') or rule.get('alert')}: {unknown}"

    def test_survey_label_value_matches_metrics(self) -> None:
        assert f'answer="{AVOIDED}"' in RULES.read_text()

    def test_recording_rule_names_follow_convention(self) -> None:
        for name in recorded_names():
            level, metric, operation = name.split(":")
            assert level in {"area", "area_specialty"}
            assert metric.startswith("callrouter_")
            assert operation.endswith("1h")


ALERTMANAGER = REPO / "monitoring" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str, cwd: Path = ALERTMANAGER.parent) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["amtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


class TestAlertmanagerExample:
    """The shipped receiver example passes amtool and routes our severities as documented."""

    def test_check_config(self) -> None:
        result = amtool("check-config", "alertmanager.yml")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout
        assert "2 receivers" in result.stdout

    @pytest.mark.parametrize(
        ("labels", "receivers"),
        [
            (["severity=critical", "alertname=CallrouterWorkerDown"],
             "on-call-pager,service-desk-email"),
            (["severity=warning", "alertname=CallrouterWorkerRestarted"], "service-desk-email"),
        ],
    )  # fmt: skip
    def test_routes(self, labels: list[str], receivers: str) -> None:
        result = amtool("config", "routes", "test", "--config.file=alertmanager.yml", *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receivers

    def test_every_severity_in_rules_is_routed_and_placeholders_are_marked(self) -> None:
        config = yaml.safe_load(ALERTMANAGER.read_text())
        severities = {
            rule["labels"]["severity"]
            for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]
            if "alert" in rule
        }
        assert severities == {"warning", "critical"}
        routed = {m for r in config["route"]["routes"] for m in r["matchers"]}
        assert routed == {'severity="critical"'}  # warnings take the default route
        names = {r["name"] for r in config["receivers"]}
        assert config["route"]["receiver"] in names
        assert {r["receiver"] for r in config["route"]["routes"]} <= names
        text = ALERTMANAGER.read_text()
        assert text.count("# placeholder") >= 4
        assert "example.org" in text

    def test_check_can_fail(self, tmp_path: Path) -> None:
        broken = ALERTMANAGER.read_text().replace(
            "receiver: on-call-pager", "receiver: nobody-defined"
        )
        (tmp_path / "alertmanager.yml").write_text(broken)
        result = amtool("check-config", "alertmanager.yml", cwd=tmp_path)
        assert result.returncode != 0
        assert "nobody-defined" in result.stdout + result.stderr
