"""Helpers for checking PromQL in rules and dashboards against what Metrics really exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from callrouter.adapters.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "prometheus" / "rules.yml"

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def exported_names() -> set[str]:
    """Every sample name Metrics exposes, from its registry (no label children needed)."""
    names: set[str] = set()
    metrics = Metrics("test")
    metrics.mqtt_connected(True)  # a series that exists only where MQTT is configured
    for family in metrics.registry.collect():
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
    return names


def recorded_names() -> set[str]:
    data = yaml.safe_load(RULES.read_text())
    return {
        rule["record"] for group in data["groups"] for rule in group["rules"] if "record" in rule
    }


def referenced_names(expr: str) -> set[str]:
    """Our metric names an expression uses: callrouter_* and recording-rule (a:b:c) names."""
    bare = _QUOTED.sub('""', expr)  # label values are not names
    return {name for name in _NAME.findall(bare) if "callrouter" in name}
